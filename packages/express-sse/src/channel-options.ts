/**
 * A channel's options: their types, defaults and validation (`new Channel()` throws what
 * `resolveChannelOptions` throws, before anything is opened). No state.
 */
import { MemoryAdapter, type Adapter } from "./adapter";
import { resolveHistoryOptions, type HistoryOptions, type ResolvedHistoryOptions } from "./history";
import type { Serializer } from "./options";
import { describe, nonNegativeInteger } from "./util";
import { DEFAULT_PRESENCE_INTERVAL } from "./presence";
import { jsonSerialize } from "./serialize";
import type { ChannelEvent } from "./subscription";

/** Event name -> payload type. `Record<string, unknown>` (the default) allows anything. */
export type EventMap = Record<string, unknown>;

export interface SubscribeOptions {
  /** Decides per subscriber whether an event reaches it, live and on replay. */
  filter?: (event: ChannelEvent) => boolean;
  /**
   * App data that says who this subscriber is (`{ user: "ann" }`), listed by `members()` and
   * told by the `member:join` and `member:leave` events. JSON-serializable, at most 1,024 bytes
   * as JSON; anything else is a TypeError at `subscribe()`, and the stream is not opened.
   */
  member?: unknown;
}

export interface ChannelOptions {
  /** History bounds for resume. @defaultValue `{ max: 1000, maxBytes: 4 MiB, maxAge: Infinity }` */
  history?: HistoryOptions;
  /** Where events are stored and how they reach other processes. @defaultValue a MemoryAdapter */
  adapter?: Adapter;
  /** Turns non-string payloads into event data. @defaultValue JSON.stringify */
  serialize?: Serializer;
  /**
   * The inverse of `serialize`, for filters on events published by other processes (a
   * distributed adapter carries the text, not the value). Called at most once per event, only
   * when a filter needs it. @defaultValue JSON.parse
   */
  deserialize?: (text: string) => unknown;
  /**
   * Also accept the last event id from this query parameter (for clients that cannot send the
   * `Last-Event-ID` header). The header wins when both are present: a reconnecting browser sends
   * the header with its newest id, while the URL still carries the first one.
   */
  lastEventIdQuery?: string;
  /**
   * Close each subscriber's stream after this many ms (times a random 0.8-1.0, so reconnects
   * spread out), so clients rebalance across instances and re-authenticate. They resume with no
   * loss through Last-Event-ID.
   */
  maxLifetime?: number;
  /** `retry` hint (ms) sent just before a `maxLifetime` close. @defaultValue 1000 */
  lifetimeRetry?: number;
  /**
   * At most one `count` event per this many ms (the first change is told at once, the last one
   * always follows). `0`: one per change. @defaultValue 250
   */
  presenceInterval?: number;
  /**
   * Presence across processes. `false`: `count`, `members()` and the `count` / `member:*` events
   * describe this process's subscribers only, and the adapter stores and announces nothing for
   * them (with `@sluice/redis`: no script per change, no keep-alive per quiet channel). For
   * channels whose audience nobody counts: a channel per user, per order, per job. No effect with
   * an adapter without presence (the in-memory one is this process only anyway).
   * @defaultValue true
   */
  presence?: boolean;
}

/** Counters of a channel since it was created. Cheap: plain increments on paths already taken. */
export interface ChannelStats {
  subscribers: number;
  /**
   * Events the channel received from its adapter: every event published on it, from any process,
   * while it has local subscribers (a distributed adapter delivers nothing to a channel without
   * subscribers in this process; the in-memory adapter delivers every event).
   */
  events: number;
  /** Bytes written to subscribers (each copy counted). */
  bytes: number;
  /** Subscribers disconnected for passing `maxBufferedBytes`. */
  slowClientsDropped: number;
  /** Subscribers that resumed from history after `Last-Event-ID`. */
  resumes: number;
  /** Subscribers that got `event: reset`. */
  resets: number;
}

const DEFAULT_LIFETIME_RETRY = 1000;

/** Every option's name: a misspelt one (`presense: false`) is an error, not a silent default. */
const KNOWN = new Set<string>([
  "history",
  "adapter",
  "serialize",
  "deserialize",
  "lastEventIdQuery",
  "maxLifetime",
  "lifetimeRetry",
  "presenceInterval",
  "presence",
] satisfies (keyof ChannelOptions)[]);

/** A channel's options, checked and with their defaults. */
export interface ResolvedChannelOptions {
  readonly history: ResolvedHistoryOptions;
  readonly adapter: Adapter;
  readonly serialize: Serializer;
  readonly deserialize: (text: string) => unknown;
  readonly lastEventIdQuery: string | undefined;
  /** `Infinity`: off. */
  readonly maxLifetime: number;
  readonly lifetimeRetry: number;
  readonly presenceInterval: number;
  readonly presence: boolean;
}

/** Checks a channel's name and options; a TypeError or RangeError says what is wrong. */
export function resolveChannelOptions(
  name: unknown,
  options: ChannelOptions,
): ResolvedChannelOptions {
  if (typeof name !== "string" || name === "") {
    throw new TypeError(`A channel name must be a non-empty string, got ${describe(name)}`);
  }
  if (options === null || typeof options !== "object") {
    throw new TypeError(`Channel options must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new TypeError(`Unknown Channel option "${key}"`);
  }
  const history = resolveHistoryOptions(options.history);
  const serialize = options.serialize ?? jsonSerialize;
  if (typeof serialize !== "function") {
    throw new TypeError(`The "serialize" option must be a function, got ${describe(serialize)}`);
  }
  const deserialize = options.deserialize ?? JSON.parse;
  if (typeof deserialize !== "function") {
    throw new TypeError(
      `The "deserialize" option must be a function, got ${describe(deserialize)}`,
    );
  }
  if (
    options.lastEventIdQuery !== undefined &&
    (typeof options.lastEventIdQuery !== "string" || options.lastEventIdQuery === "")
  ) {
    throw new TypeError(`The "lastEventIdQuery" option must be a non-empty string`);
  }
  const maxLifetime =
    options.maxLifetime === undefined
      ? Infinity
      : nonNegativeInteger('The "maxLifetime" option', options.maxLifetime);
  if (maxLifetime === 0) throw new RangeError('The "maxLifetime" option must be at least 1 ms');
  const lifetimeRetry =
    options.lifetimeRetry === undefined
      ? DEFAULT_LIFETIME_RETRY
      : nonNegativeInteger('The "lifetimeRetry" option', options.lifetimeRetry);
  const presenceInterval =
    options.presenceInterval === undefined
      ? DEFAULT_PRESENCE_INTERVAL
      : nonNegativeInteger('The "presenceInterval" option', options.presenceInterval);
  const presence = options.presence ?? true;
  if (typeof presence !== "boolean") {
    throw new TypeError(`The "presence" option must be true or false, got ${describe(presence)}`);
  }
  const adapter = options.adapter ?? new MemoryAdapter();
  if (adapter === null || typeof adapter !== "object" || typeof adapter.open !== "function") {
    throw new TypeError(
      `The "adapter" option must be an Adapter (with open()), got ${describe(adapter)}`,
    );
  }
  return {
    history,
    adapter,
    serialize,
    deserialize,
    lastEventIdQuery: options.lastEventIdQuery,
    maxLifetime,
    lifetimeRetry,
    presenceInterval,
    presence,
  };
}
