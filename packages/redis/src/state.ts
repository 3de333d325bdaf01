/**
 * The per-stream state every part of the adapter shares: one `StreamState` per channel key that
 * this process has open, however many `Channel`s use it. No I/O.
 */
import type { AdapterChannelOptions, AdapterEvent, AdapterReset } from "@sluice/express-sse";
import type { Announcement } from "./codec";
import { streamTag } from "./codec";
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

export class StreamState implements StreamKeys {
  readonly metaKey: string;
  readonly tag: string;
  readonly receivers = new Set<Receiver>();

  // --- publishing (publisher.ts) ---
  /** Values of this process's publishes, by stream id, until the live feed delivers them. */
  readonly values = new Map<string, unknown>();
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
  /** The last stream id delivered, or the start position; `undefined` until it is known. */
  position: string | undefined = undefined;
  /**
   * `position` is a start position (or the newest id after a reset), not an entry delivered here:
   * a gap read takes what follows it without looking for it in the stream.
   */
  trusted = true;
  /** Announcements received and not handled yet (in arrival order: stream order). */
  queue: Announcement[] = [];
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
