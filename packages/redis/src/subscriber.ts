/**
 * The pub/sub side of a standalone Redis: sharded pub/sub (`SSUBSCRIBE`, which a standalone
 * server treats as one shard) on the channels this process has subscribers for, over one
 * connection of the adapter's own (pubsub-connection.ts), to the command connection's server with
 * its credentials and TLS (endpoint.ts). When the connection fails it is replaced with backoff, the
 * channels are subscribed again, and the adapter then reads every active channel from its last
 * delivered event. (A cluster has one connection per primary: cluster-subscriber.ts.)
 */
import { backoffDelay, type BackoffOptions } from "./backoff";
import type { Endpoint } from "./endpoint";
import { PubSubConnection } from "./pubsub-connection";
import { answerWithin } from "./replies";

export interface SubscriberEvents {
  /** A message on a subscribed channel. */
  onMessage(message: string, channel: string): void;
  /** Connected again with every subscription back: read what may have been missed. */
  onResubscribed(): void;
  /** Subscriptions lost (their connection failed): to be subscribed again, then read. */
  onDropped(channels: readonly string[]): void;
  /** A connection error (reported by the adapter once per outage). */
  onError(error: Error): void;
}

/** What the live feed needs of a pub/sub connection, standalone or cluster. */
export interface PubSub {
  /** Subscribing can be tried now. */
  readonly ready: boolean;
  connect(): Promise<void>;
  /** `SSUBSCRIBE`; resolves once Redis confirmed every channel. */
  subscribe(channels: readonly string[]): Promise<void>;
  unsubscribe(channels: readonly string[]): Promise<void>;
  /** Fails with a `NoAnswerError` if the connection does not answer within `timeout` ms. */
  ping(timeout: number): Promise<void>;
  release(): Promise<void>;
}

export class Subscriber implements PubSub {
  /** @internal Channels Redis confirmed: subscribed again on every new connection. */
  private readonly _channels = new Set<string>();
  /** @internal */
  private _connection: PubSubConnection | undefined = undefined;
  /** @internal The connection is up and the channels are subscribed on it. */
  private _ready = false;
  /** @internal */
  private _attempt = 0;
  /** @internal */
  private _retry: NodeJS.Timeout | undefined = undefined;
  /** @internal */
  private _released = false;

  constructor(
    private readonly _endpoint: Endpoint,
    private readonly _backoff: BackoffOptions,
    private readonly _events: SubscriberEvents,
  ) {}

  /** Connects, and keeps reconnecting with backoff until released. */
  async connect(): Promise<void> {
    if (this._connection !== undefined || this._released) return;
    const connection = new PubSubConnection(this._endpoint, {
      onMessage: (message, channel) => this._events.onMessage(message, channel),
      // Not on a standalone server; if it happens, the connection is suspect: start again.
      onTakenAway: () => connection.destroy(),
      onClose: (error) => this._lost(connection, error),
    });
    this._connection = connection;
    try {
      await connection.connected;
      // Everything subscribed before, then the feed reads what it may have missed meanwhile.
      await connection.subscribe([...this._channels]);
    } catch (error) {
      // A failure before the connection closed (a refused HELLO, a refused SSUBSCRIBE): start over.
      if (this._connection === connection) {
        connection.destroy();
        this._lost(connection, error instanceof Error ? error : new Error(String(error)));
      }
      return;
    }
    if (this._connection !== connection || !connection.ready) return;
    this._attempt = 0;
    this._ready = true;
    this._events.onResubscribed();
  }

  get ready(): boolean {
    return this._ready;
  }

  async subscribe(channels: readonly string[]): Promise<void> {
    const connection = this._connection;
    if (!this._ready || connection === undefined) {
      throw new Error("Not connected to Redis (pub/sub)");
    }
    await connection.subscribe(channels);
    // Confirmed on the current connection only; a newer one subscribes what it finds here.
    if (this._connection === connection)
      for (const channel of channels) this._channels.add(channel);
  }

  async unsubscribe(channels: readonly string[]): Promise<void> {
    for (const channel of channels) this._channels.delete(channel);
    if (this._ready) await this._connection?.unsubscribe(channels);
  }

  async ping(timeout: number): Promise<void> {
    if (!this._ready || this._connection === undefined) return;
    await answerWithin(this._connection.ping(), timeout);
  }

  /** Closes the connection at once (its subscriptions go with it). Safe twice. */
  async release(): Promise<void> {
    this._released = true;
    this._ready = false;
    clearTimeout(this._retry);
    this._connection?.destroy();
    this._connection = undefined;
  }

  /** @internal The connection failed: said once per connection; a new one after a backoff. */
  private _lost(connection: PubSubConnection, error: Error): void {
    if (this._connection !== connection || this._released) return;
    this._connection = undefined;
    this._ready = false;
    this._events.onError(
      new Error(`${this._endpoint.address}: ${error.message}`, { cause: error }),
    );
    clearTimeout(this._retry);
    this._retry = setTimeout(
      () => void this.connect(),
      backoffDelay(this._attempt++, this._backoff),
    );
    this._retry.unref();
  }
}
