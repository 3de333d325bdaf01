/**
 * The only file that knows the Redis client library: node-redis (the `redis` package, v5 or v6).
 * Everything else deals in `Connection` methods and plain values.
 *
 * Commands go through `sendCommand` with their raw arguments and a default type mapping, so the
 * replies have the same shape whatever the user's client is configured with (RESP2 or RESP3, a
 * custom `typeMapping`); the few places where RESP2 and RESP3 replies differ (maps) are read by
 * the parsers below. Raw commands are also untouched by node-redis's `keyPrefix`: the adapter's
 * own `prefix` option names its keys.
 */
import { createClient } from "redis";
import { backoffDelay, type BackoffOptions } from "./backoff";

/**
 * A node-redis client, as far as this adapter uses it: `createClient()` from `redis` v5 or v6
 * (`RedisClientType`). Typed structurally so that clients of either version, with any modules,
 * scripts or RESP version, are accepted.
 */
export interface NodeRedisClient {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  readonly options?: { readonly socket?: object } | undefined;
  sendCommand(args: readonly string[], options?: object): Promise<unknown>;
  duplicate(overrides?: object): NodeRedisClient;
  connect(): Promise<unknown>;
  destroy(): void;
  close?(): Promise<void>;
  on(event: string, listener: (...args: any[]) => void): unknown;
  off(event: string, listener: (...args: any[]) => void): unknown;
}

/** A stream entry: its id and its field/value list. */
export type Entry = readonly [id: string, fields: string[]];

/** What `XINFO STREAM` says about a stream (Redis 7 fields). */
export interface StreamInfo {
  /** Entries in the stream now. */
  readonly length: number;
  /** Entries ever added: more than `length` once anything was trimmed or deleted. */
  readonly entriesAdded: number;
  readonly lastGeneratedId: string;
  /** Newest id removed by `XDEL` ("0-0": none). Redis 7.0 does not count trimming here. */
  readonly maxDeletedEntryId: string;
  /** The oldest entry still in the stream. */
  readonly firstEntryId: string | undefined;
}

/** The client name of the blocking reader connection (`CLIENT LIST` shows it). */
export const READER_NAME = "sluice-reader";
/** The client name of the command connection the adapter creates from a URL. */
export const COMMANDS_NAME = "sluice";

/**
 * Per-command options: the library's default type mapping (strings, numbers, RESP3 maps as
 * plain objects), whatever the client was configured with.
 */
const RAW = Object.freeze({ typeMapping: Object.freeze({}) });

/** Callbacks of one connection; `Connection#release` removes them. */
export interface ConnectionEvents {
  /** The connection is (again) ready for commands. */
  onReady(): void;
  /** A connection error (a reconnect attempt that failed, a socket that died). */
  onError(error: Error): void;
}

/** node-redis's `socket.reconnectStrategy`: ms before the next attempt, or an Error to stop. */
export type ReconnectStrategy = (retries: number) => number | Error;

/** Creates a client that reconnects with `strategy`; see {@link createConnections}. */
export type ClientFactory = (strategy: ReconnectStrategy) => NodeRedisClient;

/** Longest a release waits for a connection attempt in progress to end (node-redis's default connectTimeout is 5 s). */
const ATTEMPT_WAIT_MS = 6000;
/** How often a user's client that is not ready is checked, while the adapter waits for it. */
const READY_POLL_MS = 25;

/**
 * One Redis connection and the commands the adapter sends on it. Wraps either a client the
 * adapter created (and so closes: {@link Connection.owned}) or the user's own client (never
 * closed here: {@link Connection.borrowed}).
 */
export class Connection {
  private readonly _client: NodeRedisClient;
  /** Where the client's events are emitted (see `emitterOf`). */
  private readonly _emitter: Emitter;
  private readonly _owned: boolean;
  private readonly _onReady: () => void;
  private readonly _onError: (error: unknown) => void;
  private readonly _onReconnecting: () => void;
  /** Of a user's client: the timer checking for it to become ready (see `watch`). */
  private _poll: NodeJS.Timeout | undefined = undefined;
  /** Of an owned client: a connection attempt is in progress (not waiting, not ready). */
  private _attempting = false;
  private _released = false;

  /** A client the adapter creates with `factory`, reconnecting with `backoff`, and closes. */
  static owned(factory: ClientFactory, backoff: BackoffOptions, events: ConnectionEvents) {
    let connection: Connection | undefined;
    // Once released, a failed attempt stops the client instead of retrying.
    const strategy: ReconnectStrategy = (retries) =>
      connection?._released ? new Error("released") : backoffDelay(retries, backoff);
    connection = new Connection(factory(strategy), true, events);
    return connection;
  }

  /**
   * The user's client: never connected, closed or listened to here. Its readiness is checked with
   * `watch()` instead of a 'ready' listener: removing a listener from node-redis's client object
   * can cut off the user's own listeners (see `emitterOf`), and a listener left behind would
   * outlive the adapter. `onError` is never called: its errors are the user's.
   */
  static borrowed(client: NodeRedisClient, events: ConnectionEvents): Connection {
    return new Connection(client, false, events);
  }

  private constructor(client: NodeRedisClient, owned: boolean, events: ConnectionEvents) {
    this._client = client;
    this._emitter = emitterOf(client);
    this._owned = owned;
    this._onReady = () => {
      this._attempting = false;
      events.onReady();
    };
    this._onError = (error: unknown) => {
      this._attempting = false; // a failed attempt (node-redis now waits), or a dead socket
      events.onError(error instanceof Error ? error : new Error(String(error)));
    };
    this._onReconnecting = () => (this._attempting = true);
    if (!owned) return;
    const emitter = this._emitter;
    emitter.on("ready", this._onReady);
    // node-redis emits 'error' for every failed reconnect attempt, and an 'error' event without a
    // listener would crash the process.
    emitter.on("error", this._onError);
    emitter.on("reconnecting", this._onReconnecting);
  }

  /**
   * Calls `onReady` once the connection is ready, if it is not now. Owned clients do that by
   * their 'ready' event anyway; a user's client is checked every 25 ms until it is ready (one
   * timer, only while something waits for it).
   */
  watch(): void {
    if (this._owned || this._released || this._poll !== undefined || this._client.isReady) return;
    this._poll = setInterval(() => {
      if (!this._client.isReady) return;
      clearInterval(this._poll);
      this._poll = undefined;
      this._onReady();
    }, READY_POLL_MS);
  }

  /** Ready for commands now. */
  get ready(): boolean {
    return this._client.isReady;
  }

  /**
   * Connects a client this adapter created. Resolves once connected; while Redis is unreachable
   * the client keeps retrying with the backoff, so this can take as long as the outage. Rejects if
   * the connection is released first.
   */
  async connect(): Promise<void> {
    if (!this._owned || this._client.isOpen) return;
    this._attempting = true;
    await this._client.connect();
  }

  /**
   * `XADD key MAXLEN ~ maxLen * <fields>`: resolves with the new entry's id, or fails with
   * {@link NoAnswerError} after `timeout` ms.
   */
  async append(key: string, maxLen: number, fields: readonly string[], timeout: number) {
    const args = ["XADD", key, "MAXLEN", "~", String(maxLen), "*", ...fields];
    // node-redis's own `timeout` only covers the wait to be written (then it drops the command
    // from its queue); the deadline covers the answer too.
    const reply = this._client.sendCommand(args, { ...RAW, timeout });
    return asString(await answerWithin(reply, timeout));
  }

  /** `XTRIM key MINID ~ minId`: drops entries older than `minId`, a whole node at a time. */
  async trimBefore(key: string, minId: string): Promise<void> {
    await this._client.sendCommand(["XTRIM", key, "MINID", "~", minId], RAW);
  }

  /**
   * Redis's clock and the id of the stream's newest entry (`undefined` for an empty or missing
   * stream), sent together on one connection so both describe the same moment.
   */
  async streamHead(key: string): Promise<{ timeMs: number; newest: string | undefined }> {
    const [timeMs, entries] = await Promise.all([
      this.timeMs(),
      this.rangeReverse(key, "+", "-", 1),
    ]);
    return { timeMs, newest: entries[0]?.[0] };
  }

  /** `XINFO STREAM key`, or `undefined` when the key does not exist. */
  async info(key: string): Promise<StreamInfo | undefined> {
    let reply: unknown;
    try {
      reply = await this._client.sendCommand(["XINFO", "STREAM", key], RAW);
    } catch (err) {
      if (err instanceof Error && /no such key/i.test(err.message)) return undefined;
      throw err;
    }
    const info = asRecord(reply);
    const first = info["first-entry"];
    return {
      length: Number(info["length"] ?? 0),
      entriesAdded: Number(info["entries-added"] ?? 0),
      lastGeneratedId: asString(info["last-generated-id"] ?? "0-0"),
      maxDeletedEntryId: asString(info["max-deleted-entry-id"] ?? "0-0"),
      firstEntryId: Array.isArray(first) ? asString(first[0]) : undefined,
    };
  }

  /** `XRANGE key start end COUNT count`. */
  async range(key: string, start: string, end: string, count: number): Promise<Entry[]> {
    const args = ["XRANGE", key, start, end, "COUNT", String(count)];
    return asEntries(await this._client.sendCommand(args, RAW));
  }

  /** `XREVRANGE key end start COUNT count`: newest first. */
  async rangeReverse(key: string, end: string, start: string, count: number): Promise<Entry[]> {
    const args = ["XREVRANGE", key, end, start, "COUNT", String(count)];
    return asEntries(await this._client.sendCommand(args, RAW));
  }

  /** Redis's clock (`TIME`), in ms. */
  async timeMs(): Promise<number> {
    const reply = await this._client.sendCommand(["TIME"], RAW);
    if (!Array.isArray(reply)) throw new TypeError(`Unexpected TIME reply: ${String(reply)}`);
    return Number(reply[0]) * 1000 + Math.floor(Number(reply[1]) / 1000);
  }

  /** `CLIENT ID` of this connection. */
  async clientId(): Promise<string> {
    return String(await this._client.sendCommand(["CLIENT", "ID"], RAW));
  }

  /** `CLIENT UNBLOCK id`: ends another connection's blocking read; `false` if it was not blocked. */
  async unblock(clientId: string): Promise<boolean> {
    return Number(await this._client.sendCommand(["CLIENT", "UNBLOCK", clientId], RAW)) === 1;
  }

  /**
   * `XREAD COUNT count BLOCK blockMs STREAMS key… id…`: entries after each id, waiting up to
   * `blockMs` for the first. Resolves with `[key, entries]` pairs (none on a timeout). Fails
   * with {@link NoAnswerError} if no answer comes `blockMs + grace` ms after it was sent: a
   * connection that silently died (no RST, no FIN).
   */
  async read(
    streams: ReadonlyArray<readonly [key: string, afterId: string]>,
    count: number,
    blockMs: number,
    grace: number,
  ): Promise<Array<[key: string, entries: Entry[]]>> {
    const args = ["XREAD", "COUNT", String(count), "BLOCK", String(blockMs), "STREAMS"];
    for (const [key] of streams) args.push(key);
    for (const [, id] of streams) args.push(id);
    const reply = this._client.sendCommand(args, RAW);
    return asStreams(await answerWithin(reply, blockMs + grace));
  }

  /**
   * Removes this wrapper's listeners and, for a client the adapter created, closes it: gracefully
   * (pending replies first, at most `graceMs`) when it is connected and `graceMs > 0`, at once
   * otherwise. A user's client is left open and untouched.
   *
   * node-redis cannot abort a connection attempt in progress (a client destroyed then still
   * finishes connecting, and keeps that socket), so an owned client caught mid-attempt is first
   * told to stop retrying, and destroyed once the attempt ends either way.
   */
  async release(graceMs: number): Promise<void> {
    if (this._released) return;
    this._released = true;
    clearInterval(this._poll);
    this._poll = undefined;
    if (!this._owned) return;
    const client = this._client;
    const emitter = this._emitter;
    // A late socket error on a client we dropped must not become an unhandled 'error' event.
    // (Added before the others go, so that the client's listener count never drops to zero.)
    emitter.on("error", ignoreLateError);
    emitter.off("ready", this._onReady);
    emitter.off("error", this._onError);
    emitter.off("reconnecting", this._onReconnecting);
    if (this._attempting && !client.isReady) await attemptEnded(emitter);
    if (graceMs > 0 && client.isReady && typeof client.close === "function") {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        client.close().catch(() => undefined),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
      ]);
      clearTimeout(timer);
    }
    try {
      client.destroy();
    } catch {
      // node-redis 5 throws if the client is closed already (a stopped reconnection)
    }
  }
}

/** Resolves when a connection attempt in progress ends: connected, failed, or after a bound. */
function attemptEnded(emitter: Emitter): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      emitter.off("ready", done);
      emitter.off("error", done);
      resolve();
    };
    const timer = setTimeout(done, ATTEMPT_WAIT_MS);
    emitter.on("ready", done);
    emitter.on("error", done);
  });
}

type Emitter = Pick<NodeRedisClient, "on" | "off">;

/**
 * The object a node-redis client emits its events on. `createClient()` and `duplicate()` return
 * `Object.create(client)`, a thin object whose prototype (`_self`) is the client that emits.
 * Listeners added through the thin object land in the client's listener table, but each object
 * keeps its own listener count, and EventEmitter replaces an object's table with an empty one
 * when its count drops to zero: remove the last listener through one of them and listeners added
 * through the other are silently dropped or never called. So the adapter adds and removes only
 * on `_self`, only on clients it created, and never touches a user's client's listeners.
 */
function emitterOf(client: NodeRedisClient): Emitter {
  const self = (client as { _self?: unknown })._self;
  return self !== null && typeof self === "object" && typeof (self as Emitter).on === "function"
    ? (self as Emitter)
    : client;
}

function ignoreLateError(): void {}

export interface ConnectionsOptions {
  /** `redis://…` to create clients from; ignored when `client` is given. */
  readonly url: string | undefined;
  /** The user's client: used for commands, duplicated for the reader, never closed. */
  readonly client: NodeRedisClient | undefined;
}

/** Where the adapter's connections come from. */
export interface Connections {
  /** The user's client, which carries the commands; `undefined` with a URL. */
  readonly borrowed: NodeRedisClient | undefined;
  /** Creates the command client (with a URL only). */
  readonly commands: ClientFactory | undefined;
  /**
   * Creates a client for blocking reads: never the command connection (a blocked connection can
   * send nothing else). Offline queue off (a read while disconnected fails at once), our backoff,
   * no idle socket timeout, no client-side cache or pings (they would queue behind a blocked read).
   */
  readonly reader: ClientFactory;
}

export function createConnections(options: ConnectionsOptions): Connections {
  const user = options.client;
  if (user !== undefined) {
    return {
      borrowed: user,
      commands: undefined,
      reader: (reconnectStrategy) =>
        user.duplicate({
          name: READER_NAME,
          disableOfflineQueue: true,
          pingInterval: undefined,
          clientSideCache: undefined,
          emitInvalidate: false,
          socket: { ...user.options?.socket, reconnectStrategy, socketTimeout: undefined },
        }),
    };
  }
  const create = (name: string, reconnectStrategy: ReconnectStrategy) =>
    createClient({
      url: options.url,
      name,
      // A publish while Redis is unreachable fails at once instead of waiting in a queue.
      disableOfflineQueue: true,
      socket: { reconnectStrategy },
    }) as unknown as NodeRedisClient;
  return {
    borrowed: undefined,
    commands: (strategy) => create(COMMANDS_NAME, strategy),
    reader: (strategy) => create(READER_NAME, strategy),
  };
}

/** How a failed command failed, for publish errors. */
export interface Failure {
  /** `false`: Redis never stored it. `undefined`: it may have been stored (sent, no answer). */
  readonly stored: false | undefined;
  /** Why, in words. */
  readonly reason: string;
}

/** A command that got no answer in time: Redis is stuck, or the connection died silently. */
export class NoAnswerError extends Error {
  constructor(ms: number) {
    super(`no answer from Redis within ${ms} ms`);
    this.name = "NoAnswerError";
  }
}

/** `reply`, or a {@link NoAnswerError} after `ms` (one timer, cleared when the reply comes). */
function answerWithin<T>(reply: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new NoAnswerError(ms)), ms);
    reply.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** Classifies an error from `append()` (node-redis error classes, by name across versions). */
export function describeFailure(error: unknown, timeout: number): Failure {
  const name = error instanceof Error ? error.constructor.name : "";
  const message = error instanceof Error ? error.message : String(error);
  switch (name) {
    case "ClientOfflineError":
    case "ClientClosedError":
      return { stored: false, reason: `Redis is unreachable (${message})` };
    case "ErrorReply":
    case "SimpleError":
    case "BlobError":
      return { stored: false, reason: `Redis refused it: ${message}` };
    case "NoAnswerError":
    case "TimeoutError":
      return { stored: undefined, reason: `Redis did not answer within ${timeout} ms` };
    default:
      return {
        stored: undefined,
        reason: `the connection to Redis failed before Redis answered (${message})`,
      };
  }
}

/** Whether `error` says that no answer came in time (ours, or node-redis's queue timeout). */
export function isTimeout(error: unknown): boolean {
  return (
    error instanceof NoAnswerError ||
    (error instanceof Error && error.constructor.name === "TimeoutError")
  );
}

function asString(value: unknown): string {
  if (typeof value === "string") return value;
  if (Buffer.isBuffer(value)) return value.toString();
  if (typeof value === "number") return String(value);
  throw new TypeError(`Expected a string reply from Redis, got ${typeof value}`);
}

/** A RESP2 flat [k, v, …] array, a RESP3 map as an object, or a Map, as an object. */
function asRecord(reply: unknown): Record<string, unknown> {
  if (Array.isArray(reply)) {
    const record: Record<string, unknown> = {};
    for (let i = 0; i + 1 < reply.length; i += 2) record[asString(reply[i])] = reply[i + 1];
    return record;
  }
  if (reply instanceof Map) return Object.fromEntries(reply) as Record<string, unknown>;
  if (reply !== null && typeof reply === "object") return reply as Record<string, unknown>;
  throw new TypeError(`Unexpected reply from Redis: ${String(reply)}`);
}

function asEntries(reply: unknown): Entry[] {
  if (reply === null || reply === undefined) return [];
  if (!Array.isArray(reply)) throw new TypeError(`Unexpected stream reply: ${String(reply)}`);
  return reply.map((entry: unknown) => {
    const [id, fields] = entry as [unknown, unknown];
    return [asString(id), Array.isArray(fields) ? fields.map(asString) : []] as const;
  });
}

/** XREAD's reply: RESP2 `[[key, entries], …]`, RESP3 `{ key: entries }`, or null on timeout. */
function asStreams(reply: unknown): Array<[string, Entry[]]> {
  if (reply === null || reply === undefined) return [];
  if (Array.isArray(reply)) {
    return reply.map((pair: unknown) => {
      const [key, entries] = pair as [unknown, unknown];
      return [asString(key), asEntries(entries)];
    });
  }
  return Object.entries(asRecord(reply)).map(([key, entries]) => [key, asEntries(entries)]);
}
