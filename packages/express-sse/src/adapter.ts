/**
 * The Adapter interface: how a `Channel` stores its events and reaches other processes.
 *
 * A channel asks its adapter for one `AdapterChannel` per channel name, then:
 * - `publish(event)`: appends an event; resolves with its id once it is stored (for a distributed
 *   adapter: durable and visible to every instance). Ids are strictly increasing per channel.
 * - `listen(onEvent, onReset)`: receives every appended event, from this process or any other,
 *   exactly once and in id order, while the channel is active. One listener per channel; the
 *   channel fans out locally. `onReset` is called when the adapter finds that events it had to
 *   deliver are gone (a distributed store lost or trimmed them before this process read them): the
 *   channel then sends its live subscribers `event: reset`, never a silent gap.
 * - `setActive(active)` (optional): the channel has local subscribers (`true`) or none left
 *   (`false`). A distributed adapter receives a channel's events only while it is active, so a
 *   channel nobody in this process listens to costs this process nothing. Events published while
 *   a channel is inactive are not delivered to its listener (nobody here would receive them).
 * - `history(afterId)`: the retained events after `afterId`, or a reset (`unknown`: the id was not
 *   issued by this channel, `too-old`: events after it were trimmed), with the oldest and newest
 *   ids still held. May be synchronous.
 * - `compare(a, b)`: orders two ids this channel issued (negative, zero, positive).
 * - `close()`: releases every connection, timer and listener.
 *
 * The in-memory adapter below is the default; `@sluice/redis` is the distributed one. Both pass the
 * same contract suite (`@sluice/express-sse/adapter-contract`, src/adapter-contract.ts).
 */
import { randomBytes } from "node:crypto";
import { History, type ResolvedHistoryOptions } from "./history";

/** An event as stored and delivered by an adapter. */
export interface AdapterEvent {
  /**
   * The id `publish` resolved with: unique in the channel, ordered by `compare`, and one a client
   * can send back in `Last-Event-ID` (the rules of `send()`'s `id`; the channel withholds others).
   */
  readonly id: string;
  /** The event name (`event:`), `undefined` for an unnamed (`message`) event. */
  readonly event: string | undefined;
  /** Serialized data, exactly as published: the `data:` lines are written from it. */
  readonly data: string;
  /** The value before serialization, for events published in this process (filters use it). */
  readonly value?: unknown;
  /**
   * `true` when `data` is the channel serializer's output (the published value was not a
   * string), so a channel in another process can deserialize it for filters. Adapters that carry
   * events between processes keep this flag with the event; see `AdapterPublish#serialized`.
   */
  readonly serialized?: boolean;
}

/** What `publish` stores. */
export interface AdapterPublish {
  /** The event name, `undefined` for an unnamed (`message`) event. */
  readonly event: string | undefined;
  /** Serialized data: store it, and deliver it, byte for byte. */
  readonly data: string;
  /**
   * The published value before serialization. Deliver it with the event to this process's
   * listener (filters read it instead of parsing `data`); never store or send it elsewhere.
   */
  readonly value?: unknown;
  /** `true` when `data` came from the serializer; a distributed adapter stores it with the event. */
  readonly serialized?: boolean;
}

/**
 * What `history(afterId)` answers:
 * - `events`: every retained event after `afterId`, in id order (empty: the client is up to date).
 *   A resume replays them, then goes on live.
 * - `unknown`: this channel never issued `afterId` (another channel's id, an earlier run's, a
 *   forged one), or the store no longer knows it.
 * - `too-old`: `afterId` was issued, but events after it were trimmed (a history bound) or expired.
 *
 * For both resets, `oldestId` and `newestId` are the oldest and newest ids still held
 * (`undefined` when none are): the client gets `event: reset` with them and resumes after
 * `newestId`.
 */
export type HistoryResult =
  | {
      readonly kind: "events";
      /** The retained events after the id, oldest first. */
      readonly events: readonly AdapterEvent[];
    }
  | {
      readonly kind: "unknown" | "too-old";
      /** The oldest id still held, or `undefined` when the channel holds no event. */
      readonly oldestId: string | undefined;
      /** The newest id still held, or `undefined` when the channel holds no event. */
      readonly newestId: string | undefined;
    };

/**
 * What `onReset` receives: the live feed lost events (see {@link AdapterChannel.listen}).
 * `reason` is `unknown` when the store no longer knows the last id delivered (it lost data, as in
 * a failover with asynchronous replication) and `too-old` when events after it were trimmed or
 * expired before this process read them. Delivery goes on after `newestId`.
 */
export interface AdapterReset {
  /** `unknown`: the store lost the position; `too-old`: the events were trimmed or expired. */
  readonly reason: "unknown" | "too-old";
  /** The oldest id the store still holds, if any. */
  readonly oldestId: string | undefined;
  /** The newest id the store holds: delivery goes on after it. */
  readonly newestId: string | undefined;
}

/** A change of a channel's presence across processes (see {@link AdapterPresence}). */
export interface PresenceUpdate {
  /** Subscribers in every process. */
  readonly total: number;
  /** App data (JSON) of members that joined in other processes since the last update. */
  readonly joined: readonly string[];
  /**
   * App data (JSON) of members that left in other processes since the last update, including the
   * members of a process that died without saying so (once the adapter drops it), each once.
   */
  readonly left: readonly string[];
}

/**
 * Presence across processes, for a distributed adapter (optional: without it a channel's presence
 * is its own subscribers). The channel tells it this process's subscribers; the adapter combines
 * every process's and tells the channel the total and the members that came and went elsewhere.
 */
export interface AdapterPresence {
  /**
   * This process's subscribers of the channel: how many, and the app data (JSON) of those that
   * gave one, by a key unique per subscriber in this process. Called after changes, at most once
   * per `presenceInterval`. Resolves with the total, or rejects if the store failed (the channel
   * reports it and calls again at the next change).
   */
  set(count: number, members: ReadonlyMap<string, string>): Promise<number>;
  /** Changes made by other processes, while the channel is active. One watcher. */
  watch(onUpdate: (update: PresenceUpdate) => void): void;
  /** The app data of up to `limit` members of every process, and the total. */
  members(limit: number): Promise<{ readonly total: number; readonly members: readonly string[] }>;
}

/** One channel of an adapter: what a `Channel` calls (see the module's description). */
export interface AdapterChannel {
  /** Presence across processes (optional; see {@link AdapterPresence}). */
  readonly presence?: AdapterPresence;
  /**
   * Appends an event. Resolves with its id once it is stored (for a distributed adapter: durable
   * and visible to every process), so a client resuming from any earlier id gets it. Ids strictly
   * increase per channel, also for concurrent calls. Rejects if it could not be stored: the
   * channel's `publish()` rejects with that error, and nothing is delivered.
   */
  publish(event: AdapterPublish): Promise<string>;
  /**
   * Sets the channel's one listener: every event appended from now on, by any process, exactly
   * once and in id order, while the channel is active (see `setActive`). `onReset`: events the
   * adapter had to deliver are gone; the channel tells its live subscribers with `event: reset`.
   */
  listen(onEvent: (event: AdapterEvent) => void, onReset?: (reset: AdapterReset) => void): void;
  /**
   * Optional. This process has subscribers on the channel (`true`, called before their history is
   * read, so the live feed covers everything after the replay) or none left (`false`). A
   * distributed adapter receives the channel's events only while it is active.
   */
  setActive?(active: boolean): void;
  /** The retained events after `afterId`, or why they cannot be given; may be synchronous. */
  history(afterId: string): HistoryResult | Promise<HistoryResult>;
  /** Orders two ids this channel issued: negative if `a` is older, zero if equal, else positive. */
  compare(a: string, b: string): number;
  /** Releases every connection, timer and listener of the channel; called once, by the channel. */
  close(): void | Promise<void>;
}

/** What a channel gives its adapter when it opens. */
export interface AdapterChannelOptions {
  /** The channel's history bounds, every default filled in: keep at most this much. */
  readonly history: ResolvedHistoryOptions;
}

/**
 * Where channels keep their events and how they reach other processes: `MemoryAdapter` (the
 * default, one process) or a distributed one (`@sluice/redis`). An adapter of your own passes
 * `@sluice/express-sse/adapter-contract`.
 */
export interface Adapter {
  /**
   * The adapter's channel of this name, for one `Channel` (a process may open the same name
   * again after closing it). Synchronous: an adapter that needs a connection opens it lazily,
   * and `publish`/`history` wait for it.
   */
  open(name: string, options: AdapterChannelOptions): AdapterChannel;
}

interface MemoryEntry extends AdapterEvent {
  readonly seq: number;
  readonly size: number;
  readonly time: number;
}

// "<epoch>-<seq>": the epoch is random per channel instance, so an id from an earlier run of the
// server (or another instance) is recognised as unknown instead of being misread as a position.
const ID_PATTERN = /^([0-9a-z]{8})-([1-9][0-9]{0,15})$/;

/** The in-process adapter: history in memory, delivery by a direct call. The default. */
export class MemoryAdapter implements Adapter {
  open(_name: string, options: AdapterChannelOptions): AdapterChannel {
    return new MemoryChannel(options.history);
  }
}

class MemoryChannel implements AdapterChannel {
  /** @internal */
  private readonly _epoch = randomBytes(5).toString("hex").slice(0, 8);
  /** @internal */
  private readonly _history: History<MemoryEntry>;
  /** @internal */
  private _listener: ((event: AdapterEvent) => void) | undefined = undefined;
  /** @internal */
  private _seq = 0;

  constructor(history: ResolvedHistoryOptions) {
    this._history = new History(history);
  }

  publish(input: AdapterPublish): Promise<string> {
    const seq = ++this._seq;
    const entry: MemoryEntry = {
      id: `${this._epoch}-${seq}`,
      event: input.event,
      data: input.data,
      value: input.value,
      seq,
      size:
        Buffer.byteLength(input.data) +
        (input.event === undefined ? 0 : Buffer.byteLength(input.event)),
      time: Date.now(),
    };
    this._history.append(entry);
    this._listener?.(entry);
    return Promise.resolve(entry.id);
  }

  listen(onEvent: (event: AdapterEvent) => void): void {
    this._listener = onEvent;
  }

  history(afterId: string): HistoryResult {
    const seq = this._parse(afterId);
    const result = seq === undefined ? ({ kind: "unknown" } as const) : this._history.since(seq);
    if (result.kind === "events") return result;
    const oldest = this._history.oldest();
    return {
      kind: result.kind,
      oldestId: oldest?.id,
      newestId: this._seq === 0 ? undefined : `${this._epoch}-${this._seq}`,
    };
  }

  compare(a: string, b: string): number {
    return (this._parse(a) ?? 0) - (this._parse(b) ?? 0);
  }

  close(): void {
    this._listener = undefined;
  }

  /** @internal */
  private _parse(id: string): number | undefined {
    const match = ID_PATTERN.exec(id);
    if (match === null || match[1] !== this._epoch) return undefined;
    const seq = Number(match[2]);
    return Number.isSafeInteger(seq) ? seq : undefined;
  }
}
