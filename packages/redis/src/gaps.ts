/**
 * Gap reads: the stream after the last id a process delivered, when the live feed may have missed
 * something (a channel just activated, a reconnect, an announcement whose `prev` is not the last
 * id delivered). Reads one page; the live feed (live.ts) calls it until the stream is caught up.
 *
 * A position that is an entry this process delivered must still be in the stream for what
 * follows to be the events it missed. If it is not, `history()`'s classification (history.ts)
 * says why: gone from a stream that expired while nothing followed it (nothing missed), trimmed
 * (`too-old`: the process was away longer than the stream covers), or never held by the stream
 * as it is now (`unknown`: Redis lost acknowledged writes, as a failover with asynchronous
 * replication can). Either of the last two is a reset for the channel's live subscribers.
 */
import type { AdapterChannelOptions, AdapterEvent, AdapterReset } from "@sluice/express-sse";
import type { Connection } from "./client";
import { toEventId, toStreamId } from "./codec";
import { range } from "./commands";
import { readHistory, type StreamKeys } from "./history";
import type { Entry } from "./replies";

type Bounds = AdapterChannelOptions["history"];

/** Entries per gap read. */
export const GAP_PAGE = 1000;

export type GapRead =
  /** Entries after the position (`done`: the stream had no more when read). */
  | { readonly kind: "entries"; readonly entries: readonly Entry[]; readonly done: boolean }
  /** Events after a position that was found gone but known (history.ts), ready to deliver. */
  | { readonly kind: "events"; readonly events: readonly AdapterEvent[] }
  /** Events were lost: reset the live subscribers, continue after `reset.newestId`. */
  | { readonly kind: "reset"; readonly reset: AdapterReset; readonly position: string | undefined };

/**
 * One page of the stream after `position`, up to `end` (the id before the first announcement
 * queued, whose events the queue itself carries; `+`: no announcement waiting). `trusted`: a
 * start position (not necessarily an entry), read exclusively; otherwise an entry this process
 * delivered, which must be found.
 */
export async function readGap(
  redis: Connection,
  stream: StreamKeys,
  position: string,
  trusted: boolean,
  bounds: Bounds,
  end = "+",
): Promise<GapRead> {
  const start = trusted ? `(${position}` : position;
  const entries = await range(redis, stream.key, start, end, GAP_PAGE);
  const done = entries.length < GAP_PAGE || entries.at(-1)?.[0] === end;
  if (trusted) return { kind: "entries", entries, done };
  if (entries[0]?.[0] === position) return { kind: "entries", entries: entries.slice(1), done };
  // The position is not in the stream: classify it as a resuming client's id would be.
  const result = await readHistory(redis, stream, toEventId(position, stream.tag), bounds);
  if (result.kind === "events") return { kind: "events", events: result.events };
  const newest =
    result.newestId === undefined ? undefined : toStreamId(result.newestId, stream.tag);
  return {
    kind: "reset",
    reset: { reason: result.kind, oldestId: result.oldestId, newestId: result.newestId },
    position: newest,
  };
}
