/**
 * The pub/sub connection: sharded pub/sub (`SSUBSCRIBE`) on the channels this process has
 * subscribers for, on a client the adapter owns (created from the URL or root nodes, or a
 * `duplicate()` of the user's client). With node-redis (see client.ts for the rest of it).
 *
 * On a standalone server it is one connection. On a cluster, node-redis's cluster client keeps one
 * pub/sub connection per primary that serves a subscribed slot, and moves subscriptions when a
 * slot moves or a replica takes over (node-redis 6.0.1 or later). What this file adds is the
 * signal the adapter needs to never miss an event silently: `onResubscribed` after every
 * (re)connection, once the subscriptions are back, so the adapter reads what it may have missed.
 */
import type { BackoffOptions } from "./backoff";
import {
  emitterOf,
  isCluster,
  ownedStrategy,
  releaseClient,
  type AnyRedisClient,
  type ClientFactory,
  type Emitter,
  type NodeRedisClient,
} from "./client";
import { hashSlot } from "./keys";
import { answerWithin } from "./replies";

export interface SubscriberEvents {
  /** A message on a subscribed channel. */
  onMessage(message: string, channel: string): void;
  /** Connected again with every subscription back (or a cluster node came back). */
  onResubscribed(): void;
  /** A connection error (reported by the adapter once per outage). */
  onError(error: Error): void;
}

/** The subset of node-redis's pub/sub API used here (the same on a client and a cluster). */
interface PubSubClient {
  sSubscribe(
    channels: string[],
    listener: (message: string, channel: string) => void,
  ): Promise<unknown>;
  sUnsubscribe(
    channels: string[],
    listener: (message: string, channel: string) => void,
  ): Promise<unknown>;
}

export class Subscriber {
  private readonly _client: AnyRedisClient;
  private readonly _emitter: Emitter;
  private readonly _cluster: boolean;
  private readonly _listeners: Array<readonly [string, (...args: any[]) => void]>;
  private readonly _onMessage: (message: string, channel: string) => void;
  private _attempting = true;
  private _released = false;

  constructor(factory: ClientFactory, backoff: BackoffOptions, events: SubscriberEvents) {
    this._client = factory(ownedStrategy(() => this._released, backoff));
    this._cluster = isCluster(this._client);
    this._emitter = emitterOf(this._client);
    this._onMessage = (message, channel) => events.onMessage(message, channel);
    const ready = () => {
      this._attempting = false;
      events.onResubscribed();
    };
    const error = (err: unknown) => {
      this._attempting = false;
      events.onError(err instanceof Error ? err : new Error(String(err)));
    };
    const reconnecting = () => (this._attempting = true);
    this._listeners = this._cluster
      ? [
          ["connect", ready],
          ["node-ready", ready],
          ["error", error],
          ["node-error", error],
          ["sharded-channel-moved-error", error],
        ]
      : [
          ["ready", ready],
          ["error", error],
          ["reconnecting", reconnecting],
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

  /**
   * `SSUBSCRIBE` on `channels`; resolves once Redis confirmed. On a cluster, one command per hash
   * slot (a sharded subscription must not cross slots).
   */
  async subscribe(channels: readonly string[]): Promise<void> {
    const client = this._client as unknown as PubSubClient;
    await Promise.all(
      this._bySlot(channels).map((group) => client.sSubscribe(group, this._onMessage)),
    );
  }

  /** `SUNSUBSCRIBE` from `channels`. */
  async unsubscribe(channels: readonly string[]): Promise<void> {
    const client = this._client as unknown as PubSubClient;
    await Promise.all(
      this._bySlot(channels).map((group) => client.sUnsubscribe(group, this._onMessage)),
    );
  }

  /**
   * Checks that the connection answers (standalone: a `PING`, which RESP3 allows while
   * subscribed). A cluster's pub/sub connections are node-redis's to watch: resolves at once.
   */
  async ping(timeout: number): Promise<void> {
    if (this._cluster || !this._client.isReady) return;
    await answerWithin((this._client as NodeRedisClient).sendCommand(["PING"]), timeout);
  }

  /** Closes the client at once (its subscriptions go with it). Safe twice. */
  async release(): Promise<void> {
    if (this._released) return;
    this._released = true;
    await releaseClient(this._client, this._emitter, this._attempting, 0, this._listeners);
  }

  private _bySlot(channels: readonly string[]): string[][] {
    if (!this._cluster) return channels.length === 0 ? [] : [[...channels]];
    const groups = new Map<number, string[]>();
    for (const channel of channels) {
      const slot = hashSlot(channel);
      const group = groups.get(slot);
      if (group === undefined) groups.set(slot, [channel]);
      else group.push(channel);
    }
    return [...groups.values()];
  }
}
