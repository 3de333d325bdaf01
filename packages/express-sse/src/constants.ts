/**
 * Defaults and wire constants shared by every module. Imports nothing, so any module may use it
 * without reaching "up" the dependency graph.
 */

/**
 * Heartbeat interval. 15 s stays under the 30-60 s idle timeouts of common proxies and load
 * balancers (nginx `proxy_read_timeout` 60 s, AWS ALB 60 s, Heroku 55 s, Cloudflare 100 s).
 */
export const DEFAULT_HEARTBEAT_MS = 15_000;

/** Bytes a single client may have queued (kernel buffers excluded) before it is disconnected. */
export const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;

/** `Retry-After` seconds sent with a 503 when `maxConnections` is reached and no `retry` is set. */
export const DEFAULT_RETRY_AFTER_S = 5;

/** The comment text of a heartbeat. */
export const HEARTBEAT_COMMENT = "ping";

/**
 * How often the heartbeat timer looks for idle streams, as a fraction of the heartbeat interval.
 * Checking four times per interval bounds the longest silence to 1.25 x `heartbeat`.
 */
export const HEARTBEAT_CHECKS_PER_INTERVAL = 4;

/**
 * The response header that tells the client the stream's heartbeat interval (ms), sent when
 * heartbeats are on. A client that knows it can tell a dead connection from a quiet one: a stream
 * is never silent for longer than 1.25 x the interval, so silence for twice it means the
 * connection is gone (`@sluice/client` then drops it and resumes). EventSource ignores it.
 */
export const HEARTBEAT_HEADER = "Sluice-Heartbeat";

export const SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8";

/**
 * `no-transform` makes the `compression` middleware (and RFC 9111-abiding proxies) leave the body
 * alone; `no-cache` stops caches from serving a stale stream.
 */
export const SSE_CACHE_CONTROL = "no-cache, no-transform";
