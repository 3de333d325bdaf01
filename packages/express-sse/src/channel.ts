import { EventEmitter } from "node:events";
import type { ServerResponse } from "node:http";
import type { AdapterChannel, AdapterEvent, AdapterReset, HistoryResult } from "./adapter";
import {
  resolveChannelOptions,
  type ChannelOptions,
  type ChannelStats,
  type EventMap,
  type SubscribeOptions,
} from "./channel-options";
import { Frame, idProblem, serializedText, validateEventName } from "./frame";
import type { Serializer } from "./options";
import { describe, isPromise, nonNegativeInteger, reportError } from "./util";
import { Lane } from "./lane";
import { LifetimeSweep } from "./lifetime";
import { LocalPresence, serializeMember, type Members } from "./presence";
import type { StreamOwner } from "./context";
import { SseStream, type StreamClosedError } from "./stream";
import { MAX_LAST_EVENT_ID, Subscription, lastEventIdOf, resetFrame } from "./subscription";

export type { ChannelEvent, ResetData } from "./subscription";
export type { ChannelOptions, ChannelStats, EventMap, SubscribeOptions } from "./channel-options";

type PublishArgs<Events extends EventMap, E extends keyof Events & string> = E extends "message"
  ? [data: Events[E], options?: { event?: E }]
  : [data: Events[E], options: { event: E }];

/**
 * A named stream of events that many clients subscribe to: broadcast with one serialization per
 * event, bounded history, and exact `Last-Event-ID` resume.
 *
 * @example
 * const chat = new Channel<{ message: { user: string; text: string } }>("chat");
 * app.get("/chat", (req, res) => chat.subscribe(res));
 * app.post("/chat", express.json(), async (req, res) => {
 *   res.status(202).json({ id: await chat.publish(req.body) });
 * });
 */
export class Channel<Events extends EventMap = EventMap>
  extends EventEmitter<{
    join: [stream: SseStream];
    leave: [stream: SseStream, reason: StreamClosedError];
    /** The number of subscribers changed (coalesced: see `presenceInterval`). */
    count: [count: number];
    /** A subscriber with `member` app data joined. */
    "member:join": [member: unknown];
    /** A subscriber with `member` app data left. */
    "member:leave": [member: unknown];
    error: [error: Error];
  }>
  implements StreamOwner
{
  readonly name: string;
  /** @internal */
  private readonly _adapter: AdapterChannel;
  /** @internal */
  private readonly _serialize: Serializer;
  /** @internal */
  private readonly _deserialize: (text: string) => unknown;
  /**
   * @internal Values deserialized for filters, by event: once per event, not once per subscriber.
   */
  private readonly _values = new WeakMap<AdapterEvent, unknown>();
  /** @internal */
  private readonly _query: string | undefined;
  /** @internal */
  private readonly _lifetime: LifetimeSweep;
  /** @internal Every subscribed stream, with its subscription state when it needs one. */
  private readonly _subs = new Map<SseStream, Subscription | null>();
  /**
   * @internal The fan-out's fast lane: the sockets of the plain direct-path subscribers whose
   * first channel this is (lane.ts). Read by their heartbeat (the stream's owner slot).
   */
  readonly _lane = new Lane<SseStream>();
  /** @internal The other subscribers (a filter, a replay, a resume boundary, `res.write()`...). */
  private readonly _rest = new Set<SseStream>();
  /** @internal Events of the current tick, written together by `_flush()`. */
  private _batch: AdapterEvent[] = [];
  /** @internal */
  private readonly _flushTask = (): void => this._flush();
  /** @internal Frames by event: built once per event, reused by the fan-out and by every replay. */
  private readonly _frames = new WeakMap<AdapterEvent, Frame>();
  /** @internal */
  private readonly _stats: ChannelStats = {
    subscribers: 0,
    events: 0,
    bytes: 0,
    slowClientsDropped: 0,
    resumes: 0,
    resets: 0,
  };
  /** @internal */
  private _closed = false;
  /** @internal */
  private readonly _presence: LocalPresence<SseStream>;

  constructor(name: string, options: ChannelOptions = {}) {
    super();
    const resolved = resolveChannelOptions(name, options);
    this.name = name;
    this._serialize = resolved.serialize;
    this._deserialize = resolved.deserialize;
    this._query = resolved.lastEventIdQuery;
    this._lifetime = new LifetimeSweep(resolved.maxLifetime, resolved.lifetimeRetry, this._subs);
    this._presence = new LocalPresence<SseStream>(
      {
        count: (count) => this.emit("count", count),
        memberJoin: (member) => this.emit("member:join", member),
        memberLeave: (member) => this.emit("member:leave", member),
        wantsCount: () => this.listenerCount("count") > 0,
      },
      resolved.presenceInterval,
    );
    this._adapter = resolved.adapter.open(name, { history: resolved.history });
    // `presence: false`: the local presence alone, this process's subscribers.
    if (resolved.presence && this._adapter.presence !== undefined) {
      this._presence.attach(this._adapter.presence, (error) =>
        this._report(
          new Error(`Presence of channel "${name}": ${error.message}`, { cause: error }),
        ),
      );
    }
    this._adapter.listen(
      (event) => this._deliver(event),
      (reset) => this._resetLive(reset),
    );
  }

  /** Subscribers currently connected. */
  get size(): number {
    return this._subs.size;
  }

  /**
   * Subscribers of the channel: with the in-memory adapter, this process's (`size`). The `count`
   * event tells changes.
   */
  get count(): number {
    return this._presence.count;
  }

  /**
   * The app data (`subscribe({ member })`) of up to `limit` subscribers, each once, and how many
   * subscribers there are in all (with or without app data).
   */
  members(options: { limit?: number } = {}): Promise<Members> {
    const limit =
      options.limit === undefined ? 100 : nonNegativeInteger('The "limit" option', options.limit);
    return this._presence.members(limit);
  }

  /** `true` once `close()` was called. */
  get closed(): boolean {
    return this._closed;
  }

  /** A snapshot of the channel's counters. */
  stats(): ChannelStats {
    return { ...this._stats, subscribers: this._subs.size };
  }

  /**
   * Publishes an event to every subscriber, in every process the adapter reaches. The event is
   * serialized and framed once, whatever the number of subscribers.
   *
   * @returns the event's id once stored. Rejects if the adapter cannot store it (never drops it
   *     silently) or the channel is closed.
   * @throws {TypeError} at the call for an invalid event name or data the serializer rejects.
   */
  publish<E extends keyof Events & string = "message">(
    ...args: PublishArgs<Events, E>
  ): Promise<string> {
    const [data, options] = args as [unknown, { event?: string } | undefined];
    if (options !== undefined && (options === null || typeof options !== "object")) {
      throw new TypeError(`publish() options must be an object, got ${describe(options)}`);
    }
    const event = options?.event === undefined ? undefined : validateEventName(options.event);
    const text = typeof data === "string" ? data : serializedText(this._serialize(data));
    if (this._closed) return Promise.reject(new Error(`Channel "${this.name}" is closed`));
    return this._adapter.publish({
      event,
      data: text,
      value: data,
      serialized: typeof data !== "string",
    });
  }

  /**
   * Subscribes a response (with `res.sse` from the `sse()` middleware) or a stream. With a
   * `Last-Event-ID` it first replays every retained event after that id, then goes live with no
   * gap and no duplicate; an id it cannot resume from gets an `event: reset` first (see
   * {@link ResetData}). Resolves once the subscriber is live; never rejects.
   */
  subscribe(target: ServerResponse | SseStream, options: SubscribeOptions = {}): Promise<void> {
    const stream =
      target instanceof SseStream ? target : (target as { sse?: unknown } | null | undefined)?.sse;
    if (!(stream instanceof SseStream)) {
      throw new TypeError(
        "subscribe() needs res.sse: add the sse() middleware (app.use(sse())) before this route",
      );
    }
    if (options === null || typeof options !== "object") {
      throw new TypeError(`subscribe() options must be an object, got ${describe(options)}`);
    }
    const { filter } = options;
    if (filter !== undefined && typeof filter !== "function") {
      throw new TypeError(`The "filter" option must be a function, got ${describe(filter)}`);
    }
    const member = options.member === undefined ? undefined : serializeMember(options.member);
    if (this._closed) throw new Error(`Channel "${this.name}" is closed`);
    if (this._subs.has(stream)) {
      throw new Error(`This stream is already subscribed to channel "${this.name}"`);
    }
    if (stream.closed) return Promise.resolve();
    stream.start();
    if (stream.closed) return Promise.resolve(); // HEAD, or 503 past maxConnections

    const lastId = lastEventIdOf(stream, this._query);
    const lifetime = this._lifetime.enabled;
    const sub =
      filter !== undefined || lastId !== undefined || lifetime
        ? new Subscription(stream, filter)
        : null;
    // The stream's owner slot costs no closure; a stream on several channels uses onClose for
    // the others.
    if (stream._owner === undefined) stream._owner = this;
    else stream.onClose((reason) => this._leave(stream, reason));
    this._subs.set(stream, sub);
    this._place(stream, sub);
    // The first local subscriber: the adapter starts receiving the channel's events (before the
    // history read below, so that the live feed covers everything after it).
    if (this._subs.size === 1) this._adapter.setActive?.(true);
    if (lifetime) this._lifetime.add(sub!);
    this._presence.join(stream, member);
    this.emit("join", stream);

    if (lastId === undefined || sub === null) return Promise.resolve();
    sub.pending = [];
    let result: HistoryResult | Promise<HistoryResult>;
    try {
      // An id longer than any a channel issues is unknown without being parsed or sent anywhere;
      // the adapter is asked with the empty id (unknown by the adapter contract) so the reset
      // still carries the oldest and newest ids, and the client resumes from the newest.
      result = this._adapter.history(lastId.length > MAX_LAST_EVENT_ID ? "" : lastId);
    } catch (err) {
      return Promise.resolve(this._replayFailed(sub, err));
    }
    if (isPromise(result)) {
      return result.then(
        (r) => this._replay(sub, lastId, r),
        (err: unknown) => this._replayFailed(sub, err),
      );
    }
    return this._replay(sub, lastId, result);
  }

  /**
   * Closes every subscriber's stream (they reconnect after their retry delay) and releases the
   * adapter channel. Later `publish()` calls reject. Safe to call twice.
   */
  async close(): Promise<void> {
    if (this._closed) return;
    this._closed = true;
    for (const stream of [...this._subs.keys()]) stream.close();
    this._lifetime.stop();
    this._presence.close();
    await this._adapter.close();
  }

  /** @internal */
  private async _replay(sub: Subscription, lastId: string, result: HistoryResult): Promise<void> {
    const stream = sub.stream;
    if (stream.closed) return;
    if (result.kind === "events") {
      this._stats.resumes++;
      // The client has everything up to its own id. Set before anything is replayed: with nothing
      // to replay, a live feed that lags behind the history read (another process's reader) would
      // otherwise deliver the client's last event a second time.
      sub.after = lastId;
      for (const event of result.events) {
        if (!this._validId(event.id)) continue;
        sub.after = event.id;
        if (sub.filter !== undefined && !this._passes(sub, event)) continue;
        if (!this._write(sub, event) && !(await stream.drain())) return;
      }
    } else {
      this._stats.resets++;
      sub.after = result.newestId;
      const frame = resetFrame(result.kind, result.oldestId, result.newestId);
      if (!stream._writeEvent(frame) && !(await stream.drain())) return;
    }
    // Events published while the replay was written: deliver those not already replayed. More can
    // arrive while we wait for the client to drain, so loop until the queue is empty.
    while (sub.pending !== undefined && sub.pending.length > 0) {
      const pending = sub.pending;
      sub.pending = [];
      for (const event of pending) {
        if (sub.after !== undefined && this._adapter.compare(event.id, sub.after) <= 0) continue;
        sub.after = undefined;
        if (sub.filter !== undefined && !this._passes(sub, event)) continue;
        if (!this._write(sub, event) && !(await stream.drain())) return;
      }
    }
    sub.pending = undefined;
    this._settle(sub);
  }

  /**
   * @internal Drops a subscription's state once it holds nothing but defaults: the subscriber is
   * live.
   */
  private _settle(sub: Subscription): void {
    if (
      sub.pending === undefined &&
      sub.after === undefined &&
      sub.filter === undefined &&
      sub.deadline === undefined &&
      this._subs.get(sub.stream) === sub
    ) {
      this._subs.set(sub.stream, null); // an existing key: same place in the iteration order
      this._rest.delete(sub.stream);
      this._place(sub.stream, null);
    }
  }

  /**
   * @internal Puts a subscriber where the fan-out writes to it: the lane when it is plain, on the
   * direct path, and this is its first channel; else the general path.
   */
  private _place(stream: SseStream, sub: Subscription | null): void {
    const socket = sub === null && stream._owner === this ? stream._laneSocket() : undefined;
    if (socket !== undefined) this._lane.add(stream, socket);
    else this._rest.add(stream);
  }

  /** @internal */
  private _replayFailed(sub: Subscription, err: unknown): void {
    // The stream cannot be resumed correctly; close it so the client retries (and resumes) later.
    this._report(err);
    sub.stream.close();
  }

  /**
   * @internal
   * The fan-out. Events are queued and written once the current synchronous run ends: one frame for the
   * whole batch, built once and written to every live subscriber in one write each, so a burst of
   * N publishes costs each client one write instead of N.
   */
  private _deliver(event: AdapterEvent): void {
    if (!this._validId(event.id)) return;
    this._stats.events++;
    if (this._subs.size === 0) return;
    this._batch.push(event);
    // A microtask, not nextTick: it runs before the continuation of `await publish()`, so an
    // awaited publish has reached every local subscriber's socket.
    if (this._batch.length === 1) queueMicrotask(this._flushTask);
  }

  /**
   * @internal
   * The adapter lost events this channel's live subscribers should have had (a store that lost
   * data in a failover, or trimmed it before this process read it): every subscriber gets
   * `event: reset`, as a resuming client would, and live events go on after `newestId`. A
   * subscriber still replaying history is closed instead: it reconnects and resumes from its own
   * last id, which history answers exactly.
   */
  private _resetLive(reset: AdapterReset): void {
    this._flush(); // events delivered before the reset go out before it
    if (this._subs.size === 0) return;
    const frame = resetFrame(reset.reason, reset.oldestId, reset.newestId);
    for (const [stream, sub] of [...this._subs]) {
      if (sub?.pending !== undefined) {
        stream.close();
        continue;
      }
      if (sub !== null && sub.after !== undefined) {
        sub.after = undefined;
        this._settle(sub);
      }
      this._stats.resets++;
      this._count(stream, frame, 1);
    }
  }

  /** @internal Writes the batch of this tick: one frame for the lane, and each of the rest. */
  _flush(): void {
    const events = this._batch;
    if (events.length === 0) return;
    this._batch = [];
    let shared: Frame | undefined;
    let written = 0; // subscribers that took `shared` (its bytes are counted once, below)
    if (this._lane.size > 0) {
      shared = Frame.concat(events.map((e) => this._frameOf(e)));
      written = this._lane.write(shared, events.length);
    }
    // A subscriber that goes live during this loop (its replay boundary passed) moves to the
    // lane; deleting the visited entry of a Set is safe while iterating it.
    for (const stream of this._rest) {
      const sub = this._subs.get(stream)!;
      if (sub !== null) {
        if (sub.pending !== undefined) {
          for (const event of events) sub.pending.push(event); // written after the replay
          continue;
        }
        if (sub.after !== undefined || sub.filter !== undefined) {
          this._deliverEach(sub, events);
          continue;
        }
      }
      shared ??= Frame.concat(events.map((e) => this._frameOf(e)));
      if (stream._writeEvent(shared, events.length) || !stream.closed) written++;
    }
    if (written > 0) this._stats.bytes += written * shared!.byteLength;
  }

  /**
   * @internal The per-subscriber path: the resume boundary and the filter decide event by event.
   */
  private _deliverEach(sub: Subscription, events: readonly AdapterEvent[]): void {
    const frames: Frame[] = [];
    for (const event of events) {
      if (sub.after !== undefined) {
        if (this._adapter.compare(event.id, sub.after) <= 0) continue;
        sub.after = undefined;
        this._settle(sub);
      }
      if (sub.filter !== undefined && !this._passes(sub, event)) continue;
      frames.push(this._frameOf(event));
    }
    if (frames.length > 0) this._count(sub.stream, Frame.concat(frames), frames.length);
  }

  /** @internal */
  private _count(stream: SseStream, frame: Frame, events: number): boolean {
    const ok = stream._writeEvent(frame, events);
    if (ok || !stream.closed) this._stats.bytes += frame.byteLength;
    return ok;
  }

  /**
   * @internal Writes one event to one subscriber (replay path); `false` when the client is behind.
   */
  private _write(sub: Subscription, event: AdapterEvent): boolean {
    return this._count(sub.stream, this._frameOf(event), 1);
  }

  /** @internal */
  private _frameOf(event: AdapterEvent): Frame {
    let frame = this._frames.get(event);
    if (frame === undefined) {
      frame = Frame.event(event.data, { event: event.event, id: event.id });
      this._frames.set(event, frame);
    }
    return frame;
  }

  /** @internal */
  private _passes(sub: Subscription, event: AdapterEvent): boolean {
    try {
      return sub.filter!({
        id: event.id,
        event: event.event,
        data: this._valueOf(event),
      });
    } catch (err) {
      // A throwing filter withholds the event from this subscriber only; the error is reported.
      this._report(err);
      return false;
    }
  }

  /**
   * @internal The value a filter sees: the published one, or the serialized text deserialized once.
   */
  private _valueOf(event: AdapterEvent): unknown {
    if ("value" in event) return event.value;
    if (event.serialized !== true) return event.data;
    if (this._values.has(event)) return this._values.get(event);
    const value = this._deserialize(event.data); // a throw withholds the event, as a filter's
    this._values.set(event, value);
    return value;
  }

  /** @internal A subscribed stream closed (the stream's owner slot). */
  _streamClosed(stream: SseStream, reason: StreamClosedError): void {
    this._leave(stream, reason);
  }

  /** @internal */
  private _leave(stream: SseStream, reason: StreamClosedError): void {
    const sub = this._subs.get(stream);
    if (sub === undefined) return;
    this._subs.delete(stream);
    if (!this._rest.delete(stream)) this._lane.remove(stream);
    if (sub !== null) sub.pending = undefined; // ends a replay in progress
    if (reason.type === "max-buffered-bytes") this._stats.slowClientsDropped++;
    if (this._subs.size === 0) {
      this._lifetime.stop();
      if (!this._closed) this._adapter.setActive?.(false);
    }
    this._presence.leave(stream);
    this.emit("leave", stream, reason);
  }

  /**
   * @internal
   * Whether an id the adapter issued can be sent (and sent back in `Last-Event-ID`). One that
   * cannot is an adapter bug: the event is reported and withheld instead of thrown on a write.
   */
  private _validId(id: string): boolean {
    const problem =
      typeof id === "string" ? idProblem(id) : `must be a string, got ${describe(id)}`;
    if (problem === undefined) return true;
    this._report(
      new TypeError(
        `Channel "${this.name}": the adapter issued the id ${JSON.stringify(String(id))}, which ` +
          `cannot be sent: an id ${problem}. The event was withheld.`,
      ),
    );
    return false;
  }

  /** @internal */
  private _report(err: unknown): void {
    reportError(this, err, "SluiceChannelWarning");
  }
}
