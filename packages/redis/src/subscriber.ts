/**
 * The pub/sub connection of a standalone Redis: sharded pub/sub (`SSUBSCRIBE`, which a standalone
 * server treats as one shard) on the channels this process has subscribers for, on a client the
 * adapter owns (created from the URL, or a `duplicate()` of the user's client). node-redis
 * reconnects it with our backoff and subscribes again before it says 'ready', and the adapter
 * then reads every active channel from its last delivered event. (A cluster has one such
 * connection per primary: cluster-subscriber.ts.)
 */
import type { BackoffOptions } from "./backoff";
import {
  emitterOf,
  ownedStrategy,
  releaseClient,
  type ClientFactory,
  type Emitter,
  type NodeRedisClient,
} from "./client";
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
  private readonly _client: NodeRedisClient;
  private readonly _emitter: Emitter;
  private readonly _listeners: Array<readonly [string, (...args: any[]) => void]>;
  private readonly _onMessage: (message: string, channel: string) => void;
  private _attempting = true;
  private _released = false;

  constructor(factory: ClientFactory, backoff: BackoffOptions, events: SubscriberEvents) {
    this._client = factory(ownedStrategy(() => this._released, backoff)) as NodeRedisClient;
    this._emitter = emitterOf(this._client);
    this._onMessage = (message, channel) => events.onMessage(message, channel);
    this._listeners = [
      [
        "ready",
        () => {
          this._attempting = false;
          events.onResubscribed();
        },
      ],
      [
        "error",
        (err: unknown) => {
          this._attempting = false;
          events.onError(err instanceof Error ? err : new Error(String(err)));
        },
      ],
      ["reconnecting", () => (this._attempting = true)],
    ];
    for (const [event, listener] of this._listeners) this._emitter.on(event, listener);
  }

  /** Connects; the client retries by itself until connected or released. */
  async connect(): Promise<void> {
    await this._client.connect();
  }

  get ready(): boolean {
    return this._client.isReady;
  }

  async subscribe(channels: readonly string[]): Promise<void> {
    if (channels.length > 0) await this._client.sSubscribe!([...channels], this._onMessage);
  }

  async unsubscribe(channels: readonly string[]): Promise<void> {
    if (channels.length > 0) await this._client.sUnsubscribe!([...channels], this._onMessage);
  }

  /** A `PING`, which RESP3 allows while subscribed. */
  async ping(timeout: number): Promise<void> {
    if (!this._client.isReady) return;
    await answerWithin(this._client.sendCommand(["PING"]), timeout);
  }

  /** Closes the client at once (its subscriptions go with it). Safe twice. */
  async release(): Promise<void> {
    if (this._released) return;
    this._released = true;
    await releaseClient(this._client, this._emitter, this._attempting, 0, this._listeners);
  }
}
