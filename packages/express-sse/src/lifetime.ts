/**
 * `maxLifetime`: each subscriber's stream is closed at its deadline (the lifetime × a random
 * 0.8–1.0, so reconnects spread out), after a `retry` hint, so clients rebalance across instances
 * and re-authenticate. One unref'd timer per channel, not per subscriber, running only while the
 * channel has subscribers.
 */
import type { SseStream } from "./stream";
import type { Subscription } from "./subscription";

export class LifetimeSweep {
  /** @internal */
  private _timer: NodeJS.Timeout | undefined = undefined;

  constructor(
    /** ms; `Infinity`: off. */
    readonly maxLifetime: number,
    private readonly _retry: number,
    /** The channel's subscribers (read, never changed here). */
    private readonly _subs: ReadonlyMap<SseStream, Subscription | null>,
  ) {}

  get enabled(): boolean {
    return this.maxLifetime !== Infinity;
  }

  /** Gives a new subscriber its deadline, and starts the timer if it is not running. */
  add(sub: Subscription): void {
    sub.deadline = Date.now() + this.maxLifetime * (0.8 + Math.random() * 0.2);
    if (this._timer !== undefined) return;
    const every = Math.max(10, Math.min(1000, Math.floor(this.maxLifetime / 20)));
    this._timer = setInterval(sweepOnTimer, every, this);
    this._timer.unref();
  }

  /** The channel has no subscribers left, or closes. */
  stop(): void {
    if (this._timer === undefined) return;
    clearInterval(this._timer);
    this._timer = undefined;
  }

  /** Closes the streams whose deadline has passed. */
  expire(now: number): void {
    for (const [stream, sub] of this._subs) {
      if (sub?.deadline === undefined || sub.deadline > now) continue;
      stream.retry(this._retry);
      stream._end("max-lifetime");
    }
  }
}

function sweepOnTimer(sweep: LifetimeSweep): void {
  sweep.expire(Date.now());
}
