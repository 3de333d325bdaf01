/**
 * The Redis commands the adapter sends on its command connection, as typed functions over
 * `Connection#send`. Every command names its key, so that a cluster routes it to the node that
 * serves the key's slot (MOVED, ASK and failover are node-redis's job).
 */
import type { Connection } from "./client";
import { asEntries, asRecord, asString, type Entry } from "./replies";
import { PUBLISH_SCRIPT } from "./scripts";

/** What `XINFO STREAM` says about a stream (Redis 7 fields). */
export interface StreamInfo {
  /** Entries in the stream now. */
  readonly length: number;
  /** Entries ever added: more than `length` once anything was trimmed or deleted. */
  readonly entriesAdded: number;
  readonly lastGeneratedId: string;
  /** Newest id removed by `XDEL` ("0-0": none). Redis 7.0 does not count trimming here. */
  readonly maxDeletedEntryId: string;
  /** The oldest entry still in the stream. */
  readonly firstEntryId: string | undefined;
}

export interface PublishArgs {
  readonly stream: string;
  readonly metaKey: string;
  readonly maxLen: number;
  /** ms; 0: none. */
  readonly maxAge: number;
  /** ms the meta hash lives; 0: for ever. */
  readonly metaTtl: number;
  readonly flags: string;
  readonly event: string;
  readonly data: string;
}

/**
 * Runs the publish script (scripts.ts): resolves with the new entry's id, or fails with a
 * `NoAnswerError` after `timeout` ms.
 *
 * Always `EVAL`, never `EVALSHA`: a node that does not have the script cached (a restart, a
 * replica just promoted, `SCRIPT FLUSH`) answers `NOSCRIPT`, and a retry would overtake the
 * publishes already on their way behind it on the same connection, so events published one after
 * the other would be stored out of order. Redis caches the compiled script either way; `EVAL`
 * costs it a SHA1 of the script's few hundred bytes per call.
 */
export async function publishEntry(
  redis: Connection,
  args: PublishArgs,
  timeout: number,
): Promise<string> {
  const command = [
    "EVAL",
    PUBLISH_SCRIPT,
    "2",
    args.stream,
    args.metaKey,
    String(args.maxLen),
    String(args.maxAge),
    String(args.metaTtl),
    args.flags,
    args.event,
    args.data,
  ];
  return asString(await redis.send(args.stream, command, timeout));
}

/** `XINFO STREAM key`, or `undefined` when the key does not exist. */
export async function streamInfo(redis: Connection, key: string): Promise<StreamInfo | undefined> {
  let reply: unknown;
  try {
    reply = await redis.send(key, ["XINFO", "STREAM", key]);
  } catch (err) {
    if (err instanceof Error && /no such key/i.test(err.message)) return undefined;
    throw err;
  }
  const info = asRecord(reply);
  const first = info["first-entry"];
  return {
    length: Number(info["length"] ?? 0),
    entriesAdded: Number(info["entries-added"] ?? 0),
    lastGeneratedId: asString(info["last-generated-id"] ?? "0-0"),
    maxDeletedEntryId: asString(info["max-deleted-entry-id"] ?? "0-0"),
    firstEntryId: Array.isArray(first) ? asString(first[0]) : undefined,
  };
}

/** `XRANGE key start end COUNT count` (`start` may be exclusive: `(id`). */
export async function range(
  redis: Connection,
  key: string,
  start: string,
  end: string,
  count: number,
): Promise<Entry[]> {
  return asEntries(await redis.send(key, ["XRANGE", key, start, end, "COUNT", String(count)]));
}

/** `XREVRANGE key end start COUNT count`: newest first. */
export async function rangeReverse(
  redis: Connection,
  key: string,
  end: string,
  start: string,
  count: number,
): Promise<Entry[]> {
  return asEntries(await redis.send(key, ["XREVRANGE", key, end, start, "COUNT", String(count)]));
}

/** A channel's meta hash (keys.ts): the first and the newest ids ever published, if known. */
export interface StreamMeta {
  readonly first: string | undefined;
  readonly last: string | undefined;
}

/** `HMGET meta f l`. */
export async function readMeta(redis: Connection, key: string): Promise<StreamMeta> {
  const reply = await redis.send(key, ["HMGET", key, "f", "l"]);
  const [first, last] = Array.isArray(reply) ? reply : [];
  return {
    first: first === null || first === undefined ? undefined : asString(first),
    last: last === null || last === undefined ? undefined : asString(last),
  };
}

/** Redis's clock (`TIME`) in ms, on the node serving `key` (the clock that stamps its ids). */
export async function timeMs(redis: Connection, key: string): Promise<number> {
  // TIME names no key; on a cluster, routed by `key` to the node whose clock issues its ids.
  const reply = await redis.send(key, ["TIME"]);
  if (!Array.isArray(reply)) throw new TypeError(`Unexpected TIME reply: ${String(reply)}`);
  return Number(reply[0]) * 1000 + Math.floor(Number(reply[1]) / 1000);
}
