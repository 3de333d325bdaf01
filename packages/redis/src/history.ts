/**
 * `history(afterId)` on a Redis stream: the events after an id, or a reset saying why not.
 *
 * The stream is trimmed approximately (`MAXLEN ~`, `MINID ~`: whole nodes at a time, cheap for
 * Redis), so it may hold more than the channel's bounds. The bounds are applied here, exactly:
 * only the `max` newest entries, none older than `maxAge`, count as retained. Then:
 * - `unknown`: not an event id of this stream (see codec.ts), newer than the stream's
 *   `last-generated-id`, or an id the stream never held: older than its first entry while nothing
 *   was ever removed from it, or inside its range yet neither there nor deleted (an id of another
 *   stream, or from before Redis lost its data);
 * - `too-old`: events after it were removed. Trimming removes the oldest entries, so that is the
 *   case when the id is older than the stream's first entry and not in the stream itself, once
 *   anything was removed (`entries-added > length`); or when `max-deleted-entry-id` (entries
 *   removed by `XDEL`) is newer than it. Also when more than `max` events follow it, or the first
 *   one is older than `maxAge`;
 * - otherwise the events after it (`XRANGE key afterId + COUNT max+2`, the id itself dropped).
 *
 * - a stream that is gone (its history expired, or Redis lost it) while its last-id key (keys.ts)
 *   is still there: an id equal to it missed nothing (no events); an older one is `too-old`; any
 *   other `unknown`.
 *
 * Redis 7.0 does not count trimmed entries in `max-deleted-entry-id` (only `XDEL`ed ones), hence
 * the first entry and `entries-added`. The adapter keeps `max + 1` entries at least, so the one
 * just before the oldest retained is still there and a client holding it is not reset for
 * nothing.
 */
import type { AdapterChannelOptions, AdapterEvent, HistoryResult } from "@sluice/express-sse";
import type { Connection } from "./client";
import {
  ZERO_ID,
  compareStreamIds,
  decodeEntry,
  previousOf,
  streamIdMs,
  toEventId,
  toStreamId,
} from "./codec";
import {
  range,
  rangeReverse,
  readMeta,
  streamInfo,
  timeMs,
  type StreamInfo,
  type StreamMeta,
} from "./commands";
import type { Entry } from "./replies";

type Bounds = AdapterChannelOptions["history"];

const UP_TO_DATE: HistoryResult = Object.freeze({ kind: "events", events: Object.freeze([]) });

/** Where a channel's events are: its stream, its last-id key, and the tag of its ids. */
export interface StreamKeys {
  readonly key: string;
  readonly metaKey: string;
  readonly tag: string;
}

/** The stream of `keys` after event id `afterEventId`. */
export async function readHistory(
  redis: Connection,
  keys: StreamKeys,
  afterEventId: string,
  bounds: Bounds,
): Promise<HistoryResult> {
  const { key, tag } = keys;
  const parsed = toStreamId(afterEventId, tag);
  const valid = parsed !== undefined && parsed !== ZERO_ID;
  const afterId = parsed ?? ZERO_ID;
  // Sent together: one round trip.
  const [info, entries, meta, now] = await Promise.all([
    streamInfo(redis, key),
    valid ? range(redis, key, afterId, "+", bounds.max + 2) : undefined,
    readMeta(redis, keys.metaKey),
    bounds.maxAge === Infinity ? undefined : timeMs(redis, key),
  ]);
  if (info === undefined || info.lastGeneratedId === ZERO_ID) {
    return gone(afterId, valid, meta, tag);
  }
  const reset = async (kind: "unknown" | "too-old"): Promise<HistoryResult> => {
    const oldest = await oldestRetained(redis, key, info, bounds, now);
    return {
      kind,
      oldestId: oldest === undefined ? undefined : toEventId(oldest, tag),
      newestId: toEventId(info.lastGeneratedId, tag),
    };
  };
  if (!valid || entries === undefined) return reset("unknown");
  const order = compareStreamIds(afterId, info.lastGeneratedId);
  if (order > 0) return reset("unknown");
  if (order === 0) return UP_TO_DATE;

  // The id itself, or the one the first entry of a re-created stream says came before it.
  const held =
    entries[0]?.[0] === afterId ||
    (entries[0] !== undefined &&
      entries[0][0] === info.firstEntryId &&
      previousOf(entries[0][1]) === afterId);
  const after = entries[0]?.[0] === afterId ? entries.slice(1) : entries;
  if (!held) {
    const first = info.firstEntryId;
    if (first === undefined || compareStreamIds(afterId, first) < 0) {
      // Before everything the stream holds: trimmed away, unless nothing was ever removed (from
      // this stream, or from an earlier one that expired: the meta hash remembers its ids).
      const removed = info.entriesAdded > info.length || issuedHere(afterId, valid, meta);
      return reset(removed ? "too-old" : "unknown");
    }
    // Inside the stream's range, yet not there, and not deleted either: never issued here.
    if (compareStreamIds(afterId, info.maxDeletedEntryId) > 0) return reset("unknown");
  }
  if (compareStreamIds(info.maxDeletedEntryId, afterId) > 0) return reset("too-old");
  if (after.length > bounds.max) return reset("too-old");
  if (now !== undefined && after.length > 0 && isExpired(after[0]![0], now, bounds.maxAge)) {
    return reset("too-old");
  }
  return { kind: "events", events: decodeAll(after, tag) };
}

/** The stream is gone; what its meta hash (if still there) says of `afterId`. */
function gone(afterId: string, valid: boolean, meta: StreamMeta, tag: string): HistoryResult {
  const { last } = meta;
  if (last === undefined) return { kind: "unknown", oldestId: undefined, newestId: undefined };
  if (valid && afterId === last) return UP_TO_DATE;
  const kind = issuedHere(afterId, valid, meta) ? "too-old" : "unknown";
  return { kind, oldestId: undefined, newestId: toEventId(last, tag) };
}

/** Whether `afterId` lies in the range of ids the meta hash says this channel issued. */
function issuedHere(afterId: string, valid: boolean, meta: StreamMeta): boolean {
  return (
    valid &&
    meta.first !== undefined &&
    meta.last !== undefined &&
    compareStreamIds(afterId, meta.first) >= 0 &&
    compareStreamIds(afterId, meta.last) < 0
  );
}

function isExpired(id: string, now: number, maxAge: number): boolean {
  return now - streamIdMs(id) > maxAge;
}

function decodeAll(entries: readonly Entry[], tag: string): AdapterEvent[] {
  const events: AdapterEvent[] = [];
  for (const [id, fields] of entries) {
    const event = decodeEntry(toEventId(id, tag), fields);
    if (event !== undefined) events.push(event);
  }
  return events;
}

/**
 * The oldest entry still retained by the channel's bounds, for a reset's `oldestId` (a hint: a
 * client that resumes from it or later gets events). By count it is the `max`-th newest entry,
 * read from whichever end of the stream is nearer; by age the first entry not older than
 * `maxAge`. Only called on resets (a second round trip).
 */
async function oldestRetained(
  redis: Connection,
  key: string,
  info: StreamInfo,
  bounds: Bounds,
  now: number | undefined,
): Promise<string | undefined> {
  if (info.length === 0 || bounds.max === 0) return undefined;
  const keep = Math.min(info.length, bounds.max);
  const skip = info.length - keep;
  let byCount: string | undefined;
  // Both reads end at the newest id of `info`, so events published meanwhile don't shift them.
  const newest = info.lastGeneratedId;
  if (skip === 0) byCount = info.firstEntryId;
  else if (skip + 1 <= keep) byCount = (await range(redis, key, "-", newest, skip + 1)).at(-1)?.[0];
  else byCount = (await rangeReverse(redis, key, newest, "-", keep)).at(-1)?.[0];
  if (now === undefined || byCount === undefined) return byCount;
  const since = Math.max(0, now - bounds.maxAge);
  const byAge = (await range(redis, key, `${since}-0`, "+", 1))[0]?.[0];
  if (byAge === undefined) return undefined;
  return compareStreamIds(byAge, byCount) > 0 ? byAge : byCount;
}
