/**
 * The adapter's connections and their lifecycle: the command connection (publishes, history,
 * gap reads) and the pub/sub connection (standalone: one; cluster: one per primary), created from
 * the options, connected and reconnected with backoff, watched with a `PING` (a silently dead
 * link is replaced), reported once per outage, waited for by `ready()` and by publishes made
 * before the first connection, and released by `close()`.
 */
import { backoffDelay } from "./backoff";
import { Connection, SUBSCRIBER_NAME, type NodeRedisClient } from "./client";
import { endpointOf } from "./endpoint";
import { ClusterSubscriber } from "./cluster-subscriber";
import { createConnections, type Connections } from "./connections";
import type { ResolvedOptions } from "./options";
import { isTimeout } from "./replies";
import { Subscriber, type PubSub, type SubscriberEvents } from "./subscriber";
import { noop } from "./util";

/** What the connections tell the rest of the adapter. */
export interface LinkEvents extends Omit<SubscriberEvents, "onError"> {
  /** The command connection is (again) ready. */
  onCommandsReady(): void;
  /** The pub/sub connection was replaced (it stopped answering): everything subscribes again. */
  onSubscriberReplaced(): void;
  report(error: Error): void;
}

export class Links {
  readonly commands: Connection;
  subscriber: PubSub;
  /** Times the pub/sub connection came back after an outage. */
  reconnects = 0;
  /** @internal */
  private readonly _connections: Connections;
  /** @internal */
  private _commandsEverReady: boolean;
  /** @internal */
  private _commandsDown = false;
  /** @internal */
  private _subscriberConnectedOnce = false;
  /** @internal */
  private _subscriberDown = false;
  /** @internal */
  private _pinging = false;
  /** @internal */
  private readonly _pingTimer: NodeJS.Timeout;
  /** @internal Publishes waiting for the first connection. */
  private readonly _connectWaiters = new Set<() => void>();
  /** @internal */
  private _readyWaiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  /** @internal */
  private _closed = false;

  constructor(
    private readonly _options: ResolvedOptions,
    private readonly _events: LinkEvents,
  ) {
    this._connections = createConnections(_options);
    const events = {
      onReady: () => this._commandsReady(),
      onError: (error: Error) => {
        if (this._commandsDown || this._closed) return;
        this._commandsDown = true;
        _events.report(new Error(`Redis command connection: ${error.message}`, { cause: error }));
      },
    };
    const { borrowed, commands } = this._connections;
    this.commands =
      borrowed !== undefined
        ? Connection.borrowed(borrowed, events) // the user's: they connect and close it
        : Connection.owned(commands!, _options.backoff, events);
    // Every command gets this deadline (client.ts says why not node-redis's own timeout).
    this.commands.timeout = _options.publishTimeout;
    this.commands.connect().catch(noop);
    this._commandsEverReady = this.commands.ready;
    this.subscriber = this._newSubscriber();
    this._pingTimer = setInterval(() => this._ping(), _options.pingInterval);
    this._pingTimer.unref();
  }

  /** Resolves once both connections are up; rejects if closed first. */
  ready(): Promise<void> {
    if (this._closed) return Promise.reject(new Error("The Redis adapter is closed"));
    if (this.commands.ready && this.subscriber.ready) return Promise.resolve();
    this.commands.watch();
    return new Promise((resolve, reject) => this._readyWaiters.push({ resolve, reject }));
  }

  /** Whether the command connection was ever ready (before: a publish waits for it). */
  get commandsEverReady(): boolean {
    return this._commandsEverReady;
  }

  /** Resolves `true` once the command connection is first ready, `false` after `timeout` ms. */
  firstConnection(timeout: number): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (connected: boolean) => {
        clearTimeout(timer);
        this._connectWaiters.delete(onReady);
        resolve(connected);
      };
      const onReady = () => done(true);
      const timer = setTimeout(done, timeout, false);
      this._connectWaiters.add(onReady);
      this.commands.watch();
    });
  }

  async close(): Promise<void> {
    this._closed = true;
    clearInterval(this._pingTimer);
    for (const onReady of [...this._connectWaiters]) onReady(); // they find their channel closed
    const waiters = this._readyWaiters;
    this._readyWaiters = [];
    for (const waiter of waiters) waiter.reject(new Error("The Redis adapter was closed"));
    await this.subscriber.release();
    await this.commands.release(1000);
  }

  /** @internal */
  private _commandsReady(): void {
    this._commandsDown = false;
    this._commandsEverReady = true;
    for (const onReady of [...this._connectWaiters]) onReady();
    this._events.onCommandsReady();
    if (this.subscriber instanceof ClusterSubscriber && !this.subscriber.ready) {
      this._connectCluster(this.subscriber, 0);
    }
    this._settleReady();
  }

  /** @internal */
  private _newSubscriber(): PubSub {
    const events: SubscriberEvents = {
      onMessage: (message, channel) => this._events.onMessage(message, channel),
      onResubscribed: () => this._subscriberReady(),
      onDropped: (channels) => this._events.onDropped(channels),
      onError: (error) => this._subscriberLost(error),
    };
    if (this._connections.cluster) {
      // A cluster: connections per primary, placed by the slot map (read once commands are up).
      const subscriber = new ClusterSubscriber(this.commands, events);
      this._connectCluster(subscriber, 0);
      return subscriber;
    }
    // The command client's server, credentials and TLS (its options, once node-redis parsed them).
    const options = (this.commands.client as NodeRedisClient).options;
    const subscriber = new Subscriber(
      endpointOf(options, SUBSCRIBER_NAME),
      this._options.backoff,
      events,
    );
    subscriber.connect().catch(noop); // retries by itself until connected or released
    return subscriber;
  }

  /**
   * @internal Reads the cluster's slot map once the command connection is up, retrying with
   * backoff.
   */
  private _connectCluster(subscriber: ClusterSubscriber, attempt: number): void {
    if (this._closed || !this.commands.ready) return; // called again by _commandsReady
    subscriber.connect().catch(() => {
      const retry = setTimeout(
        () => this._connectCluster(subscriber, attempt + 1),
        backoffDelay(attempt, this._options.backoff),
      );
      retry.unref();
    });
  }

  /** @internal */
  private _subscriberReady(): void {
    if (this._closed) return;
    if (this._subscriberConnectedOnce && this._subscriberDown) this.reconnects++;
    this._subscriberConnectedOnce = true;
    this._subscriberDown = false;
    this._events.onResubscribed();
    this._settleReady();
  }

  /**
   * @internal The pub/sub connection failed: reported once per outage (node-redis repeats per
   * attempt).
   */
  private _subscriberLost(error: Error): void {
    if (this._subscriberDown || this._closed) return;
    this._subscriberDown = true;
    this._events.report(
      new Error(
        `Lost the Redis pub/sub connection (${error.message}); reconnecting, then reading every channel from its last delivered event`,
        { cause: error },
      ),
    );
  }

  /** @internal A pub/sub connection that does not answer a PING in time is dead: replace it. */
  private _ping(): void {
    if (this._pinging || this._closed || !this.subscriber.ready) return;
    this._pinging = true;
    const subscriber = this.subscriber;
    subscriber
      .ping(this._options.pingInterval)
      .catch(async (error: unknown) => {
        if (this._closed || this.subscriber !== subscriber || !isTimeout(error)) return;
        this._subscriberLost(
          new Error(`no answer to PING within ${this._options.pingInterval} ms`),
        );
        this.subscriber = this._newSubscriber();
        this._events.onSubscriberReplaced();
        await subscriber.release();
      })
      .finally(() => (this._pinging = false));
  }

  /** @internal */
  private _settleReady(): void {
    if (!this.commands.ready || !this.subscriber.ready) return;
    const waiters = this._readyWaiters;
    this._readyWaiters = [];
    for (const waiter of waiters) waiter.resolve();
  }
}
