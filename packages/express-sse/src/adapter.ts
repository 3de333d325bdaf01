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
 * same contract suite (test/helpers/adapter-contract.ts).
 */
import { randomBytes } from "node:crypto";
import { History, type ResolvedHistoryOptions } from "./history";

/** An event as stored and delivered by an adapter. */
export interface AdapterEvent {
  readonly id: string;
  readonly event: string | undefined;
  /** Serialized data. */
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
  readonly event: string | undefined;
  readonly data: string;
  readonly value?: unknown;
  /** `true` when `data` came from the serializer; a distributed adapter stores it with the event. */
  readonly serialized?: boolean;
}

export type HistoryResult =
  | { readonly kind: "events"; readonly events: readonly AdapterEvent[] }
  | {
      readonly kind: "unknown" | "too-old";
      readonly oldestId: string | undefined;
      readonly newestId: string | undefined;
    };

/**
 * What `onReset` receives: the live feed lost events (see {@link AdapterChannel.listen}).
 * `reason` is `unknown` when the store no longer knows the last id delivered (it lost data, as in
 * a failover with asynchronous replication) and `too-old` when events after it were trimmed or
 * expired before this process read them. Delivery goes on after `newestId`.
 */
export interface AdapterReset {
  readonly reason: "unknown" | "too-old";
  readonly oldestId: string | undefined;
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

export interface AdapterChannel {
  /** Presence across processes (optional; see {@link AdapterPresence}). */
  readonly presence?: AdapterPresence;
  publish(event: AdapterPublish): Promise<string>;
  listen(onEvent: (event: AdapterEvent) => void, onReset?: (reset: AdapterReset) => void): void;
  /** This process has subscribers on the channel (`true`) or none left (`false`). */
  setActive?(active: boolean): void;
  history(afterId: string): HistoryResult | Promise<HistoryResult>;
  compare(a: string, b: string): number;
  close(): void | Promise<void>;
}

export interface AdapterChannelOptions {
  readonly history: ResolvedHistoryOptions;
}

export interface Adapter {
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
