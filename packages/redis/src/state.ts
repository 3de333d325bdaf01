/**
 * The per-stream state every part of the adapter shares: one `StreamState` per channel key that
 * this process has open, however many `Channel`s use it. No I/O.
 */
import type { AdapterChannelOptions, AdapterEvent, AdapterReset } from "@sluice/express-sse";
import type { Announcement } from "./codec";
import { compareStreamIds, idPart, streamTag } from "./codec";
import { metaKey } from "./keys";
import type { StreamKeys } from "./history";

type Bounds = AdapterChannelOptions["history"];

/** What a stream delivers to: one per open channel (`RedisChannel`). */
export interface Receiver {
  readonly bounds: Bounds;
  /** Set by `listen()`; `undefined` before and after `close()`. */
  listener: ((event: AdapterEvent) => void) | undefined;
  onReset: ((reset: AdapterReset) => void) | undefined;
  /** `setActive()`: the channel has subscribers in this process. */
  active: boolean;
}

/** Whether the live feed runs for a stream. */
export const enum Live {
  /** No receiver is active: not subscribed, costs nothing. */
  Idle = 0,
  /** Active: subscribing, finding the start position, or delivering. */
  On = 1,
}

/**
 * The queue of a stream with nothing queued: one shared frozen array, so that a stream that is
 * not waiting for anything keeps no array of its own (and the per-message check for queued
 * announcements reads nothing of the stream's). Replaced by an array of its own to queue.
 */
export const NOTHING_QUEUED: Announcement[] = Object.freeze([]) as unknown as Announcement[];

/*
 * Per message, the live feed reads the stream's state and its receiver; with many channels open
 * they are rarely in the CPU's caches, so what a message touches is kept in few objects: no
 * queue array, values map or receiver set of its own unless one is needed (`NOTHING_QUEUED`,
 * `values`, `only`).
 */
export class StreamState implements StreamKeys {
  readonly metaKey: string;
  readonly tag: string;
  readonly receivers = new Set<Receiver>();
  /**
   * The listener of the only receiver, when there is exactly one and it is active (the common
   * case): events go straight to it, without reading the set or the receiver. Kept up to date by
   * {@link StreamState.refresh}, which every change of a receiver calls.
   */
  direct: ((event: AdapterEvent) => void) | undefined = undefined;

  // --- publishing (publisher.ts) ---
  /**
   * Values of this process's publishes, by stream id, until the live feed delivers them;
   * `undefined` when there are none.
   */
  values: Map<string, unknown> | undefined = undefined;
  /**
   * The newest own publish not answered yet: settled once it is, and so once all earlier ones
   * are (replies come in order). The feed waits for it before delivering (live.ts).
   */
  lastPublish: Promise<void> | undefined = undefined;

  // --- the live feed (live.ts) ---
  live = Live.Idle;
  /** Bumped on every activation and deactivation: async results of an older one are dropped. */
  generation = 0;
  /** `performance.now()` at activation (bounds the start position, see live.ts). */
  activatedAt = 0;
  /** `SSUBSCRIBE` confirmed for the current activation (and connection). */
  subscribed = false;
  /*
   * The last stream id delivered, or the start position (see `position`), as two numbers (NaN:
   * not known): compared with every announcement, and set by every event, without reading or
   * allocating an object of its own (a number field is updated in place). Ids whose parts are
   * beyond 2^53 (never issued by Redis's clock, but a stream may be written by hand) are kept as
   * text in `_exact` instead.
   */
  private _ms = Number.NaN;
  /** @internal */
  private _seq = Number.NaN;
  /** @internal */
  private _exact: string | undefined = undefined;
  /**
   * `position` is a start position (or the newest id after a reset), not an entry delivered here:
   * a gap read takes what follows it without looking for it in the stream.
   */
  trusted = true;
  /** Announcements received and not handled yet (in arrival order: stream order). */
  queue: Announcement[] = NOTHING_QUEUED;
  /** The stream must be read from `position` before the queue (a gap, a reconnect, a start). */
  needsRead = false;
  /** A pump is running for this stream. */
  busy = false;
  /** Gap reads that failed in a row (for backoff, and to report an outage once). */
  readFailures = 0;
  undecodableReported = false;

  constructor(readonly key: string) {
    this.metaKey = metaKey(key);
    this.tag = streamTag(key);
  }

  /** The last stream id delivered, or the start position; `undefined` until it is known. */
  get position(): string | undefined {
    if (this._exact !== undefined) return this._exact;
    return Number.isNaN(this._ms) ? undefined : `${this._ms}-${this._seq}`;
  }

  set position(id: string | undefined) {
    this._exact = undefined;
    this._ms = this._seq = Number.NaN;
    if (id === undefined) return;
    const dash = id.indexOf("-");
    const ms = idPart(id, 0, dash);
    const seq = idPart(id, dash + 1, id.length);
    if (dash > 0 && ms >= 0 && seq >= 0 && ms !== Infinity && seq !== Infinity) {
      this._ms = ms;
      this._seq = seq;
    } else {
      this._exact = id;
    }
  }

  /** Whether the position is known. */
  hasPosition(): boolean {
    return !Number.isNaN(this._ms) || this._exact !== undefined;
  }

  /**
   * Orders stream id `id` (its parts `ms` and `seq` as {@link idPart} reads them) against the
   * position: negative, zero or positive. The position must be known.
   */
  compareToPosition(id: string, ms: number, seq: number): number {
    if (this._exact === undefined && ms >= 0 && seq >= 0 && ms !== Infinity && seq !== Infinity) {
      return ms - this._ms || seq - this._seq;
    }
    return compareStreamIds(id, this.position!);
  }

  /**
   * Whether `announcement` comes right after the position: its previous id is the last id
   * delivered, or (from a start position) nothing lies between the position and it.
   */
  follows(announcement: Announcement): boolean {
    const { prev, prevMs, prevSeq } = announcement;
    const order = this.compareToPosition(prev, prevMs, prevSeq);
    return order === 0 || (this.trusted && order < 0);
  }

  addReceiver(receiver: Receiver): void {
    this.receivers.add(receiver);
    this.refresh();
  }

  deleteReceiver(receiver: Receiver): void {
    this.receivers.delete(receiver);
    this.refresh();
  }

  /** A receiver came, went, listened or changed its activity: recomputes `direct`. */
  refresh(): void {
    const only = this.receivers.size === 1 ? this.receivers.values().next().value : undefined;
    this.direct = only?.active === true ? only.listener : undefined;
  }

  /** Queues an announcement (after those queued already). */
  enqueue(announcement: Announcement): void {
    if (this.queue === NOTHING_QUEUED) this.queue = [announcement];
    else this.queue.push(announcement);
  }

  /** Whether a receiver is active and listening: the feed should run. */
  wanted(): boolean {
    for (const receiver of this.receivers) {
      if (receiver.active && receiver.listener !== undefined) return true;
    }
    return false;
  }

  /** The bounds to read gaps with: the largest `max` of the receivers. */
  bounds(): Bounds | undefined {
    let widest: Bounds | undefined;
    for (const { bounds } of this.receivers) {
      if (widest === undefined || bounds.max > widest.max) widest = bounds;
    }
    return widest;
  }
}
