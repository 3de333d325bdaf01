/**
 * `RedisAdapter`: channels on Redis, shared by every process that uses the same Redis (standalone
 * or Cluster). This file owns the public face: options, `open()` and the channels it opened,
 * `publish`/`history` routing, `ready()`, `stats()`, `close()`, and error reporting. The work is
 * elsewhere, one job per file:
 *
 * - lifecycle.ts: the connections (commands; pub/sub) and their lifecycle;
 * - publisher.ts: a publish is one script call that stores the event in the channel's stream
 *   and announces it on the channel's sharded pub/sub channel, atomically (scripts.ts);
 * - live.ts: the live feed, subscribed only to channels this process has subscribers for
 *   (subscriptions.ts batches the subscribing, delivery.ts hands events to channels, gaps.ts
 *   reads the stream to fill any gap);
 * - history.ts: `history(afterId)` for resuming clients;
 * - keys.ts (key names, hash tags), codec.ts (entries, announcements, ids), scripts.ts (the
 *   publish script), commands.ts and replies.ts (Redis commands and replies), state.ts (per
 *   stream state); client.ts, connections.ts, subscriber.ts and cluster-subscriber.ts (node-redis).
 */
import { ChannelPresence, PresenceRegistry } from "./presence";
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
import { compareEventIds } from "./codec";
import { RedisPublishError } from "./errors";
import { readHistory } from "./history";
import { streamKey, validateChannelName } from "./keys";
import { Links } from "./lifecycle";
import { LiveFeed } from "./live";
import { resolveOptions, type RedisAdapterOptions, type ResolvedOptions } from "./options";
import { publish } from "./publisher";
import { Live, StreamState, type Receiver } from "./state";
import { reportError } from "./util";

type Bounds = AdapterChannelOptions["history"];

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

  readonly presence: ChannelPresence;

  constructor(
    private readonly _adapter: RedisAdapter,
    readonly stream: StreamState,
    readonly name: string,
    readonly bounds: Bounds,
    registry: PresenceRegistry,
  ) {
    this.presence = new ChannelPresence(registry, stream);
  }

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

/**
 * Channels on Redis, shared by every process that uses the same Redis, standalone or Cluster
 * (pass it as a `Channel`'s `adapter`). Each channel is one Redis stream (its history, bounded
 * by the channel's `history` options) and one sharded pub/sub channel (its live feed); a process
 * subscribes to a channel's pub/sub only while it has subscribers for it, over one connection
 * per Redis node, so idle channels cost it nothing. A client that reconnects, to any process,
 * resumes from the stream; a process whose connection drops reads the gap from the stream when it
 * is back, so no event is lost (or `event: reset` says plainly that some were).
 *
 * Events:
 * - `error`: a connection or command failed (Redis unreachable, a failover, a script error). The
 *   adapter reconnects and carries on by itself; without a listener, errors become process
 *   warnings (`SluiceRedisWarning`) instead of an uncaught exception.
 *
 * Create it with `new RedisAdapter(options)` or {@link createRedisAdapter}; `close()` it at
 * shutdown, after the channels. Options: `RedisAdapterOptions`.
 */
export class RedisAdapter extends EventEmitter<{ error: [error: Error] }> implements Adapter {
  /** @internal */
  private readonly _options: ResolvedOptions;
  /** @internal */
  private readonly _links: Links;
  /** @internal */
  private readonly _streams = new Map<string, StreamState>();
  /** @internal */
  private readonly _feed: LiveFeed;
  /** @internal */
  private readonly _presence: PresenceRegistry;
  /** @internal */
  private readonly _counters = { published: 0, delivered: 0, gapReads: 0, resets: 0 };
  /** @internal */
  private _closed = false;
  /** @internal */
  private _closing: Promise<void> | undefined = undefined;
  /**
   * @internal `stats()`: channels open, and streams whose live feed runs (kept here: O(1) to read).
   */
  private _openChannels = 0;
  /** @internal */
  private _activeStreams = 0;

  constructor(options: RedisAdapterOptions) {
    super();
    this._options = resolveOptions(options);
    const self = this;
    this._links = new Links(this._options, {
      onCommandsReady: () => self._feed.onCommandsReady(),
      onMessage: (message, channel) => self._feed.onMessage(message, channel),
      onResubscribed: () => self._feed.onResubscribed(),
      onDropped: (channels) => self._feed.onDropped(channels),
      onSubscriberReplaced: () => self._feed.onSubscriberReplaced(),
      report: (error) => self._report(error),
    });
    const links = this._links;
    this._feed = new LiveFeed({
      commands: links.commands,
      get subscriber() {
        return links.subscriber;
      },
      backoff: this._options.backoff,
      streams: this._streams,
      get closed() {
        return self._closed;
      },
      report: (error) => this._report(error),
      counters: this._counters,
      onPresence: (stream, message) => {
        for (const receiver of stream.receivers)
          (receiver as RedisChannel).presence.onMessage(message);
      },
    });
    this._presence = new PresenceRegistry(
      links.commands,
      `${this._options.prefix}presence`,
      this._options.presenceTtl,
      (error) => this._report(error),
    );
  }

  /**
   * Resolves once the command connection and the pub/sub connection are both connected. Not
   * needed before use (a publish waits for the first connection, up to `publishTimeout`); useful
   * for start-up checks and tests. Rejects if the adapter is closed first.
   */
  ready(): Promise<void> {
    return this._links.ready();
  }

  /** Counters since creation. */
  stats(): RedisAdapterStats {
    return {
      ...this._counters,
      reconnects: this._links.reconnects,
      channels: this._openChannels,
      subscriptions: this._activeStreams,
      subscriberConnected: this._links.subscriber.ready,
      commandsConnected: this._links.commands.ready,
    };
  }

  /**
   * Opens channel `name` (a `Channel` calls this). Throws a `TypeError` for a name Redis cannot
   * key exactly (empty, or with a lone surrogate).
   */
  open(name: string, options: AdapterChannelOptions): AdapterChannel {
    if (this._closed) throw new Error("The Redis adapter is closed");
    validateChannelName(name);
    const key = streamKey(this._options.prefix, name);
    let stream = this._streams.get(key);
    if (stream === undefined) {
      stream = new StreamState(key);
      this._streams.set(key, stream);
    }
    const channel = new RedisChannel(this, stream, name, options.history, this._presence);
    stream.addReceiver(channel);
    this._openChannels++;
    return channel;
  }

  /**
   * Releases every connection, timer and listener: the pub/sub connections are destroyed, the
   * command connection closed if the adapter created it (a user's client stays open), and every
   * channel stops delivering. Safe twice.
   */
  close(): Promise<void> {
    this._closing ??= this._close();
    return this._closing;
  }

  /** @internal */
  private async _close(): Promise<void> {
    this._closed = true;
    this._feed.close();
    for (const stream of this._streams.values()) {
      stream.live = Live.Idle;
      stream.generation++;
      stream.direct = undefined;
      for (const receiver of stream.receivers) (receiver as RedisChannel).closed = true;
    }
    this._streams.clear();
    await this._presence.close();
    this._openChannels = 0;
    this._activeStreams = 0;
    await this._links.close();
  }

  /** @internal A channel's listener or activity changed: start or stop its stream's feed. */
  _update(stream: StreamState): void {
    if (this._closed) return;
    stream.refresh();
    const wanted = stream.wanted();
    if (wanted && stream.live === Live.Idle) {
      this._activeStreams++;
      this._feed.activate(stream);
    } else if (!wanted && stream.live !== Live.Idle) {
      this._activeStreams--;
      this._feed.deactivate(stream);
    }
  }

  /** @internal */
  _closeChannel(channel: RedisChannel): void {
    if (channel.closed) return;
    channel.closed = true;
    void channel.presence.clear();
    channel.listener = undefined;
    channel.onReset = undefined;
    channel.active = false;
    const stream = channel.stream;
    stream.deleteReceiver(channel);
    this._openChannels--;
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
    const links = this._links;
    if (!links.commands.ready) {
      if (!links.commandsEverReady) {
        // Still connecting for the first time (just created): wait for it, up to publishTimeout.
        return links.firstConnection(publishTimeout).then((connected) => {
          if (connected) return this._publish(channel, input);
          const reason = `Redis is unreachable (not connected within ${publishTimeout} ms)`;
          throw new RedisPublishError(channel.name, { stored: false, reason });
        });
      }
      // Connected before, lost now: fail at once, never queue.
      const failure = { stored: false, reason: "Redis is unreachable (not connected)" } as const;
      return Promise.reject(new RedisPublishError(channel.name, failure));
    }
    return publish(
      links.commands,
      channel.stream,
      channel.name,
      channel.bounds,
      input,
      this._options,
      this._counters,
    );
  }

  /** @internal */
  _history(channel: RedisChannel, afterId: string): Promise<HistoryResult> {
    if (channel.closed) {
      return Promise.reject(new Error(`Redis channel "${channel.name}" is closed`));
    }
    return readHistory(this._links.commands, channel.stream, afterId, channel.bounds);
  }

  /** @internal */
  private _report(error: Error): void {
    reportError(this, error, "SluiceRedisWarning");
  }
}
