/**
 * Subscribing and unsubscribing, batched: every channel activated (or deactivated) in the same
 * tick goes in one `SSUBSCRIBE` (`SUNSUBSCRIBE`) per slot. A batch that fails (Redis unreachable,
 * a cluster slot that moved) is retried with backoff, or at once when the connection is back;
 * reported once until a batch works. The live feed (live.ts) hears of each stream whose
 * subscription Redis confirmed, and reads what it may have missed until then.
 */
import { backoffDelay, type BackoffOptions } from "./backoff";
import { Live, type StreamState } from "./state";
import type { PubSub } from "./subscriber";

export interface SubscriptionsHost {
  readonly subscriber: PubSub;
  readonly backoff: BackoffOptions;
  readonly closed: boolean;
  report(error: Error): void;
  /** Redis confirmed the subscription of an active stream. */
  subscribed(stream: StreamState): void;
}

export class Subscriptions {
  /** @internal */
  private readonly _toSubscribe = new Set<StreamState>();
  /** @internal */
  private readonly _toUnsubscribe = new Set<StreamState>();
  /** @internal */
  private _scheduled = false;
  /** @internal */
  private _failures = 0;
  /** @internal */
  private _retryTimer: NodeJS.Timeout | undefined = undefined;

  constructor(private readonly _host: SubscriptionsHost) {}

  /** Subscribes an active stream (in the next batch). */
  subscribe(stream: StreamState): void {
    this._toUnsubscribe.delete(stream);
    this._toSubscribe.add(stream);
    this._schedule();
  }

  /** Unsubscribes a stream that went idle (if it was subscribed). */
  unsubscribe(stream: StreamState): void {
    this._toSubscribe.delete(stream);
    if (!stream.subscribed) return;
    stream.subscribed = false;
    this._toUnsubscribe.add(stream);
    this._schedule();
  }

  /** The connection is back: retry pending subscriptions now, not after the backoff. */
  retryNow(): void {
    this._failures = 0;
    clearTimeout(this._retryTimer);
    this._schedule();
  }

  /** A new connection: unsubscribing on the old one is moot. */
  forgetPending(): void {
    this._toUnsubscribe.clear();
  }

  close(): void {
    clearTimeout(this._retryTimer);
    this._toSubscribe.clear();
    this._toUnsubscribe.clear();
  }

  /** @internal */
  private _schedule(): void {
    if (this._scheduled) return;
    this._scheduled = true;
    queueMicrotask(() => {
      this._scheduled = false;
      this._flush();
    });
  }

  /** @internal */
  private _flush(): void {
    const host = this._host;
    if (host.closed) return;
    if (this._toUnsubscribe.size > 0) {
      const keys = [...this._toUnsubscribe].map((stream) => stream.key);
      this._toUnsubscribe.clear();
      // Unconfirmed is harmless: messages for an idle stream are dropped.
      host.subscriber.unsubscribe(keys).catch(() => undefined);
    }
    if (this._toSubscribe.size === 0 || !host.subscriber.ready) return; // retryNow() comes later
    const batch = [...this._toSubscribe].map((stream) => [stream, stream.generation] as const);
    this._toSubscribe.clear();
    const current = ([stream, generation]: (typeof batch)[number]) =>
      stream.generation === generation && stream.live !== Live.Idle;
    host.subscriber.subscribe(batch.map(([stream]) => stream.key)).then(
      () => {
        this._failures = 0;
        for (const entry of batch) if (current(entry)) host.subscribed(entry[0]);
      },
      (error: unknown) => {
        if (host.closed) return;
        for (const entry of batch) if (current(entry)) this._toSubscribe.add(entry[0]);
        if (this._failures++ === 0) {
          host.report(
            new Error(`Subscribing failed (${String(error)}); retrying`, { cause: error }),
          );
        }
        clearTimeout(this._retryTimer);
        this._retryTimer = setTimeout(
          () => this._flush(),
          backoffDelay(this._failures, host.backoff),
        );
        this._retryTimer.unref();
      },
    );
  }
}
