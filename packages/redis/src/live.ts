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
 * The reads themselves (start positions, gap reads) are reads.ts's; this file decides when.
 */
import { decodeAnnouncement, toEventId, type Announcement } from "./codec";
import { deliver, resetStream, undecodable } from "./delivery";
import { StreamReads, type FeedHost } from "./reads";
import { Live, NOTHING_QUEUED, type StreamState } from "./state";
import { Subscriptions } from "./subscriptions";

export type { FeedHost } from "./reads";

export class LiveFeed {
  /** @internal */
  private readonly _subscriptions: Subscriptions;
  /** @internal Start positions and gap reads (reads.ts). */
  private readonly _reads: StreamReads;

  constructor(private readonly _host: FeedHost) {
    this._reads = new StreamReads(_host, (stream) => void this._pump(stream));
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
    this._reads.start(stream);
  }

  /** Stops the feed of a stream nobody here listens to any more. */
  deactivate(stream: StreamState): void {
    if (stream.live === Live.Idle) return;
    stream.live = Live.Idle;
    stream.generation++;
    stream.queue = NOTHING_QUEUED;
    stream.position = undefined;
    stream.values = undefined;
    this._reads.forget(stream);
    this._subscriptions.unsubscribe(stream);
  }

  /** A pub/sub message. */
  onMessage(message: string, channel: string): void {
    const stream = this._host.streams.get(channel);
    if (stream === undefined || stream.live === Live.Idle) return;
    if (message.charCodeAt(0) === 80 && message.charCodeAt(1) === 32) {
      this._host.onPresence(stream, message); // "P …": presence, not an event (presence.ts)
      return;
    }
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
    this._reads.onCommandsReady();
  }

  close(): void {
    this._reads.clear();
    this._subscriptions.close();
  }

  // --- delivery ---------------------------------------------------------------------------------

  /**
   * @internal Handles a stream's queue and gap reads, one at a time per stream, in stream order.
   */
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
        if (stream.needsRead && head !== undefined && stream.follows(head)) {
          stream.needsRead = false;
        }
        if (stream.needsRead) {
          if (!(await this._reads.readGap(stream, current))) return;
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
   * @internal
   * Delivers an announcement in order; `true` when something between the last id delivered and
   * this one was missed, and the stream must be read first (nothing delivered then).
   */
  private _announce(stream: StreamState, announcement: Announcement, caughtUp: boolean): boolean {
    const { id, idMs, idSeq } = announcement;
    if (stream.compareToPosition(id, idMs, idSeq) <= 0) return false; // delivered already
    const inOrder = stream.follows(announcement);
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
}
