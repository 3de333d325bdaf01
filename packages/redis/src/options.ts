/** `createRedisAdapter()` options: types, defaults and validation (once, at the call). */
import { DEFAULT_BACKOFF, type BackoffOptions } from "./backoff";
import type { AnyRedisClient } from "./client";
import { resolvePrefix } from "./keys";

export interface RedisAdapterOptions {
  /**
   * `redis[s]://[[user][:password]@][host][:port][/db]` of a standalone Redis: the adapter creates
   * its two connections (commands, pub/sub) and closes them in `close()`. Give one of `url`,
   * `rootNodes` and `client`.
   */
  url?: string;
  /**
   * Root node URLs of a Redis Cluster (`["redis://10.0.0.1:7000", …]`; one reachable node is
   * enough, the rest of the cluster is discovered): the adapter creates its two cluster clients
   * (commands, sharded pub/sub) and closes them in `close()`.
   */
  rootNodes?: readonly string[];
  /**
   * A node-redis client that you created, connect and close: `createClient()` (redis v5 or v6) or
   * `createCluster()` (redis v6.0.1 or later). Commands run on it; pub/sub runs on a `duplicate()`
   * of it that the adapter owns. `close()` never closes your client.
   */
  client?: AnyRedisClient;
  /**
   * Prepended to keys: channel "chat" is the stream `sluice:{chat}` (the braces make the name the
   * hash tag, so a channel's keys share a cluster slot). No braces allowed. @defaultValue "sluice:"
   */
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
   * ms between two `PING`s of the pub/sub connection while it has subscriptions (standalone). A
   * connection that does not answer within this time is replaced, and every channel is read from
   * its last delivered id: a silently dead link (a dropped NAT entry, a frozen server) is noticed
   * within twice this time. @defaultValue 5000
   */
  pingInterval?: number;
  /**
   * ms a channel's meta hash (its first and newest ids) outlives its history when the history
   * expires (a channel `maxAge`): within this time a client resuming from the newest id gets no
   * reset, and one resuming from an older id gets `too-old` rather than `unknown`.
   * @defaultValue 86400000 (a day)
   */
  metaTtl?: number;
  /**
   * Presence (a channel's `count`, `members()`): a process that dies without closing its adapter
   * drops out of every count within about 4/3 of this many ms. Each process renews its entry
   * once per a third of it, one command whatever the number of channels. @defaultValue 15000
   */
  presenceTtl?: number;
  /**
   * Reconnection backoff of the connections the adapter creates: exponential from `minDelay` up
   * to `maxDelay` ms, with random jitter (each delay is 50-100% of its ceiling).
   * @defaultValue { minDelay: 50, maxDelay: 2000 }
   */
  reconnect?: { minDelay?: number; maxDelay?: number };
}

export interface ResolvedOptions {
  readonly url: string | undefined;
  readonly rootNodes: readonly string[] | undefined;
  readonly client: AnyRedisClient | undefined;
  readonly prefix: string;
  readonly minStreamLength: number;
  readonly publishTimeout: number;
  readonly pingInterval: number;
  readonly metaTtl: number;
  readonly presenceTtl: number;
  readonly backoff: BackoffOptions;
}

const KNOWN = new Set([
  "url",
  "client",
  "prefix",
  "minStreamLength",
  "publishTimeout",
  "pingInterval",
  "metaTtl",
  "presenceTtl",
  "reconnect",
  "rootNodes",
]);

export function resolveOptions(options: RedisAdapterOptions): ResolvedOptions {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      "createRedisAdapter() needs an options object: { url }, { rootNodes } or { client }",
    );
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new TypeError(`Unknown createRedisAdapter() option "${key}"`);
  }
  const { url, client, rootNodes } = options;
  const given = [url, client, rootNodes].filter((value) => value !== undefined).length;
  if (given !== 1) {
    throw new TypeError(
      'createRedisAdapter() needs exactly one of the "url", "rootNodes" and "client" options',
    );
  }
  if (
    rootNodes !== undefined &&
    (!Array.isArray(rootNodes) ||
      rootNodes.length === 0 ||
      rootNodes.some((node) => typeof node !== "string" || node === ""))
  ) {
    throw new TypeError(
      'The "rootNodes" option must be a non-empty array of URLs like ["redis://127.0.0.1:7000"]',
    );
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
      'The "client" option must be a node-redis client (createClient() or createCluster() from "redis")',
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
    rootNodes: rootNodes === undefined ? undefined : Object.freeze([...rootNodes]),
    client,
    prefix: resolvePrefix(options.prefix),
    minStreamLength: integer("minStreamLength", options.minStreamLength, 1000, 0),
    publishTimeout: integer("publishTimeout", options.publishTimeout, 5000, 1),
    pingInterval: integer("pingInterval", options.pingInterval, 5000, 1),
    metaTtl: integer("metaTtl", options.metaTtl, 86_400_000, 1),
    presenceTtl: integer("presenceTtl", options.presenceTtl, 15_000, 100),
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
