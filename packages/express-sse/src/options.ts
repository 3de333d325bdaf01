import { DEFAULT_HEARTBEAT_MS, DEFAULT_MAX_BUFFERED_BYTES } from "./constants";
import { describe, nonNegativeInteger } from "./util";

import { jsonSerialize } from "./serialize";

/** Turns a value into the string sent as event data. */
export type Serializer = (data: unknown) => string;

/** Options of {@link sse}. Every one is optional. */
export interface SseOptions {
  /**
   * Milliseconds of silence after which a stream gets a `: ping` comment, so proxies and load
   * balancers do not close it as idle. Real traffic resets the clock: only idle streams are pinged.
   * One unref'd timer per `sse()` instance serves all its streams. `0` turns heartbeats off.
   * @defaultValue 15000
   */
  heartbeat?: number;
  /**
   * Reconnection delay (ms) sent to the client once, when the stream starts (`retry:` field).
   * Omitted: the client's default (about 3 s in browsers).
   */
  retry?: number;
  /**
   * Turns non-string data into the event's data. Strings are always sent as they are. The
   * default's errors name the value (a BigInt, a cycle, a symbol); a serializer you pass throws
   * its own errors, which reach the caller as they are.
   * @defaultValue JSON.stringify
   */
  serialize?: Serializer;
  /** Extra response headers sent with every stream (for example CORS headers). */
  headers?: Record<string, string | number | readonly string[]>;
  /**
   * Bytes a client may have queued in the process (not yet taken by the kernel) before it is
   * treated as too slow and disconnected, with `signal.reason.type === "max-buffered-bytes"`.
   * Memory per client is therefore bounded; there is no unbounded setting.
   * @defaultValue 1048576 (1 MiB)
   */
  maxBufferedBytes?: number;
  /**
   * Open streams allowed at once for this `sse()` instance; past it a new stream gets
   * `503 Service Unavailable` with `Retry-After`. One instance per process is the usual set-up,
   * which makes this a per-process bound.
   * @defaultValue Infinity
   */
  maxConnections?: number;
}

/** Options after defaults and validation. Frozen. */
export interface ResolvedOptions {
  readonly heartbeat: number;
  readonly retry: number | undefined;
  readonly serialize: Serializer;
  readonly headers: Readonly<Record<string, string | number | readonly string[]>>;
  readonly maxBufferedBytes: number;
  readonly maxConnections: number;
}

const KNOWN = new Set([
  "heartbeat",
  "retry",
  "serialize",
  "headers",
  "maxBufferedBytes",
  "maxConnections",
]);

/**
 * Merges the defaults with `options` and validates every value once, here, so that a typo fails
 * at start-up with a message that names the option instead of misbehaving under load.
 * The caller's object is never mutated.
 */
export function resolveOptions(options: SseOptions | undefined): ResolvedOptions {
  if (options === undefined) options = {};
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new TypeError(`sse() options must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new TypeError(`Unknown sse() option "${key}"`);
  }

  const heartbeat =
    options.heartbeat === undefined
      ? DEFAULT_HEARTBEAT_MS
      : nonNegativeInteger('The "heartbeat" option', options.heartbeat);
  if (heartbeat > 0 && heartbeat < 100) {
    throw new RangeError(
      `The "heartbeat" option must be 0 (off) or at least 100 ms, got ${heartbeat}`,
    );
  }

  // Same rule as the `retry` field (digits only on the wire), worded for an option.
  const retry =
    options.retry === undefined
      ? undefined
      : nonNegativeInteger('The "retry" option', options.retry);

  const serialize = options.serialize ?? jsonSerialize;
  if (typeof serialize !== "function") {
    throw new TypeError(`The "serialize" option must be a function, got ${describe(serialize)}`);
  }

  const headers: Record<string, string | number | readonly string[]> = {};
  if (options.headers !== undefined) {
    if (options.headers === null || typeof options.headers !== "object") {
      throw new TypeError(
        `The "headers" option must be an object, got ${describe(options.headers)}`,
      );
    }
    for (const [name, value] of Object.entries(options.headers)) {
      if (typeof value !== "string" && typeof value !== "number" && !Array.isArray(value)) {
        throw new TypeError(`The "headers" option's "${name}" must be a string, number or array`);
      }
      headers[name] = value;
    }
  }

  let maxBufferedBytes = DEFAULT_MAX_BUFFERED_BYTES;
  if (options.maxBufferedBytes !== undefined) {
    maxBufferedBytes = nonNegativeInteger(
      'The "maxBufferedBytes" option',
      options.maxBufferedBytes,
    );
    if (maxBufferedBytes === 0) {
      throw new RangeError('The "maxBufferedBytes" option must be at least 1');
    }
  }

  let maxConnections = Infinity;
  if (options.maxConnections !== undefined && options.maxConnections !== Infinity) {
    maxConnections = nonNegativeInteger('The "maxConnections" option', options.maxConnections);
  }

  return Object.freeze({
    heartbeat,
    retry,
    serialize,
    headers: Object.freeze(headers),
    maxBufferedBytes,
    maxConnections,
  });
}
