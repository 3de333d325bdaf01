/** `createRedisAdapter()` options: types, defaults and validation (once, at the call). */
import { DEFAULT_BACKOFF, type BackoffOptions } from "./backoff";
import type { NodeRedisClient } from "./client";
import { resolvePrefix } from "./keys";

export interface RedisAdapterOptions {
  /**
   * `redis[s]://[[user][:password]@][host][:port][/db]`: the adapter creates its two connections
   * (commands, blocking reader) and closes them in `close()`. Give `url` or `client`, not both.
   */
  url?: string;
  /**
   * A node-redis client (`createClient()` from `redis` v5 or v6) that you created, connect and
   * close: commands run on it, and the blocking reader is a `duplicate()` of it that the adapter
   * owns. `close()` never closes this client. Give `url` or `client`, not both.
   */
  client?: NodeRedisClient;
  /** Prepended to channel names to make stream keys: channel "chat" is `sluice:chat`. @defaultValue "sluice:" */
  prefix?: string;
  /**
   * Entries every stream keeps at least, whatever the channel's `history.max` (trimming is
   * `MAXLEN ~ max(history.max + 1, minStreamLength)`). The stream is also how events travel between
   * processes: a reader that lost Redis for a moment catches up from it, so it must not be
   * trimmed to nothing. `history()` still serves only the channel's `history.max` newest.
   * @defaultValue 1000
   */
  minStreamLength?: number;
  /**
   * ms a publish waits for Redis to answer before it rejects; also how long a publish made while
   * the adapter connects for the first time waits for that connection. @defaultValue 5000
   */
  publishTimeout?: number;
  /**
   * ms each blocking `XREAD` waits before it is sent again. Also bounds how late a newly opened
   * channel starts to be read where `CLIENT UNBLOCK` is not allowed, and (plus 5 s) how long a
   * silently dead connection goes unnoticed. @defaultValue 5000
   */
  blockTimeout?: number;
  /**
   * Reconnection backoff of the connections the adapter creates: exponential from `minDelay` up
   * to `maxDelay` ms, with random jitter (each delay is 50-100% of its ceiling).
   * @defaultValue { minDelay: 50, maxDelay: 2000 }
   */
  reconnect?: { minDelay?: number; maxDelay?: number };
}

export interface ResolvedOptions {
  readonly url: string | undefined;
  readonly client: NodeRedisClient | undefined;
  readonly prefix: string;
  readonly minStreamLength: number;
  readonly publishTimeout: number;
  readonly blockTimeout: number;
  readonly backoff: BackoffOptions;
}

const KNOWN = new Set([
  "url",
  "client",
  "prefix",
  "minStreamLength",
  "publishTimeout",
  "blockTimeout",
  "reconnect",
]);

export function resolveOptions(options: RedisAdapterOptions): ResolvedOptions {
  if (options === null || typeof options !== "object") {
    throw new TypeError("createRedisAdapter() needs an options object: { url } or { client }");
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new TypeError(`Unknown createRedisAdapter() option "${key}"`);
  }
  const { url, client } = options;
  if ((url === undefined) === (client === undefined)) {
    throw new TypeError('createRedisAdapter() needs exactly one of the "url" and "client" options');
  }
  if (url !== undefined && (typeof url !== "string" || url === "")) {
    throw new TypeError(
      'The "url" option must be a non-empty string like "redis://localhost:6379"',
    );
  }
  if (
    client !== undefined &&
    (client === null ||
      typeof client !== "object" ||
      typeof client.sendCommand !== "function" ||
      typeof client.duplicate !== "function")
  ) {
    throw new TypeError(
      'The "client" option must be a node-redis client (createClient() from "redis")',
    );
  }
  const reconnect = options.reconnect ?? {};
  if (reconnect === null || typeof reconnect !== "object") {
    throw new TypeError('The "reconnect" option must be an object like { minDelay, maxDelay }');
  }
  for (const key of Object.keys(reconnect)) {
    if (key !== "minDelay" && key !== "maxDelay") {
      throw new TypeError(`Unknown "reconnect" option "${key}"`);
    }
  }
  const minDelay = integer("reconnect.minDelay", reconnect.minDelay, DEFAULT_BACKOFF.minDelay, 1);
  const maxDelay = integer("reconnect.maxDelay", reconnect.maxDelay, DEFAULT_BACKOFF.maxDelay, 1);
  if (minDelay > maxDelay) {
    throw new RangeError(
      `The "reconnect.minDelay" option (${minDelay}) must not exceed "reconnect.maxDelay" (${maxDelay})`,
    );
  }
  return Object.freeze({
    url,
    client,
    prefix: resolvePrefix(options.prefix),
    minStreamLength: integer("minStreamLength", options.minStreamLength, 1000, 0),
    publishTimeout: integer("publishTimeout", options.publishTimeout, 5000, 1),
    blockTimeout: integer("blockTimeout", options.blockTimeout, 5000, 1),
    backoff: Object.freeze({ minDelay, maxDelay }),
  });
}

function integer(name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new RangeError(
      `The "${name}" option must be a safe integer of at least ${min}, got ${String(value)}`,
    );
  }
  return value;
}
