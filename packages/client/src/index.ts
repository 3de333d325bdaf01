export { SseClient } from "./client";
export { SseError } from "./error";
export type { SseErrorCode } from "./error";
export type {
  EventMap,
  EventName,
  Lazy,
  RequestExtras,
  ResetData,
  SseClientEvents,
  SseClientOptions,
  SseCloseEvent,
  SseErrorEvent,
  SseMessage,
  SseMessageOf,
  SseOpenEvent,
  WithReset,
} from "./types";
