/**
 * `RedisAdapter`: channels on Redis, shared by every process that uses the same Redis (standalone
 * or Cluster). This file owns the adapter's lifecycle: options, the two connections (commands;
 * sharded pub/sub), `ready()`, `stats()`, `close()`, the channels it opened, and error reporting.
 * The work is elsewhere, one job per file:
 *
 * - publisher.ts: a publish is one script call that stores the event in the channel's stream
 *   and announces it on the channel's sharded pub/sub channel, atomically (scripts.ts);
 * - live.ts: the live feed, subscribed only to channels this process has subscribers for;
 *   gaps.ts: the stream reads that fill any gap in it;
 * - history.ts: `history(afterId)` for resuming clients;
 * - keys.ts (key names, hash tags), codec.ts (entries, announcements, ids), commands.ts and
 *   replies.ts (Redis commands and replies), client.ts and subscriber.ts (node-redis).
 */
import { EventEmitter } from "node:events";
import type {
  Adapter,
  AdapterChannel,
  AdapterChannelOptions,
  AdapterEvent,
  AdapterPublish,
  AdapterReset,
  HistoryResult,
} from "@sluice/express-sse";
import { backoffDelay } from "./backoff";
import { Connection, createConnections, type Connections } from "./client";
import { compareEventIds } from "./codec";
import { RedisPublishError } from "./errors";
import { readHistory } from "./history";
import { streamKey, validateChannelName } from "./keys";
import { LiveFeed } from "./live";
import { resolveOptions, type RedisAdapterOptions, type ResolvedOptions } from "./options";
import { publish } from "./publisher";
import { isTimeout } from "./replies";
import { Live, StreamState, type Receiver } from "./state";
import { ClusterSubscriber } from "./cluster-subscriber";
import { Subscriber, type PubSub } from "./subscriber";

type Bounds = AdapterChannelOptions["history"];

const noop = (): void => undefined;

/** Counters since the adapter was created. */
export interface RedisAdapterStats {
  /** Channels open on this adapter. */
  channels: number;
  /** Channel keys this process is subscribed to now (those with local subscribers). */
  subscriptions: number;
  /** Publishes Redis confirmed. */
  published: number;
  /** Events handed to channel listeners (each channel counted). */
  delivered: number;
  /** Stream reads that filled a possible gap in the live feed (starts, reconnects, missed messages). */
  gapReads: number;
  /** Times the live feed found events gone and reset a channel's subscribers. */
  resets: number;
  /** Times the pub/sub connection came back after losing Redis. */
  reconnects: number;
  /** Whether the pub/sub connection is up now. */
  subscriberConnected: boolean;
  /** Whether the command connection (publish, history) is up now. */
  commandsConnected: boolean;
}

class RedisChannel implements AdapterChannel, Receiver {
  listener: ((event: AdapterEvent) => void) | undefined = undefined;
  onReset: ((reset: AdapterReset) => void) | undefined = undefined;
  active = false;
  closed = false;

  constructor(
    private readonly _adapter: RedisAdapter,
    readonly stream: StreamState,
    readonly name: string,
    readonly bounds: Bounds,
  ) {}

  publish(event: AdapterPublish): Promise<string> {
    return this._adapter._publish(this, event);
  }

  listen(onEvent: (event: AdapterEvent) => void, onReset?: (reset: AdapterReset) => void): void {
    if (this.closed) return;
    this.listener = onEvent;
    this.onReset = onReset;
    this._adapter._update(this.stream);
  }

  setActive(active: boolean): void {
    if (this.closed || this.active === active) return;
    this.active = active;
    this._adapter._update(this.stream);
  }

  history(afterId: string): Promise<HistoryResult> {
    return this._adapter._history(this, afterId);
  }

  compare(a: string, b: string): number {
    return compareEventIds(a, b);
  }

  close(): void {
    this._adapter._closeChannel(this);
  }
}

/**
 * Creates a Redis adapter for `Channel`s.
 *
 * @example
 * const adapter = createRedisAdapter({ url: process.env.REDIS_URL });
 * const chat = new Channel("chat", { adapter, history: { max: 1000 } });
 */
export function createRedisAdapter(options: RedisAdapterOptions): RedisAdapter {
  return new RedisAdapter(options);
}

export class RedisAdapter extends EventEmitter<{ error: [error: Error] }> implements Adapter {
  private readonly _options: ResolvedOptions;
  private readonly _connections: Connections;
  private readonly _commands: Connection;
  private _subscriber: PubSub;
  private readonly _streams = new Map<string, StreamState>();
  private readonly _feed: LiveFeed;
  private readonly _counters = {
    published: 0,
    delivered: 0,
    gapReads: 0,
    resets: 0,
    reconnects: 0,
  };
  /** Publishes waiting for the first connection (see `_publish`). */
  private readonly _connectWaiters = new Set<() => void>();
  private _commandsEverReady = false;
  private _subscriberConnectedOnce = false;
  private _subscriberDown = false;
  private _commandsDown = false;
  private _pinging = false;
  private readonly _pingTimer: NodeJS.Timeout;
  private _readyWaiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private _closed = false;
  private _closing: Promise<void> | undefined = undefined;

  constructor(options: RedisAdapterOptions) {
    super();
    this._options = resolveOptions(options);
    this._connections = createConnections(this._options);
    const events = {
      onReady: () => this._commandsReady(),
      onError: (error: Error) => {
        if (this._commandsDown || this._closed) return;
        this._commandsDown = true;
        this._report(new Error(`Redis command connection: ${error.message}`, { cause: error }));
      },
    };
    const { borrowed, commands } = this._connections;
    this._commands =
      borrowed !== undefined
        ? Connection.borrowed(borrowed, events) // the user's: they connect and close it
        : Connection.owned(commands!, this._options.backoff, events);
    this._commands.connect().catch(noop);
    this._commandsEverReady = this._commands.ready;
    const self = this;
    this._feed = new LiveFeed({
      get commands() {
        return self._commands;
      },
      get subscriber() {
        return self._subscriber;
      },
      backoff: this._options.backoff,
      streams: this._streams,
      get closed() {
        return self._closed;
      },
      report: (error) => this._report(error),
      counters: this._counters,
    });
    this._subscriber = this._newSubscriber();
    this._pingTimer = setInterval(() => this._ping(), this._options.pingInterval);
    this._pingTimer.unref();
  }

  /**
   * Resolves once the command connection and the pub/sub connection are both connected. Not
   * needed before use (a publish waits for the first connection, up to `publishTimeout`); useful
   * for start-up checks and tests. Rejects if the adapter is closed first.
   */
  ready(): Promise<void> {
    if (this._closed) return Promise.reject(new Error("The Redis adapter is closed"));
    if (this._commands.ready && this._subscriber.ready) return Promise.resolve();
    this._commands.watch();
    return new Promise((resolve, reject) => this._readyWaiters.push({ resolve, reject }));
  }

  /** Counters since creation. */
  stats(): RedisAdapterStats {
    let channels = 0;
    let subscriptions = 0;
    for (const stream of this._streams.values()) {
      channels += stream.receivers.size;
      if (stream.live !== Live.Idle) subscriptions++;
    }
    return {
      ...this._counters,
      channels,
      subscriptions,
      subscriberConnected: this._subscriber.ready,
      commandsConnected: this._commands.ready,
    };
  }

  open(name: string, options: AdapterChannelOptions): AdapterChannel {
    if (this._closed) throw new Error("The Redis adapter is closed");
    validateChannelName(name);
    const key = streamKey(this._options.prefix, name);
    let stream = this._streams.get(key);
    if (stream === undefined) {
      stream = new StreamState(key);
      this._streams.set(key, stream);
    }
    const channel = new RedisChannel(this, stream, name, options.history);
    stream.receivers.add(channel);
    return channel;
  }

  /**
   * Releases every connection, timer and listener: the pub/sub connection is destroyed, the
   * command connection closed if the adapter created it (a user's client stays open), and every
   * channel stops delivering. Safe twice.
   */
  close(): Promise<void> {
    this._closing ??= this._close();
    return this._closing;
  }

  private async _close(): Promise<void> {
    this._closed = true;
    clearInterval(this._pingTimer);
    this._feed.close();
    for (const stream of this._streams.values()) {
      stream.live = Live.Idle;
      stream.generation++;
      for (const receiver of stream.receivers) (receiver as RedisChannel).closed = true;
    }
    this._streams.clear();
    for (const onReady of [...this._connectWaiters]) onReady(); // they find their channel closed
    const waiters = this._readyWaiters;
    this._readyWaiters = [];
    for (const waiter of waiters) waiter.reject(new Error("The Redis adapter was closed"));
    await this._subscriber.release();
    await this._commands.release(1000);
  }

  // --- channels -------------------------------------------------------------------------------

  /** @internal A channel's listener or activity changed: start or stop its stream's feed. */
  _update(stream: StreamState): void {
    if (this._closed) return;
    const wanted = stream.wanted();
    if (wanted && stream.live === Live.Idle) this._feed.activate(stream);
    else if (!wanted && stream.live !== Live.Idle) this._feed.deactivate(stream);
  }

  /** @internal */
  _closeChannel(channel: RedisChannel): void {
    if (channel.closed) return;
    channel.closed = true;
    channel.listener = undefined;
    channel.onReset = undefined;
    channel.active = false;
    const stream = channel.stream;
    stream.receivers.delete(channel);
    this._update(stream);
    if (stream.receivers.size === 0 && this._streams.get(stream.key) === stream) {
      this._streams.delete(stream.key);
    }
  }

  /** @internal */
  _publish(channel: RedisChannel, input: AdapterPublish): Promise<string> {
    if (channel.closed) {
      return Promise.reject(new Error(`Redis channel "${channel.name}" is closed`));
    }
    const { publishTimeout } = this._options;
    if (!this._commands.ready) {
      if (!this._commandsEverReady) {
        // Still connecting for the first time (just created): wait for it, up to publishTimeout.
        return this._firstConnection(publishTimeout).then((connected) => {
          if (connected) return this._publish(channel, input);
          const reason = `Redis is unreachable (not connected within ${publishTimeout} ms)`;
          throw new RedisPublishError(channel.name, { stored: false, reason });
        });
      }
      // Connected before, lost now: fail at once, never queue.
      const failure = { stored: false, reason: "Redis is unreachable (not connected)" } as const;
      return Promise.reject(new RedisPublishError(channel.name, failure));
    }
    const published = publish(
      this._commands,
      channel.stream,
      channel.name,
      channel.bounds,
      input,
      this._options,
    );
    void published.then(() => this._counters.published++, noop);
    return published;
  }

  /** @internal */
  _history(channel: RedisChannel, afterId: string): Promise<HistoryResult> {
    if (channel.closed) {
      return Promise.reject(new Error(`Redis channel "${channel.name}" is closed`));
    }
    return readHistory(this._commands, channel.stream, afterId, channel.bounds);
  }

  // --- connections ------------------------------------------------------------------------------

  /** Resolves `true` once the command connection is first ready, `false` after `timeout` ms. */
  private _firstConnection(timeout: number): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (connected: boolean) => {
        clearTimeout(timer);
        this._connectWaiters.delete(onReady);
        resolve(connected);
      };
      const onReady = () => done(true);
      const timer = setTimeout(done, timeout, false);
      this._connectWaiters.add(onReady);
      this._commands.watch();
    });
  }

  private _commandsReady(): void {
    this._commandsDown = false;
    this._commandsEverReady = true;
    for (const onReady of [...this._connectWaiters]) onReady();
    this._feed.onCommandsReady();
    if (this._subscriber instanceof ClusterSubscriber && !this._subscriber.ready) {
      this._connectCluster(this._subscriber, 0);
    }
    this._settleReady();
  }

  private _newSubscriber(): PubSub {
    const events = {
      onMessage: (message: string, channel: string) => this._feed.onMessage(message, channel),
      onResubscribed: () => this._subscriberReady(),
      onDropped: (channels: readonly string[]) => this._feed.onDropped(channels),
      onError: (error: Error) => this._subscriberLost(error),
    };
    const factory = this._connections.subscriber;
    if (factory === undefined) {
      // A cluster: connections per primary, placed by the slot map (read once commands are up).
      const subscriber = new ClusterSubscriber(this._commands, events);
      this._connectCluster(subscriber, 0);
      return subscriber;
    }
    const subscriber = new Subscriber(factory, this._options.backoff, events);
    subscriber.connect().catch(noop); // retries by itself until connected or released
    return subscriber;
  }

  /** Reads the cluster's slot map once the command connection is up, retrying with backoff. */
  private _connectCluster(subscriber: ClusterSubscriber, attempt: number): void {
    if (this._closed || !this._commands.ready) return; // called again by _commandsReady
    subscriber.connect().catch(() => {
      const retry = setTimeout(
        () => this._connectCluster(subscriber, attempt + 1),
        backoffDelay(attempt, this._options.backoff),
      );
      retry.unref();
    });
  }

  private _subscriberReady(): void {
    if (this._closed) return;
    if (this._subscriberConnectedOnce && this._subscriberDown) this._counters.reconnects++;
    this._subscriberConnectedOnce = true;
    this._subscriberDown = false;
    this._feed.onResubscribed();
    this._settleReady();
  }

  /** The pub/sub connection failed: reported once per outage (node-redis repeats per attempt). */
  private _subscriberLost(error: Error): void {
    if (this._subscriberDown || this._closed) return;
    this._subscriberDown = true;
    this._report(
      new Error(
        `Lost the Redis pub/sub connection (${error.message}); reconnecting, then reading every channel from its last delivered event`,
        { cause: error },
      ),
    );
  }

  /** A pub/sub connection that does not answer a PING in time is dead: replace it. */
  private _ping(): void {
    if (this._pinging || this._closed || !this._subscriber.ready) return;
    this._pinging = true;
    const subscriber = this._subscriber;
    subscriber
      .ping(this._options.pingInterval)
      .catch(async (error: unknown) => {
        if (this._closed || this._subscriber !== subscriber || !isTimeout(error)) return;
        this._subscriberLost(
          new Error(`no answer to PING within ${this._options.pingInterval} ms`),
        );
        this._subscriber = this._newSubscriber();
        this._feed.onSubscriberReplaced();
        await subscriber.release();
      })
      .finally(() => (this._pinging = false));
  }

  private _settleReady(): void {
    if (!this._commands.ready || !this._subscriber.ready) return;
    const waiters = this._readyWaiters;
    this._readyWaiters = [];
    for (const waiter of waiters) waiter.resolve();
  }

  private _report(error: Error): void {
    // Reported, never swallowed: to 'error' listeners, else as a process warning (an 'error'
    // event without a listener would crash the process).
    if (this.listenerCount("error") > 0) this.emit("error", error);
    // A string, not the Error: emitWarning rejects Errors from another realm (jest, vm).
    else process.emitWarning(error.message, { type: "SluiceRedisWarning", detail: error.stack });
  }
}
