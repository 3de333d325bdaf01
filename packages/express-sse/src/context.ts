/**
 * What the streams of one `sse()` instance share with the modules around them: the context
 * (options, registry, counters), the response slot the middleware and the stream both use, the
 * owner a stream tells first when it closes (a channel), and the servers being shut down.
 */
import type { ResolvedOptions } from "./options";
import type { StreamRegistry } from "./registry";
import type { StreamClosedError } from "./close-reason";
import type { SseStream } from "./stream";
import type { Lane } from "./lane";

/** Counters of one `sse()` instance, since it was created. */
export interface StreamStats {
  /** Streams open now. */
  open: number;
  /** Streams started in all. */
  opened: number;
  /** Events written (`send`, `sendFrame`, channel deliveries), each copy counted. */
  events: number;
  /** Bytes written, heartbeats and comments included. */
  bytes: number;
  /** Heartbeat comments written. */
  heartbeats: number;
  /** Streams disconnected for passing `maxBufferedBytes`. */
  slowClientsDropped: number;
  /** Streams refused with 503 because of `maxConnections`. */
  rejected: number;
}

/** What every stream of one `sse()` instance shares. */
export interface StreamContext {
  readonly options: ResolvedOptions;
  /** Its open streams (`maxConnections`, `stats().open`, shutdown) and their heartbeat. */
  readonly registry: StreamRegistry<SseStream>;
  /** Plain integer counters, bumped on paths that already run: no measurable cost. */
  readonly stats: Omit<StreamStats, "open">;
}

/** Told first when the stream closes (a channel's subscriber: no closure needed). */
export interface StreamOwner {
  /** @internal */
  _streamClosed(stream: SseStream, reason: StreamClosedError): void;
  /** @internal The owner's fast lane (a channel's), which the heartbeat asks before a ping. */
  readonly _lane?: Lane<SseStream>;
}

/**
 * The response's slot: the `sse()` context until the stream exists (middleware.ts), then the
 * stream, set by the SseStream constructor. Read by the `res.sse` getter.
 */
export const kStream = Symbol("sluice.stream");

/** Servers being shut down: a stream that starts on one of them is closed at once. */
export const closingServers = new WeakSet<object>();
