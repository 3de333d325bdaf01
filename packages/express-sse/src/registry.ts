import { HEARTBEAT_CHECKS_PER_INTERVAL } from "./constants";

/** What the heartbeat needs from a stream (structural, so this module never imports stream.ts). */
export interface Pingable {
  /** @internal Heartbeat checks since the stream's last write; every write sets it back to 0. */
  _idle: number;
  /**
   * Writes a heartbeat comment; a stream that had writes this count does not see (a channel's
   * lane, lane.ts) may instead set `_idle` back to the count since those.
   */
  ping(): void;
}

/**
 * Every registry that holds at least one stream: what `shutdown(server)` walks to find the open
 * streams of the process (instead of a second, process-wide set of streams: one `Set` entry per
 * stream saved).
 */
export const populatedRegistries = new Set<StreamRegistry<Pingable>>();

/**
 * The open streams of one `sse()` instance: the set that `maxConnections`, `stats().open`,
 * `middleware.streams` and `shutdown()` read, and the one heartbeat timer that keeps them alive.
 *
 * Why one timer and not one per stream: an interval per client costs a timer object and a
 * closure per connection and must be cleared on every close path; one interval over a `Set` is
 * O(1) memory per client and can only leak if the set does, which `size` makes checkable (ws's
 * README does the same over `wss.clients`). The timer starts with the first stream, stops with
 * the last, and is unref'd so it never keeps a process alive on its own.
 *
 * The timer fires four times per interval and counts, per stream, the checks since its last
 * write (`_idle`, which every write resets). A write can fall anywhere between two checks, so a
 * count of 4 means 3 to 4 quarters of silence, and the ping waits for 5: a stream is pinged only
 * after a whole interval without writing, and no stream stays silent for more than 1.25 x
 * `interval`. Real traffic is never padded with pings. A counter instead of a timestamp keeps the
 * field a small integer: a `Date.now()` value is a boxed number, 16 bytes per stream.
 */
export class StreamRegistry<T extends Pingable = Pingable> {
  /** The heartbeat interval in ms; `0`: no heartbeat (the set is kept, no timer ever starts). */
  readonly heartbeatInterval: number;
  readonly streams = new Set<T>();
  /** Milliseconds between two heartbeat checks: a quarter of the interval (at least 1). */
  readonly checkInterval: number;
  /** @internal */
  private _timer: NodeJS.Timeout | undefined = undefined;

  constructor(heartbeatInterval: number) {
    this.heartbeatInterval = heartbeatInterval;
    this.checkInterval = Math.max(1, Math.floor(heartbeatInterval / HEARTBEAT_CHECKS_PER_INTERVAL));
  }

  get size(): number {
    return this.streams.size;
  }

  /** `true` while the heartbeat timer is scheduled (from the first stream to the last). */
  get heartbeatRunning(): boolean {
    return this._timer !== undefined;
  }

  add(stream: T): void {
    if (this.streams.size === 0) populatedRegistries.add(this as unknown as StreamRegistry);
    this.streams.add(stream);
    if (this._timer === undefined && this.heartbeatInterval > 0) {
      this._timer = setInterval(heartbeatOnTick, this.checkInterval, this);
      this._timer.unref();
    }
  }

  delete(stream: T): void {
    if (!this.streams.delete(stream)) return;
    if (this.streams.size !== 0) return;
    populatedRegistries.delete(this as unknown as StreamRegistry);
    if (this._timer !== undefined) {
      clearInterval(this._timer);
      this._timer = undefined;
    }
  }

  /** The heartbeat: counts a check on every stream and pings those idle for a whole interval. */
  tick(): void {
    // A ping can close a stream (a dead socket past maxBufferedBytes), which deletes it from the
    // set while we iterate; Set iteration is defined for deletion of visited entries.
    for (const stream of this.streams) {
      if (++stream._idle > HEARTBEAT_CHECKS_PER_INTERVAL) stream.ping();
    }
  }
}

function heartbeatOnTick(registry: StreamRegistry): void {
  registry.tick();
}
