/**
 * The live feed: sharded pub/sub on the channels this process has subscribers for, and nothing
 * else. Its cost per event is one message to the processes that listen to that channel, whatever
 * the number of open channels; a channel nobody here listens to costs this process nothing.
 *
 * Per stream (state.ts), while it is active:
 * 1. `SSUBSCRIBE` (batched: every channel activated in the same tick in one command per slot),
 *    and, at once on the command connection, the start position: the newest id ever published
 *    (the last-id key), or, if Redis answers late, the Redis time of the activation (the time
 *    since activation bounds it), whichever is older, so nothing published after the activation
 *    is missed;
 * 2. once both are known, a gap read from the start position (gaps.ts), then the announcements
 *    that arrived meanwhile, without the ones already read;
 * 3. live: an announcement whose `prev` is the last id delivered is delivered at once; one that is
 *    older is a duplicate; any other means something was missed, and the stream is read from the
 *    last id delivered before going on (so the order is always the stream's);
 * 4. after a reconnect (the subscriptions are back) every active stream is read from its last id.
 *
 * Own publishes arrive like every other process's (so the order is the same everywhere); the
 * feed waits for their replies, which carry their values (publisher.ts), before delivering.
 */
import { backoffDelay, type BackoffOptions } from "./backoff";
import type { Connection } from "./client";
import {
  ZERO_ID,
  compareStreamIds,
  decodeAnnouncement,
  decodeEntry,
  toEventId,
  type Announcement,
} from "./codec";
import { readMeta, timeMs } from "./commands";
import { deliver, deliverEvent, resetStream, undecodable } from "./delivery";
import { readGap } from "./gaps";
import { Limiter } from "./limiter";
import { Live, NOTHING_QUEUED, type StreamState } from "./state";
import type { PubSub } from "./subscriber";
import { Subscriptions } from "./subscriptions";

/** Stream reads (start positions, gap reads) sent to Redis at once, at most. */
const READS_IN_FLIGHT = 256;

/** What the feed needs from the adapter. */
export interface FeedHost {
  readonly commands: Connection;
  readonly subscriber: PubSub;
  readonly backoff: BackoffOptions;
  readonly streams: ReadonlyMap<string, StreamState>;
  readonly closed: boolean;
  report(error: Error): void;
  /** Counts: events delivered (per receiver), gap reads, resets. */
  readonly counters: { delivered: number; gapReads: number; resets: number };
}

export class LiveFeed {
  private readonly _subscriptions: Subscriptions;
  /** Streams waiting for the command connection to read their start position. */
  private readonly _unstarted = new Set<StreamState>();
  /** Start positions and gap reads in flight at most (see limiter.ts). */
  private readonly _reads = new Limiter(READS_IN_FLIGHT);
  /** A read failed and none worked since: reported once, not once per stream. */
  private _readsFailing = false;

  constructor(private readonly _host: FeedHost) {
    this._subscriptions = new Subscriptions({
      get subscriber() {
        return _host.subscriber;
      },
      backoff: _host.backoff,
      get closed() {
        return _host.closed;
      },
      report: (error) => _host.report(error),
      subscribed: (stream) => {
        stream.subscribed = true;
        stream.needsRead = true;
        if (!stream.busy) void this._pump(stream);
      },
    });
  }

  /** Starts the feed of a stream that became wanted. */
  activate(stream: StreamState): void {
    stream.live = Live.On;
    stream.generation++;
    stream.activatedAt = performance.now();
    stream.subscribed = false;
    stream.position = undefined;
    stream.trusted = true;
    stream.queue = NOTHING_QUEUED;
    stream.needsRead = true;
    this._subscriptions.subscribe(stream);
    this._start(stream, 0);
  }

  /** Stops the feed of a stream nobody here listens to any more. */
  deactivate(stream: StreamState): void {
    if (stream.live === Live.Idle) return;
    stream.live = Live.Idle;
    stream.generation++;
    stream.queue = NOTHING_QUEUED;
    stream.position = undefined;
    stream.values = undefined;
    this._unstarted.delete(stream);
    this._subscriptions.unsubscribe(stream);
  }

  /** A pub/sub message. */
  onMessage(message: string, channel: string): void {
    const stream = this._host.streams.get(channel);
    if (stream === undefined || stream.live === Live.Idle) return;
    const announcement = decodeAnnouncement(message, stream.tag);
    if (announcement === undefined) {
      undecodable(
        this._host,
        stream,
        `a message that is not an announcement (${message.slice(0, 40)})`,
      );
      return;
    }
    if (stream.lastPublish !== undefined) {
      // Own publishes sent before this arrived may be this very event: their replies carry the
      // values for filters. Only those: publishes made later cannot hold it back.
      announcement.wait = stream.lastPublish;
    } else if (
      !stream.busy &&
      stream.queue.length === 0 &&
      !stream.needsRead &&
      stream.subscribed &&
      stream.hasPosition()
    ) {
      // The common case, without a pump: in order, nothing pending.
      if (!this._announce(stream, announcement, false)) return;
      stream.enqueue(announcement);
      stream.needsRead = true;
      void this._pump(stream);
      return;
    }
    stream.enqueue(announcement);
    if (!stream.busy) void this._pump(stream);
  }

  /** The subscriber connection is back with its subscriptions: read what may have been missed. */
  onResubscribed(): void {
    for (const stream of this._host.streams.values()) {
      if (stream.live === Live.Idle) continue;
      if (!stream.subscribed) {
        this._subscriptions.subscribe(stream);
        continue;
      }
      stream.needsRead = true;
      if (!stream.busy) void this._pump(stream);
    }
    this._subscriptions.retryNow();
  }

  /** The subscriber connection was replaced: every active stream subscribes again. */
  onSubscriberReplaced(): void {
    this._subscriptions.forgetPending();
    this.onDropped([...this._host.streams.keys()]);
  }

  /** These subscriptions were lost (a cluster node failed): subscribe them again, then read. */
  onDropped(channels: readonly string[]): void {
    for (const key of channels) {
      const stream = this._host.streams.get(key);
      if (stream === undefined || stream.live === Live.Idle || !stream.subscribed) continue;
      stream.subscribed = false;
      this._subscriptions.subscribe(stream);
    }
  }

  /** The command connection is ready: streams waiting for their start position get it. */
  onCommandsReady(): void {
    const waiting = [...this._unstarted];
    this._unstarted.clear();
    for (const stream of waiting) this._start(stream, 0);
  }

  close(): void {
    this._reads.clear();
    this._subscriptions.close();
    this._unstarted.clear();
  }

  // --- the start position -----------------------------------------------------------------------

  private _start(stream: StreamState, attempt: number): void {
    const host = this._host;
    if (host.closed || stream.live === Live.Idle) return;
    if (!host.commands.ready) {
      this._unstarted.add(stream); // started once the command connection is ready
      host.commands.watch();
      return;
    }
    const generation = stream.generation;
    this._reads
      .run(() =>
        Promise.all([timeMs(host.commands, stream.key), readMeta(host.commands, stream.metaKey)]),
      )
      .then(
        ([now, { last }]) => {
          // A read for an earlier activation, or a second one for this activation: not ours to set.
          if (stream.generation !== generation || stream.live === Live.Idle) return;
          if (stream.hasPosition()) return;
          // The activation was at most this long ago in Redis's clock too.
          const since = Math.ceil(performance.now() - stream.activatedAt) + 1;
          const activated = `${Math.max(0, now - since)}-0`;
          const newest = last ?? ZERO_ID;
          stream.position = compareStreamIds(newest, activated) > 0 ? activated : newest;
          this._readsFailing = false;
          stream.trusted = true;
          if (!stream.busy) void this._pump(stream);
        },
        (error: unknown) => {
          if (stream.generation !== generation || host.closed) return;
          if (!this._readsFailing && host.commands.ready) {
            this._readsFailing = true;
            host.report(
              new Error(`Reading start positions failed (${describe(error)}); retrying`, {
                cause: error,
              }),
            );
          }
          // Retried for this activation only: a retry that outlived it (the channel went idle and
          // active again meanwhile) would set an older start position under the new one.
          setTimeout(
            () => {
              if (stream.generation === generation) this._start(stream, attempt + 1);
            },
            backoffDelay(attempt, host.backoff),
          ).unref();
        },
      );
  }

  // --- delivery ---------------------------------------------------------------------------------

  /** Handles a stream's queue and gap reads, one at a time per stream, in stream order. */
  private async _pump(stream: StreamState): Promise<void> {
    stream.busy = true;
    const generation = stream.generation;
    const current = () => stream.generation === generation && !this._host.closed;
    /** A gap read just reached the end of the stream: what follows cannot be read again. */
    let caughtUp = false;
    try {
      while (current() && stream.subscribed && stream.hasPosition()) {
        // The first announcement queued follows the position: nothing can be missing before it,
        // and the stream need not be read (it may even have been trimmed past it meanwhile).
        const head = stream.queue[0];
        if (stream.needsRead && head !== undefined && follows(stream, head)) {
          stream.needsRead = false;
        }
        if (stream.needsRead) {
          if (!(await this._readGap(stream, current))) return;
          caughtUp = !stream.needsRead;
          continue;
        }
        const queue = stream.queue;
        if (queue.length === 0) return;
        // Own publishes in flight when these arrived: the newest one's reply comes last (replies
        // come in order), so one wait covers every queued announcement.
        let wait: Promise<unknown> | undefined;
        for (const item of queue) {
          if (item.wait === undefined) continue;
          wait = item.wait;
          item.wait = undefined;
        }
        if (wait !== undefined) {
          await wait;
          continue;
        }
        // The whole queue in one synchronous run, so the channel writes it as one batch.
        stream.queue = NOTHING_QUEUED;
        for (let i = 0; i < queue.length; i++) {
          if (this._announce(stream, queue[i]!, caughtUp)) {
            // A gap: read the stream first, then this announcement and the rest again.
            stream.queue = [...queue.slice(i), ...stream.queue];
            stream.needsRead = true;
            break;
          }
          caughtUp = false;
        }
      }
    } finally {
      stream.busy = false;
      // An activation while this pump was winding down needs a pump of its own.
      if (stream.generation !== generation && stream.live !== Live.Idle && !this._host.closed) {
        void this._pump(stream);
      }
    }
  }

  /**
   * Delivers an announcement in order; `true` when something between the last id delivered and
   * this one was missed, and the stream must be read first (nothing delivered then).
   */
  private _announce(stream: StreamState, announcement: Announcement, caughtUp: boolean): boolean {
    const { id, idMs, idSeq } = announcement;
    if (stream.compareToPosition(id, idMs, idSeq) <= 0) return false; // delivered already
    const inOrder = follows(stream, announcement);
    if (!inOrder && !caughtUp) return true;
    if (!inOrder) {
      // The stream was just read to its end, yet what came before this event is not there:
      // expired or trimmed in the meantime. Lost for this process's subscribers: a reset.
      const newestId = toEventId(announcement.prev, stream.tag);
      resetStream(
        this._host,
        stream,
        { reason: "too-old", oldestId: undefined, newestId },
        announcement.prev,
      );
    }
    deliver(this._host, stream, announcement.id, announcement.event);
    return false;
  }

  /** One gap read; `false` when the pump should stop (an error: retried after a backoff). */
  private async _readGap(stream: StreamState, current: () => boolean): Promise<boolean> {
    const host = this._host;
    const bounds = stream.bounds();
    if (bounds === undefined) return false;
    host.counters.gapReads++;
    let read;
    try {
      const position = stream.position!;
      // Only the gap before the queued announcements: they carry what follows (and the stream
      // may have been trimmed past them meanwhile).
      const end = stream.queue[0]?.prev ?? "+";
      read = await this._reads.run(() =>
        readGap(host.commands, stream, position, stream.trusted, bounds, end),
      );
      stream.readFailures = 0;
      this._readsFailing = false;
    } catch (error) {
      if (!current()) return false;
      // Reported once until a read works; retried with backoff (a failover can take seconds).
      stream.readFailures++;
      if (!this._readsFailing) {
        this._readsFailing = true;
        host.report(
          new Error(`Reading stream "${stream.key}" failed (${describe(error)}); retrying`, {
            cause: error,
          }),
        );
      }
      const generation = stream.generation;
      const retry = setTimeout(
        () => {
          if (stream.generation === generation && !stream.busy) void this._pump(stream);
        },
        backoffDelay(stream.readFailures, host.backoff),
      );
      retry.unref();
      return false;
    }
    if (!current()) return false;
    const head = stream.queue[0];
    if (head !== undefined && follows(stream, head)) {
      // Announcements that arrived during the read follow the position: they carry everything
      // from there, and the stream may have been trimmed past them meanwhile.
      stream.needsRead = false;
      return true;
    }
    if (read.kind === "reset") {
      resetStream(this._host, stream, read.reset, read.position);
      stream.needsRead = false;
      return true;
    }
    if (read.kind === "events") {
      for (const event of read.events) deliverEvent(this._host, stream, event);
      stream.needsRead = false;
      return true;
    }
    // Own publishes in flight when the stream was read may be among these entries.
    if (stream.lastPublish !== undefined) await stream.lastPublish;
    if (!current()) return false;
    for (const [id, fields] of read.entries) {
      deliver(this._host, stream, id, decodeEntry(toEventId(id, stream.tag), fields));
    }
    if (read.done) stream.needsRead = false;
    return true;
  }
}

/**
 * Whether `announcement` comes right after the last id delivered (or, from a start position, has
 * nothing between that position and itself).
 */
function follows(stream: StreamState, announcement: Announcement): boolean {
  const order = stream.compareToPosition(
    announcement.prev,
    announcement.prevMs,
    announcement.prevSeq,
  );
  return order === 0 || (stream.trusted && order < 0);
}

/** An error in a few words: node-redis's TimeoutError has an empty message. */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return error.message === ""
    ? error.constructor.name
    : `${error.constructor.name}: ${error.message}`;
}
