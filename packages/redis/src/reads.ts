/**
 * Reading a stream where pub/sub cannot help (the live feed, live.ts, decides when): the start
 * position of a channel that became active, and gap reads from the last id delivered (gaps.ts).
 * At most {@link READS_IN_FLIGHT} reads in flight (limiter.ts), so that activating 100,000
 * channels at once neither floods Redis nor times out in a queue; a failure is reported once
 * until a read works, and retried with backoff.
 */
import { backoffDelay, type BackoffOptions } from "./backoff";
import type { Connection } from "./client";
import { ZERO_ID, compareStreamIds, decodeEntry, toEventId } from "./codec";
import { readMeta, timeMs } from "./commands";
import { deliver, deliverEvent, resetStream } from "./delivery";
import { readGap } from "./gaps";
import { Limiter } from "./limiter";
import { describe } from "./replies";
import { Live, type StreamState } from "./state";
import type { PubSub } from "./subscriber";

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
  /** A presence message (`P …`, presence.ts) on an active stream's channel. */
  onPresence(stream: StreamState, message: string): void;
  /** Counts: events delivered (per receiver), gap reads, resets. */
  readonly counters: { delivered: number; gapReads: number; resets: number };
}

export class StreamReads {
  /** @internal Streams waiting for the command connection to read their start position. */
  private readonly _unstarted = new Set<StreamState>();
  /** @internal Start positions and gap reads in flight at most (see limiter.ts). */
  private readonly _limiter = new Limiter(READS_IN_FLIGHT);
  /** @internal A read failed and none worked since: reported once, not once per stream. */
  private _failing = false;

  constructor(
    private readonly _host: FeedHost,
    /** Runs a stream's pump (live.ts) once its start position is known, or to retry a read. */
    private readonly _pump: (stream: StreamState) => void,
  ) {}

  /** The command connection is ready: streams waiting for their start position get it. */
  onCommandsReady(): void {
    const waiting = [...this._unstarted];
    this._unstarted.clear();
    for (const stream of waiting) this.start(stream);
  }

  /** A stream that went idle: no start position to read for it any more. */
  forget(stream: StreamState): void {
    this._unstarted.delete(stream);
  }

  clear(): void {
    this._limiter.clear();
    this._unstarted.clear();
  }

  /** Reads the start position of a stream that became active, then starts its pump. */
  start(stream: StreamState, attempt = 0): void {
    const host = this._host;
    if (host.closed || stream.live === Live.Idle) return;
    if (!host.commands.ready) {
      this._unstarted.add(stream); // started once the command connection is ready
      host.commands.watch();
      return;
    }
    const generation = stream.generation;
    this._limiter
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
          this._failing = false;
          stream.trusted = true;
          if (!stream.busy) this._pump(stream);
        },
        (error: unknown) => {
          if (stream.generation !== generation || host.closed) return;
          if (!this._failing && host.commands.ready) {
            this._failing = true;
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
              if (stream.generation === generation) this.start(stream, attempt + 1);
            },
            backoffDelay(attempt, host.backoff),
          ).unref();
        },
      );
  }

  /** One gap read; `false` when the pump should stop (an error: retried after a backoff). */
  async readGap(stream: StreamState, current: () => boolean): Promise<boolean> {
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
      read = await this._limiter.run(() =>
        readGap(host.commands, stream, position, stream.trusted, bounds, end),
      );
      stream.readFailures = 0;
      this._failing = false;
    } catch (error) {
      if (!current()) return false;
      // Reported once until a read works; retried with backoff (a failover can take seconds).
      stream.readFailures++;
      if (!this._failing) {
        this._failing = true;
        host.report(
          new Error(`Reading stream "${stream.key}" failed (${describe(error)}); retrying`, {
            cause: error,
          }),
        );
      }
      const generation = stream.generation;
      const retry = setTimeout(
        () => {
          if (stream.generation === generation && !stream.busy) this._pump(stream);
        },
        backoffDelay(stream.readFailures, host.backoff),
      );
      retry.unref();
      return false;
    }
    if (!current()) return false;
    const head = stream.queue[0];
    if (head !== undefined && stream.follows(head)) {
      // Announcements that arrived during the read follow the position: they carry everything
      // from there, and the stream may have been trimmed past them meanwhile.
      stream.needsRead = false;
      return true;
    }
    if (read.kind === "reset") {
      resetStream(host, stream, read.reset, read.position);
      stream.needsRead = false;
      return true;
    }
    if (read.kind === "events") {
      for (const event of read.events) deliverEvent(host, stream, event);
      stream.needsRead = false;
      return true;
    }
    // Own publishes in flight when the stream was read may be among these entries.
    if (stream.lastPublish !== undefined) await stream.lastPublish;
    if (!current()) return false;
    for (const [id, fields] of read.entries) {
      deliver(host, stream, id, decodeEntry(toEventId(id, stream.tag), fields));
    }
    if (read.done) stream.needsRead = false;
    return true;
  }
}
