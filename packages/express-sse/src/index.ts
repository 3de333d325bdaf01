export { sse } from "./middleware";
export { SseStream, StreamClosedError } from "./stream";
export { Frame } from "./frame";
export { Channel } from "./channel";
export { MemoryAdapter } from "./adapter";
export { shutdown } from "./shutdown";

export type { SseMiddleware } from "./middleware";
export type { SseOptions, Serializer } from "./options";
export type { CloseReason, SendOptions } from "./stream";
export type { StreamStats } from "./context";
export type { EventFields } from "./frame";
export type { PipeOptions, PipeSource } from "./pipe";
export type {
  ChannelEvent,
  ChannelOptions,
  ChannelStats,
  EventMap,
  ResetData,
  SubscribeOptions,
} from "./channel";
export type {
  Adapter,
  AdapterChannel,
  AdapterChannelOptions,
  AdapterEvent,
  AdapterPublish,
  AdapterPresence,
  AdapterReset,
  HistoryResult,
  PresenceUpdate,
} from "./adapter";
export type { HistoryOptions, ResolvedHistoryOptions } from "./history";
export type { Members } from "./presence";
export { MAX_MEMBER_BYTES } from "./presence";
export type { ShutdownOptions } from "./shutdown";
