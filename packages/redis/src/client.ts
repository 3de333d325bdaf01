/**
 * The connection layer. The files that know the Redis client library (node-redis, the `redis`
 * package, v5 or v6; a Redis Cluster through its cluster client, v6) are this one,
 * connections.ts and cluster-subscriber.ts (its slot map and node options), and endpoint.ts reads
 * a client's options. Pub/sub does not go through it (pubsub-connection.ts says why). Everything
 * else deals in `Connection#send` and plain values.
 *
 * `Connection` owns the lifecycle of one command client, standalone or cluster: created by the
 * adapter (connected, reconnected with our backoff, closed) or lent by the user (never connected,
 * closed or listened to). Commands go through `sendCommand` with raw arguments and the default
 * type mapping, so replies have the same shape whatever the client's RESP version or
 * `typeMapping`, and node-redis's `keyPrefix` does not apply (the adapter's `prefix` names keys).
 */
import { backoffDelay, type BackoffOptions } from "./backoff";
import { answerWithin } from "./replies";

/**
 * A node-redis client, as far as this adapter uses it: `createClient()` from `redis` v5 or v6.
 * Typed structurally so that clients of either version, with any modules, scripts or RESP
 * version, are accepted.
 */
export interface NodeRedisClient {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  /** node-redis's resolved options (a URL already parsed into `socket`, `username`, …). */
  readonly options?: object | undefined;
  sendCommand(args: readonly string[], options?: object): Promise<unknown>;
  duplicate(overrides?: object): NodeRedisClient;
  connect(): Promise<unknown>;
  destroy(): void;
  close?(): Promise<void>;
  on(event: string, listener: (...args: any[]) => void): unknown;
  off(event: string, listener: (...args: any[]) => void): unknown;
}

/** A node-redis cluster client: `createCluster()` from `redis` v6. */
export interface NodeRedisCluster {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  sendCommand(
    firstKey: string | undefined,
    isReadonly: boolean | undefined,
    args: string[],
    options?: object,
  ): Promise<unknown>;
  duplicate(overrides?: object): NodeRedisCluster;
  nodeClient(node: object): unknown;
  connect(): Promise<unknown>;
  destroy(): void;
  close?(): Promise<void>;
  on(event: string, listener: (...args: any[]) => void): unknown;
  off(event: string, listener: (...args: any[]) => void): unknown;
}

/** Either kind of client. */
export type AnyRedisClient = NodeRedisClient | NodeRedisCluster;

/** Whether `client` is a cluster client (it routes commands by key). */
export function isCluster(client: AnyRedisClient): client is NodeRedisCluster {
  return typeof (client as { nodeClient?: unknown }).nodeClient === "function";
}

/** The client name of the pub/sub connection (`CLIENT LIST` shows it). */
export const SUBSCRIBER_NAME = "sluice-sub";
/** The client name of the command connection the adapter creates. */
export const COMMANDS_NAME = "sluice";

/**
 * Options of every command: the library's default type mapping, whatever the client was
 * configured with, and no node-redis command timeout. node-redis 6 gives every command one (5 s
 * unless configured) as an `AbortSignal.timeout`, whose timer lives for the whole timeout even
 * after the reply came: at 2,000 publishes a second that is 10,000 timers, signals and weak
 * references alive at any time, moved by every young-generation collection (measured: pauses of
 * 6-10 ms in the publishing process every half second, each delaying the events just published).
 * The adapter's own deadline (`answerWithin`, one timer cleared with the reply) bounds each
 * command instead.
 */
export const RAW = Object.freeze({ typeMapping: Object.freeze({}), timeout: undefined });

/** Callbacks of one connection; `Connection#release` removes them. */
export interface ConnectionEvents {
  /** The connection is (again) ready for commands. */
  onReady(): void;
  /** A connection error (a reconnect attempt that failed, a socket that died). */
  onError(error: Error): void;
}

/** node-redis's `socket.reconnectStrategy`: ms before the next attempt, or an Error to stop. */
export type ReconnectStrategy = (retries: number) => number | Error;

/** Creates a client that reconnects with `strategy`. */
export type ClientFactory<C = AnyRedisClient> = (strategy: ReconnectStrategy) => C;

/** Longest a release waits for a connection attempt in progress (node-redis's connectTimeout is 5 s). */
const ATTEMPT_WAIT_MS = 6000;
/** How often a user's client that is not ready is checked, while the adapter waits for it. */
const READY_POLL_MS = 25;

/**
 * One command client, standalone or cluster, and its lifecycle. Wraps either a client the adapter
 * created ({@link Connection.owned}) or the user's own ({@link Connection.borrowed}).
 */
export class Connection {
  readonly client: AnyRedisClient;
  readonly cluster: boolean;
  /** Commands without an answer after this many ms fail with a `NoAnswerError` (`send`). */
  timeout = 5000;
  /** @internal */
  private readonly _emitter: Emitter;
  /** @internal */
  private readonly _owned: boolean;
  /** @internal */
  private readonly _onReady: () => void;
  /** @internal */
  private readonly _onError: (error: unknown) => void;
  /** @internal */
  private readonly _onReconnecting: () => void;
  /** @internal */
  private _poll: NodeJS.Timeout | undefined = undefined;
  /** @internal */
  private _attempting = false;
  /** @internal */
  private _released = false;

  /** A client the adapter creates with `factory`, reconnecting with `backoff`, and closes. */
  static owned(factory: ClientFactory, backoff: BackoffOptions, events: ConnectionEvents) {
    let connection: Connection | undefined;
    // Once released, a failed attempt stops the client instead of retrying.
    const strategy = ownedStrategy(() => connection?._released === true, backoff);
    connection = new Connection(factory(strategy), true, events);
    return connection;
  }

  /**
   * The user's client: never connected, closed or listened to here. Its readiness is checked with
   * `watch()` instead of a 'ready' listener: removing a listener from node-redis's client object
   * can cut off the user's own listeners (see `emitterOf`), and a listener left behind would
   * outlive the adapter. `onError` is never called: its errors are the user's.
   */
  static borrowed(client: AnyRedisClient, events: ConnectionEvents): Connection {
    return new Connection(client, false, events);
  }

  private constructor(client: AnyRedisClient, owned: boolean, events: ConnectionEvents) {
    this.client = client;
    this.cluster = isCluster(client);
    this._emitter = emitterOf(client);
    this._owned = owned;
    this._onReady = () => {
      this._attempting = false;
      events.onReady();
    };
    this._onError = (error: unknown) => {
      this._attempting = false;
      events.onError(error instanceof Error ? error : new Error(String(error)));
    };
    this._onReconnecting = () => (this._attempting = true);
    if (!owned) return;
    // node-redis emits 'error' for every failed reconnect attempt, and an 'error' event without a
    // listener would crash the process. A cluster client says 'connect' once its slots are known.
    this._emitter.on(this.cluster ? "connect" : "ready", this._onReady);
    this._emitter.on("error", this._onError);
    this._emitter.on("reconnecting", this._onReconnecting);
  }

  /** Calls `onReady` once the connection is ready, if it is not now (see `borrowed`). */
  watch(): void {
    if (this._owned || this._released || this._poll !== undefined || this.client.isReady) return;
    this._poll = setInterval(() => {
      if (!this.client.isReady) return;
      clearInterval(this._poll);
      this._poll = undefined;
      this._onReady();
    }, READY_POLL_MS);
  }

  /** Ready for commands now. */
  get ready(): boolean {
    return this.client.isReady;
  }

  /** Connects a client this adapter created; retries by itself until connected or released. */
  async connect(): Promise<void> {
    if (!this._owned || this.client.isOpen) return;
    this._attempting = true;
    await this.client.connect();
  }

  /** Sends one command; on a cluster, routed by `key` (the node serving its slot). */
  send(
    key: string | undefined,
    args: readonly string[],
    timeout: number = this.timeout,
  ): Promise<unknown> {
    const reply = this.cluster
      ? (this.client as NodeRedisCluster).sendCommand(key, false, [...args], RAW)
      : (this.client as NodeRedisClient).sendCommand(args, RAW);
    return answerWithin(reply, timeout);
  }

  /**
   * Removes this wrapper's listeners and, for a client the adapter created, closes it: gracefully
   * (pending replies first, at most `graceMs`) when it is connected and `graceMs > 0`, at once
   * otherwise. A user's client is left open and untouched.
   */
  async release(graceMs: number): Promise<void> {
    if (this._released) return;
    this._released = true;
    clearInterval(this._poll);
    this._poll = undefined;
    if (!this._owned) return;
    await releaseClient(this.client, this._emitter, this._attempting, graceMs, [
      [this.cluster ? "connect" : "ready", this._onReady],
      ["error", this._onError],
      ["reconnecting", this._onReconnecting],
    ]);
  }
}

/** Our backoff, or an Error that stops the client once `released()` says so. */
export function ownedStrategy(released: () => boolean, backoff: BackoffOptions): ReconnectStrategy {
  return (retries) => (released() ? new Error("released") : backoffDelay(retries, backoff));
}

/**
 * Closes a client the adapter created. node-redis cannot abort a connection attempt in progress
 * (a client destroyed then still finishes connecting, and keeps that socket), so a client caught
 * mid-attempt is waited for (bounded), then closed either way.
 */
export async function releaseClient(
  client: AnyRedisClient,
  emitter: Emitter,
  attempting: boolean,
  graceMs: number,
  listeners: ReadonlyArray<readonly [string, (...args: any[]) => void]>,
): Promise<void> {
  // A late socket error on a client we dropped must not become an unhandled 'error' event.
  // (Added before the others go, so that the client's listener count never drops to zero.)
  emitter.on("error", ignoreLateError);
  for (const [event, listener] of listeners) emitter.off(event, listener);
  if (attempting && !client.isReady) await attemptEnded(emitter);
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

/** Resolves when a connection attempt in progress ends: connected, failed, or after a bound. */
function attemptEnded(emitter: Emitter): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      emitter.off("ready", done);
      emitter.off("connect", done);
      emitter.off("error", done);
      resolve();
    };
    const timer = setTimeout(done, ATTEMPT_WAIT_MS);
    emitter.on("ready", done);
    emitter.on("connect", done);
    emitter.on("error", done);
  });
}

export type Emitter = Pick<NodeRedisClient, "on" | "off">;

/**
 * The object a node-redis client emits its events on. `createClient()` and `duplicate()` return
 * `Object.create(client)`, a thin object whose prototype (`_self`) is the client that emits.
 * Listeners added through the thin object land in the client's listener table, but each object
 * keeps its own listener count, and EventEmitter replaces an object's table with an empty one
 * when its count drops to zero: remove the last listener through one of them and listeners added
 * through the other are silently dropped or never called. So the adapter adds and removes only
 * on `_self`, only on clients it created, and never touches a user's client's listeners.
 */
export function emitterOf(client: AnyRedisClient): Emitter {
  const self = (client as { _self?: unknown })._self;
  return self !== null && typeof self === "object" && typeof (self as Emitter).on === "function"
    ? (self as Emitter)
    : client;
}

function ignoreLateError(): void {}
