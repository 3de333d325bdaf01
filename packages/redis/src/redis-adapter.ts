/**
 * `RedisAdapter`: channels on Redis Streams, shared by every process that uses the same Redis.
 *
 * - `publish` is one `XADD` on the command connection; the event id is the stream id (plus a tag
 *   of the stream, see codec.ts), so ids are ordered the same way in every process.
 * - Each adapter reads all its channels with ONE blocking `XREAD` loop on a connection of its own
 *   (a blocked connection can send nothing else), and hands each event to its channel's listener,
 *   this process's own publishes included: every process delivers the same events in the same
 *   order. The loop always continues from the last id it delivered, so a reconnect (the client
 *   library's, with our bounded jittered backoff) loses nothing and repeats nothing.
 * - `history` is in ./history.ts; key names in ./keys.ts; the entry format in ./codec.ts; every
 *   call into the client library in ./client.ts.
 */
import { EventEmitter } from "node:events";
import { setTimeout as delay } from "node:timers/promises";
import type {
  Adapter,
  AdapterChannel,
  AdapterChannelOptions,
  AdapterEvent,
  AdapterPublish,
  HistoryResult,
} from "@sluice/express-sse";
import { backoffDelay } from "./backoff";
import { Connection, createConnections, describeFailure, isTimeout, type Entry } from "./client";
import type { Connections } from "./client";
import {
  compareEventIds,
  compareStreamIds,
  decodeEntry,
  encodeFields,
  streamTag,
  toEventId,
} from "./codec";
import { RedisPublishError } from "./errors";
import { readHistory } from "./history";
import { streamKey } from "./keys";
import { resolveOptions, type RedisAdapterOptions, type ResolvedOptions } from "./options";

type Bounds = AdapterChannelOptions["history"];

/** Entries per stream per `XREAD`. */
const READ_COUNT = 1000;
/** A blocking read with no answer `blockTimeout` + this many ms after it was sent is a dead link. */
const DEAD_LINK_GRACE = 5000;
/** At most one `XTRIM MINID` per stream per this many ms (maxAge trimming on publish). */
const AGE_TRIM_EVERY = 1000;
/** Values of own publishes kept for the read loop, per stream, at most. */
const MAX_VALUES = 10_000;

const noop = (): void => undefined;

/** Counters since the adapter was created. */
export interface RedisAdapterStats {
  /** Channels open on this adapter. */
  channels: number;
  /** Publishes Redis confirmed. */
  published: number;
  /** Events handed to channel listeners (each channel counted). */
  delivered: number;
  /** Times the reader connection came back after losing Redis. */
  reconnects: number;
  /** Whether the reader connection is up now. */
  readerConnected: boolean;
  /** Whether the command connection (publish, history) is up now. */
  commandsConnected: boolean;
}

/** One stream key and the channels of this adapter on it. Ids inside are stream ids. */
class StreamState {
  readonly channels = new Set<RedisChannel>();
  /** Values of this process's publishes, by id, until the read loop delivers them. */
  readonly values = new Map<string, unknown>();
  /** Publishes sent and not answered yet: the read loop waits for them (see `_dispatch`). */
  readonly inflight = new Set<Promise<void>>();
  /** Ends every event id of this stream (see codec.ts). */
  readonly tag: string;
  lastAgeTrim = 0;
  undecodableReported = false;
  constructor(readonly key: string) {
    this.tag = streamTag(key);
  }

  /** Whether a channel on this stream has a listener (so the read loop delivers its events). */
  listening(): boolean {
    for (const channel of this.channels) if (channel.listener !== undefined) return true;
    return false;
  }
}

class RedisChannel implements AdapterChannel {
  /** The last stream id delivered to this channel (at first: the stream's newest at open). */
  position: string | undefined = undefined;
  listener: ((event: AdapterEvent) => void) | undefined = undefined;
  closed = false;
  /** `performance.now()` at open(), to place the start position (see `RedisAdapter#_start`). */
  readonly openedAt = performance.now();

  constructor(
    private readonly _adapter: RedisAdapter,
    readonly stream: StreamState,
    readonly name: string,
    readonly bounds: Bounds,
  ) {}

  publish(event: AdapterPublish): Promise<string> {
    return this._adapter._publish(this, event);
  }

  listen(onEvent: (event: AdapterEvent) => void): void {
    this.listener = onEvent;
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
 * Creates a Redis Streams adapter for `Channel`s.
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
  private _reader: Connection;
  private readonly _streams = new Map<string, StreamState>();
  /** Publishes waiting for the first connection (see `_publish`). */
  private readonly _connectWaiters = new Set<() => void>();
  private _commandsEverReady = false;
  /** Channels waiting for the command connection to find their start position. */
  private readonly _unstarted = new Set<RedisChannel>();
  /** Aborted by close(): ends every backoff sleep at once. */
  private readonly _abort = new AbortController();
  private readonly _loop: Promise<void>;
  /** Resolves the read loop's current wait. */
  private _wake: (() => void) | undefined = undefined;
  /** Keys of the blocking read in flight, if one is. */
  private _reading: ReadonlySet<string> | undefined = undefined;
  private _readSeq = 0;
  /** A channel became readable since the last read started: the read in flight must end. */
  private _pendingWake = false;
  private _unblocking = false;
  /** `CLIENT ID` of the reader connection ("" if it cannot be had); reset on every reconnect. */
  private _readerId: string | undefined = undefined;
  private _readerConnectedOnce = false;
  private _checkGaps = false;
  private _readerDown = false;
  private _readFailing = false;
  private _commandsDown = false;
  private _readyWaiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private _closed = false;
  private _closing: Promise<void> | undefined = undefined;
  private readonly _stats = { published: 0, delivered: 0, reconnects: 0 };

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
    this._reader = this._newReader();
    this._loop = this._run();
  }

  /**
   * Resolves once the command connection and the reader connection are both connected. Not
   * needed before use (a publish waits for the first connection, up to `publishTimeout`; reading
   * starts once the reader connects); useful for start-up checks and tests. Rejects if the
   * adapter is closed first.
   */
  ready(): Promise<void> {
    if (this._closed) return Promise.reject(new Error("The Redis adapter is closed"));
    if (this._commands.ready && this._reader.ready) return Promise.resolve();
    this._commands.watch();
    return new Promise((resolve, reject) => this._readyWaiters.push({ resolve, reject }));
  }

  /** Counters since creation. */
  stats(): RedisAdapterStats {
    let channels = 0;
    for (const stream of this._streams.values()) channels += stream.channels.size;
    return {
      ...this._stats,
      channels,
      readerConnected: this._reader.ready,
      commandsConnected: this._commands.ready,
    };
  }

  open(name: string, options: AdapterChannelOptions): AdapterChannel {
    if (this._closed) throw new Error("The Redis adapter is closed");
    if (typeof name !== "string" || name === "") {
      throw new TypeError("A channel name must be a non-empty string");
    }
    const key = streamKey(this._options.prefix, name);
    let stream = this._streams.get(key);
    if (stream === undefined) {
      stream = new StreamState(key);
      this._streams.set(key, stream);
    }
    const channel = new RedisChannel(this, stream, name, options.history);
    stream.channels.add(channel);
    this._start(channel, 0);
    return channel;
  }

  /**
   * Stops the read loop and releases every connection, timer and listener: the reader connection
   * is destroyed (its blocked read ends at once), the command connection is closed if the adapter
   * created it (a user's client stays open), and every channel stops delivering. Safe twice.
   */
  close(): Promise<void> {
    this._closing ??= this._close();
    return this._closing;
  }

  private async _close(): Promise<void> {
    this._closed = true;
    this._abort.abort();
    for (const stream of this._streams.values()) {
      for (const channel of stream.channels) {
        channel.closed = true;
        channel.listener = undefined;
      }
    }
    this._streams.clear();
    this._unstarted.clear();
    for (const onReady of [...this._connectWaiters]) onReady(); // they find their channel closed
    const waiters = this._readyWaiters;
    this._readyWaiters = [];
    for (const waiter of waiters) waiter.reject(new Error("The Redis adapter was closed"));
    this._kick();
    await this._reader.release(0);
    await this._loop;
    await this._reader.release(0); // in case the loop replaced it meanwhile
    await this._commands.release(1000);
  }

  // --- channels -------------------------------------------------------------------------------

  /**
   * Finds where a new channel starts reading: the stream's newest entry, or, if entries were added
   * since `open()` by Redis's clock, the position just before them. The position query goes out at
   * once on the command connection (or as soon as it connects), but another process can publish
   * between `open()` — after which the channel's first subscribers expect every event — and the
   * moment Redis answers. The time since `open()`, measured when the answer arrives, is an upper
   * bound on how long ago the open was in Redis's clock, so events from that window are delivered
   * too (at worst a few from just before the open, which a new subscriber can take).
   */
  private _start(channel: RedisChannel, attempt: number): void {
    if (channel.closed) return;
    if (!this._commands.ready) {
      // Not connected (yet): started once the command connection is ready.
      this._unstarted.add(channel);
      this._commands.watch();
      return;
    }
    this._commands.streamHead(channel.stream.key).then(
      ({ timeMs, newest }) => {
        if (channel.closed) return;
        const sinceOpen = Math.ceil(performance.now() - channel.openedAt) + 1;
        const openedAt = `${Math.max(0, timeMs - sinceOpen)}-0`;
        channel.position =
          newest === undefined || compareStreamIds(newest, openedAt) > 0 ? openedAt : newest;
        this._readable();
      },
      async (error: unknown) => {
        if (channel.closed) return;
        if (attempt === 0 && this._commands.ready) {
          this._report(
            new Error(
              `Channel "${channel.name}": could not read the stream's position (${String(error)}); retrying`,
              { cause: error },
            ),
          );
        }
        await this._sleepFor(backoffDelay(attempt, this._options.backoff));
        this._start(channel, attempt + 1);
      },
    );
  }

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
    const unstarted = [...this._unstarted];
    this._unstarted.clear();
    for (const channel of unstarted) this._start(channel, 0);
    this._settleReady();
  }

  /** @internal */
  _closeChannel(channel: RedisChannel): void {
    if (channel.closed) return;
    channel.closed = true;
    channel.listener = undefined;
    this._unstarted.delete(channel);
    const stream = channel.stream;
    stream.channels.delete(channel);
    if (stream.channels.size === 0 && this._streams.get(stream.key) === stream) {
      this._streams.delete(stream.key);
    }
  }

  /** @internal */
  _publish(channel: RedisChannel, input: AdapterPublish): Promise<string> {
    if (channel.closed) {
      return Promise.reject(new Error(`Redis channel "${channel.name}" is closed`));
    }
    const { publishTimeout, minStreamLength } = this._options;
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
    const stream = channel.stream;
    // One more than max: the entry just before the oldest retained stays, so history() can tell
    // that a client holding it missed nothing (see history.ts).
    const maxLen = Math.max(channel.bounds.max + 1, minStreamLength);
    const appended = this._commands.append(stream.key, maxLen, encodeFields(input), publishTimeout);
    // The read loop delivers this event, maybe before this reply arrives (another connection):
    // it waits for the publishes in flight, so that the value is known when it delivers.
    const keepValue = "value" in input && stream.listening();
    const settled = appended.then((id) => {
      if (!keepValue) return;
      stream.values.set(id, input.value);
      if (stream.values.size > MAX_VALUES) stream.values.delete(stream.values.keys().next().value!);
    }, noop);
    stream.inflight.add(settled);
    void settled.then(() => stream.inflight.delete(settled));
    this._trimByAge(stream, channel.bounds.maxAge);
    return appended.then(
      (id) => {
        this._stats.published++;
        return toEventId(id, stream.tag);
      },
      (error: unknown) => {
        throw new RedisPublishError(channel.name, describeFailure(error, publishTimeout), error);
      },
    );
  }

  /** `maxAge`: `XTRIM MINID ~` at most once a second per stream, after a publish. */
  private _trimByAge(stream: StreamState, maxAge: number): void {
    if (maxAge === Infinity) return;
    const now = Date.now();
    if (now - stream.lastAgeTrim < AGE_TRIM_EVERY) return;
    stream.lastAgeTrim = now;
    // Best effort: history() applies maxAge exactly whatever is still stored.
    this._commands.trimBefore(stream.key, `${Math.max(0, now - maxAge)}-0`).catch(noop);
  }

  /** @internal */
  _history(channel: RedisChannel, afterId: string): Promise<HistoryResult> {
    if (channel.closed) {
      return Promise.reject(new Error(`Redis channel "${channel.name}" is closed`));
    }
    const stream = channel.stream;
    return readHistory(this._commands, stream.key, stream.tag, afterId, channel.bounds);
  }

  // --- the read loop --------------------------------------------------------------------------

  private _newReader(): Connection {
    const reader = Connection.owned(this._connections.reader, this._options.backoff, {
      onReady: () => this._readerReady(),
      onError: (error) => this._readerLost(error),
    });
    reader.connect().catch(noop); // retries by itself until connected or released
    return reader;
  }

  private _readerReady(): void {
    this._readerId = undefined;
    if (this._readerConnectedOnce) {
      this._stats.reconnects++;
      this._checkGaps = true;
    }
    this._readerConnectedOnce = true;
    this._readerDown = false;
    this._settleReady();
    this._kick();
  }

  /** The reader connection failed: reported once per outage (node-redis repeats per attempt). */
  private _readerLost(error: Error): void {
    if (this._readerDown || this._closed) return;
    this._readerDown = true;
    this._report(
      new Error(
        `Lost the Redis reader connection (${error.message}); reconnecting, then resuming after the last event delivered`,
        { cause: error },
      ),
    );
  }

  /** A read failed on a live connection (an error reply): reported once until a read succeeds. */
  private _readFailed(error: Error): void {
    if (this._readFailing || this._closed) return;
    this._readFailing = true;
    this._report(
      new Error(`Reading the streams failed (${error.message}); retrying`, { cause: error }),
    );
  }

  private _settleReady(): void {
    if (!this._commands.ready || !this._reader.ready) return;
    const waiters = this._readyWaiters;
    this._readyWaiters = [];
    for (const waiter of waiters) waiter.resolve();
  }

  /** The loop: one blocking XREAD over every readable channel, then delivery, forever. */
  private async _run(): Promise<void> {
    let failures = 0;
    while (!this._closed) {
      const reader = this._reader;
      if (!reader.ready) {
        await this._sleep(); // the reader's 'ready' (or close) wakes it
        continue;
      }
      try {
        if (this._checkGaps) {
          await this._findGaps(reader);
          this._checkGaps = false;
        }
        const streams = this._positions();
        if (streams.length === 0) {
          await this._sleep(); // a channel becoming readable wakes it
          continue;
        }
        if (this._readerId === undefined) {
          this._readerId = await reader.clientId().catch(() => "");
        }
        this._pendingWake = false;
        this._reading = new Set(streams.map(([key]) => key));
        this._readSeq++;
        let batches: Array<[string, Entry[]]>;
        try {
          batches = await reader.read(
            streams,
            READ_COUNT,
            this._options.blockTimeout,
            DEAD_LINK_GRACE,
          );
        } finally {
          this._reading = undefined;
        }
        failures = 0;
        this._readFailing = false;
        await this._dispatch(batches);
      } catch (err) {
        if (this._closed) break;
        const error = err instanceof Error ? err : new Error(String(err));
        if (isTimeout(error)) {
          // No answer at all: the link is dead without the socket knowing. Start a new one.
          const waited = this._options.blockTimeout + DEAD_LINK_GRACE;
          this._readerLost(new Error(`no answer to a blocking read within ${waited} ms`));
          const dead = this._reader;
          this._reader = this._newReader();
          await dead.release(0);
        } else if (!this._reader.ready) {
          this._readerLost(error); // the client reconnects; its 'ready' wakes the loop
        } else {
          // Connected, yet the read failed (an error reply): retry after a backoff.
          this._readFailed(error);
          await this._sleepFor(backoffDelay(failures++, this._options.backoff));
        }
      }
    }
  }

  /** `[key, last delivered id]` for every stream with a channel that listens and has started. */
  private _positions(): Array<[string, string]> {
    const streams: Array<[string, string]> = [];
    for (const stream of this._streams.values()) {
      let from: string | undefined;
      for (const channel of stream.channels) {
        if (channel.position === undefined || channel.listener === undefined) continue;
        if (from === undefined || compareStreamIds(channel.position, from) < 0) {
          from = channel.position;
        }
      }
      if (from !== undefined) streams.push([stream.key, from]);
    }
    return streams;
  }

  private async _dispatch(batches: Array<[string, Entry[]]>): Promise<void> {
    for (const [key, entries] of batches) {
      const stream = this._streams.get(key);
      if (stream === undefined || entries.length === 0) continue;
      // This process's publishes in this batch were sent before Redis stored them, so they are
      // in flight now or already answered: wait for their answers, which carry their values.
      if (stream.inflight.size > 0) await Promise.all(stream.inflight);
      if (this._closed) return;
      for (const [id, fields] of entries) this._deliver(stream, id, fields);
    }
  }

  private _deliver(stream: StreamState, id: string, fields: string[]): void {
    const decoded = decodeEntry(toEventId(id, stream.tag), fields);
    let event = decoded;
    if (stream.values.size > 0) {
      if (decoded !== undefined && stream.values.has(id)) {
        event = { ...decoded, value: stream.values.get(id) };
      }
      // This value and those of earlier ids (never delivered: channel closed meanwhile) are done.
      for (const old of stream.values.keys()) {
        if (compareStreamIds(old, id) > 0) break;
        stream.values.delete(old);
      }
    }
    if (decoded === undefined && !stream.undecodableReported) {
      stream.undecodableReported = true;
      this._report(
        new Error(`Stream "${stream.key}" has entries without a "d" field (${id}); skipping them`),
      );
    }
    for (const channel of stream.channels) {
      if (channel.position === undefined || compareStreamIds(id, channel.position) <= 0) continue;
      channel.position = id;
      const listener = channel.listener;
      if (event === undefined || listener === undefined) continue;
      this._stats.delivered++;
      try {
        listener(event);
      } catch (error) {
        this._report(error instanceof Error ? error : new Error(String(error)));
      }
    }
  }

  /**
   * After a reconnect: were entries that this process had not read yet trimmed meanwhile? Then
   * its subscribers missed them (the reader was away longer than the stream's length covers).
   * Trimming removes the oldest entries, so that is the case when the last id read is older than
   * the stream's first entry and no longer in the stream. Reported: the adapter interface has no
   * way to reset live subscribers.
   */
  private async _findGaps(reader: Connection): Promise<void> {
    for (const [key, from] of this._positions()) {
      const info = await reader.info(key);
      if (info === undefined || info.entriesAdded <= info.length) continue; // nothing removed
      const first = info.firstEntryId;
      if (first !== undefined && compareStreamIds(from, first) >= 0) continue;
      if ((await reader.range(key, from, from, 1)).length > 0) continue; // still there
      this._report(
        new Error(
          `Stream "${key}": entries after ${from} were trimmed before this process read them, ` +
            'so its subscribers missed them. Raise "minStreamLength" (or the channel\'s ' +
            "history max) to cover longer outages.",
        ),
      );
    }
  }

  /** A channel started: include it in the next read, ending the read in flight if needed. */
  private _readable(): void {
    this._pendingWake = true;
    if (this._reading === undefined) this._kick();
    else this._interrupt();
  }

  /**
   * Ends the blocking read in flight with `CLIENT UNBLOCK` (on the command connection), so the
   * next read includes the new channel now rather than after `blockTimeout`. The read may not be
   * blocked yet (still on its way to Redis): then it retries shortly while that read is pending.
   */
  private _interrupt(): void {
    if (this._unblocking) return;
    this._unblocking = true;
    void this._unblock().finally(() => {
      this._unblocking = false;
      if (this._pendingWake && this._reading !== undefined && !this._closed) this._interrupt();
    });
  }

  private async _unblock(): Promise<void> {
    for (let attempt = 0; attempt < 10 && !this._closed; attempt++) {
      const readSeq = this._readSeq;
      const id = this._readerId;
      if (!this._pendingWake || this._reading === undefined || !id) return;
      try {
        if (await this._commands.unblock(id)) return;
      } catch {
        return; // not allowed here (ACL): the read ends by itself within blockTimeout
      }
      await this._sleepFor(1 + 2 * attempt);
      if (this._readSeq !== readSeq) return;
    }
  }

  /** Waits until `_kick()` (or close). */
  private _sleep(): Promise<void> {
    if (this._closed) return Promise.resolve();
    return new Promise((resolve) => (this._wake = resolve));
  }

  /** Waits `ms`, less if the adapter closes. */
  private _sleepFor(ms: number): Promise<void> {
    if (this._closed) return Promise.resolve();
    return delay(ms, undefined, { signal: this._abort.signal }).catch(noop);
  }

  private _kick(): void {
    const wake = this._wake;
    this._wake = undefined;
    wake?.();
  }

  private _report(error: Error): void {
    // Reported, never swallowed: to 'error' listeners, else as a process warning (an 'error'
    // event without a listener would crash the process).
    if (this.listenerCount("error") > 0) this.emit("error", error);
    // A string, not the Error: emitWarning rejects Errors from another realm (jest, vm).
    else process.emitWarning(error.message, { type: "SluiceRedisWarning", detail: error.stack });
  }
}
