/**
 * A channel's subscriber, beyond its stream: the state a filter, a replay, a resume boundary or a
 * `maxLifetime` deadline needs, where the resume starts (`Last-Event-ID`), and the `event: reset`
 * a subscriber gets when it cannot resume (or its live feed lost events). Used by channel.ts.
 */
import type { AdapterEvent } from "./adapter";
import { Frame } from "./frame";
import type { SseStream } from "./stream";

/** An event as a subscriber's filter sees it. */
export interface ChannelEvent {
  readonly id: string;
  /** The event name, or `undefined` for a plain `message`. */
  readonly event: string | undefined;
  /**
   * The published value: as published for events from this process; for events from other
   * processes (a distributed adapter), the `deserialize` option's result for payloads that went
   * through the serializer, and the string itself for string payloads.
   */
  readonly data: unknown;
}

/** `event: reset` data: the client's last id is unknown or too old, so it missed events. */
export interface ResetData {
  reason: "unknown" | "too-old";
  /** Oldest id still held (replayable after a reconnect with an id at or after it). */
  oldestId: string | null;
  /** The newest id: also the reset event's own `id`. */
  newestId: string | null;
}

/** Longest Last-Event-ID considered; anything longer is treated as unknown without parsing. */
export const MAX_LAST_EVENT_ID = 256;

/**
 * What a subscriber needs beyond its stream: a filter, a replay in progress, a resume boundary or a
 * `maxLifetime` deadline. Most subscribers need none of it, and the channel's map holds `null` for
 * them: an object per subscriber would cost ~70 bytes per open connection. A resumed subscriber
 * drops its state once live (see `_settle`).
 */
export class Subscription {
  /** Events that arrived while history was being replayed; `undefined` once live. */
  pending: AdapterEvent[] | undefined = undefined;
  /** Skip live events at or before this id (the end of the replay or the reset). */
  after: string | undefined = undefined;
  /** `Date.now()` past which `maxLifetime` closes the stream; `undefined` without one. */
  deadline: number | undefined = undefined;
  constructor(
    readonly stream: SseStream,
    readonly filter: ((event: ChannelEvent) => boolean) | undefined,
  ) {}
}

/**
 * The id a subscriber resumes from: the `Last-Event-ID` header, else the `query` parameter (for
 * clients that cannot send the header). The header wins: a reconnecting browser sends it with its
 * newest id, while the URL still carries the first one.
 */
export function lastEventIdOf(stream: SseStream, query: string | undefined): string | undefined {
  const header = stream.lastEventId;
  if (header !== undefined && header !== "") return header;
  if (query === undefined) return undefined;
  const url = stream.request.url ?? "";
  const q = url.indexOf("?");
  if (q === -1) return undefined;
  return new URLSearchParams(url.slice(q + 1)).get(query) ?? undefined;
}

/** The `event: reset` frame: its data is {@link ResetData}, its id the newest id. */
export function resetFrame(
  reason: ResetData["reason"],
  oldestId: string | undefined,
  newestId: string | undefined,
): Frame {
  const data: ResetData = { reason, oldestId: oldestId ?? null, newestId: newestId ?? null };
  return Frame.event(JSON.stringify(data), { event: "reset", id: newestId ?? "" });
}
