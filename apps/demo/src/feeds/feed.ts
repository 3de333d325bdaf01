import type { IRouter } from "express";
import type { Adapter, SseMiddleware, SseOptions } from "@sluice/express-sse";

/** Every event stream of the demo, as it appears in the `stream` label of `/metrics`. */
export const STREAMS = [
  "time",
  "client-count",
  "sse",
  "chat",
  "updates",
  "ticker",
  "progress",
  "private",
] as const;
export type StreamName = (typeof STREAMS)[number];

/** What a feed module mounts routes on (an Express app or router). */
export type Routes = IRouter;

/** Where a channel's errors go by default: the log, as the adapter's do (main.ts). */
export function logChannelError(error: Error): void {
  console.error("channel:", error.message);
}

/** What every feed gets from `createApp()`: the `sse()` options all streams share. */
export interface FeedContext {
  sse: SseOptions;
  /** Where channels keep their events: in memory (default) or Redis (REDIS_URL). */
  adapter?: Adapter | undefined;
  /**
   * Where a channel's errors go (a failed presence push while Redis is down, a throwing filter):
   * `DemoOptions.onChannelError`, `logChannelError` unless a test collects them. Without a
   * listener they would be process warnings.
   */
  onChannelError: (error: Error) => void;
}

/** One event stream of the demo. */
export interface Feed {
  readonly stream: StreamName;
  /**
   * This stream's own `sse()` instance (`app.get(path, feed.events, handler)`), so that
   * `events.stats()` counts this stream only: that is where `/metrics` reads its per-stream series.
   */
  readonly events: SseMiddleware;
  /** Stops the feed's timers, closes its channel and ends its open streams. Safe to call twice. */
  close(): void | Promise<void>;
}

/** Ends every open stream of an `sse()` instance (their `onClose` callbacks release the rest). */
export function endStreams(events: SseMiddleware): void {
  for (const stream of [...events.streams]) stream.close();
}
