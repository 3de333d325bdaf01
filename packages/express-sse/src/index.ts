export { sse } from "./middleware";
export { SseStream, StreamClosedError } from "./stream";
export { Frame } from "./frame";

export type { SseMiddleware } from "./middleware";
export type { SseOptions, Serializer } from "./options";
export type { CloseReason, SendOptions } from "./stream";
export type { EventFields } from "./frame";
export type { PipeOptions, PipeSource } from "./pipe";
