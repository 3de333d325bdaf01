import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { HEARTBEAT_CHECKS_PER_INTERVAL, HEARTBEAT_COMMENT } from "./constants";
import {
  Frame,
  frameComment,
  frameEvent,
  frameRetry,
  serializedText,
  type EventFields,
} from "./frame";
import { directSocketOf, textChunkOf } from "./direct";
import {
  BUSY_BODY,
  decodeLastEventId,
  writeBusyHead,
  releaseRequestState,
  writeStreamHead,
} from "./http";
import { pipe, type PipeOptions, type PipeSource } from "./pipe";
import { describe, noop } from "./util";
import { StreamClosedError, type CloseReason } from "./close-reason";
import { closingServers, kStream, type StreamContext, type StreamOwner } from "./context";

export { StreamClosedError, type CloseReason } from "./close-reason";

/** Options of `send()`: the event's fields other than data. */
export type SendOptions = EventFields;

type CloseCallback = (reason: StreamClosedError) => void;

// States, as in ws: an integer, not a handful of booleans.
const CONNECTING = 0; // created (res.sse touched), headers not sent yet
const OPEN = 1; // headers sent, writing events
const CLOSED = 2; // done; every write is a no-op that returns false

type TaggedResponse = ServerResponse & {
  [kStream]?: SseStream | StreamContext | undefined;
  flush?: () => void;
};

const HEARTBEAT_FRAME = Frame.comment(HEARTBEAT_COMMENT);
const OPEN_FRAME = ":\n\n";

/**
 * One Server-Sent Events response: `res.sse`.
 *
 * Created lazily by the `sse()` middleware the first time a handler reads `res.sse`; nothing is
 * written and no timer starts until the first `send()`/`comment()`/`retry()`/`start()`.
 *
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html
 */
export class SseStream {
  /**
   * @internal Heartbeat checks since the last write: reset by every write, counted up by the
   * heartbeat (registry.ts), a small integer instead of a timestamp (a boxed number per stream).
   * A channel's lane writes do not reset it: `ping()` asks the lane (lane.ts).
   */
  _idle = 0;
  /** @internal This stream's slot in its owner channel's lane (lane.ts), `-1` when not in one. */
  _laneIndex = -1;
  /** @internal The lane's batch count when this stream joined it. */
  _laneMark = 0;

  /** @internal */
  private readonly _res: TaggedResponse;
  /** @internal */
  private readonly _ctx: StreamContext;
  /** @internal */
  private _state: number = CONNECTING;
  /**
   * @internal What few streams use (signal, onClose, drain) and what only a closed one has: on
   * demand.
   */
  private _extra: StreamExtras | undefined = undefined;
  /**
   * @internal
   * The socket, when frames can be handed to it directly: a plain HTTP/1.1 chunked response whose
   * `write` nobody wrapped and that has nothing pending. See `_start()`.
   */
  private _socket: Socket | undefined = undefined;
  /** @internal The first channel subscription of this stream (others use onClose). */
  _owner: StreamOwner | undefined = undefined;

  /**
   * @internal Creates the stream of `res` (the `res.sse` getter's). The constructor is private, so
   * the published types say what is true: a stream comes from the `sse()` middleware, never `new`.
   */
  static _create(res: ServerResponse, ctx: StreamContext): SseStream {
    return new SseStream(res, ctx);
  }

  private constructor(res: ServerResponse, ctx: StreamContext) {
    this._res = res;
    this._ctx = ctx;
    const tagged = res as TaggedResponse;
    tagged[kStream] = this;
    // Named module-level listeners (found through the response's tag) instead of closures: no
    // allocation per stream, and each one is removed by name on the single close path.
    res.on("close", resOnClose);
    res.on("error", resOnError);
    if (res.destroyed || res.writableEnded) this._finalize("client-disconnected");
  }

  /** `true` once the stream is closed, for whatever reason. */
  get closed(): boolean {
    return this._state === CLOSED;
  }

  /** Aborted when the stream closes; `signal.reason` is a {@link StreamClosedError}. */
  get signal(): AbortSignal {
    const extra = this._more();
    if (extra.controller === undefined) {
      // Created on first use: most streams never need one, and an AbortController costs memory.
      extra.controller = new AbortController();
      if (extra.reason !== undefined) extra.controller.abort(extra.reason);
    }
    return extra.controller.signal;
  }

  /**
   * The `Last-Event-ID` request header as sent by the client (on reconnect, the `id` of the last
   * event it received), or `undefined`. Decoded as UTF-8 (what the spec and browsers send) when
   * the bytes are valid UTF-8, else as Latin-1 (what Node's `EventSource` and `fetch` send).
   */
  get lastEventId(): string | undefined {
    // From rawHeaders, not req.headers: Node builds the headers object lazily, on first access,
    // and keeps it for the life of the request (~400 bytes per idle stream otherwise).
    const raw = this._res.req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string;
      if (name.length === 13 && name.toLowerCase() === "last-event-id") {
        return decodeLastEventId(raw[i + 1] as string);
      }
    }
    return undefined;
  }

  /** Bytes written but not yet handed to the kernel (the response's and its socket's queues). */
  get bufferedBytes(): number {
    return this._res.writableLength;
  }

  /** Why the stream closed, once it has. */
  get closeReason(): StreamClosedError | undefined {
    return this._extra?.reason;
  }

  /** The request this stream answers. */
  get request(): IncomingMessage {
    return this._res.req;
  }

  /**
   * Sends headers now instead of with the first event (so the client's `open` fires). Idempotent.
   * @throws {Error} if the response's headers were already sent by something else.
   */
  start(): this {
    if (this._state === CONNECTING) this._start();
    return this;
  }

  /**
   * Sends one event. Strings are sent as they are (split into `data:` lines on CRLF, CR and LF);
   * anything else goes through the serializer (`JSON.stringify` by default).
   *
   * @returns `false` when the client is not keeping up (wait for {@link drain}) or the stream is
   *     closed, like `stream.write()`.
   * @throws {TypeError} for an `event` or `id` with CR, LF or NUL, an `id` the client could not
   *     send back (see {@link EventFields}), or data the serializer cannot turn into a string.
   *     Nothing is written; the stream stays usable.
   * @throws {RangeError} for a `retry` that is not a non-negative safe integer.
   *
   * @example
   * res.sse.send({ progress: 42 }, { event: "progress", id: "7" });
   */
  send(data: unknown, options?: SendOptions): boolean {
    const text = typeof data === "string" ? data : this.serialize(data);
    const frame = frameEvent(text, options);
    if (this._state !== OPEN && !this._ready()) return false;
    this._ctx.stats.events++;
    return this._write(frame);
  }

  /**
   * Sends a comment (`: text`), ignored by clients. A multi-line text becomes several comment
   * lines. Useful as a manual keep-alive or for debugging with `curl -N`.
   */
  comment(text: string): boolean {
    const frame = frameComment(text);
    if (this._state === CLOSED) return false;
    return this._write(frame);
  }

  /** Tells the client to wait `ms` milliseconds before reconnecting after a disconnect. */
  retry(ms: number): boolean {
    const frame = frameRetry(ms);
    if (this._state === CLOSED) return false;
    return this._write(frame);
  }

  /**
   * Writes a frame built once with `Frame.event()` (or a `Channel`), for sending the same event to
   * many streams without serializing it again.
   */
  sendFrame(frame: Frame): boolean {
    if (!(frame instanceof Frame)) {
      throw new TypeError(`sendFrame() takes a Frame, got ${describe(frame)}`);
    }
    if (this._state !== OPEN && !this._ready()) return false;
    this._ctx.stats.events++;
    return this._write(frame);
  }

  /** Runs the serializer on `data` and checks that it returned a string. */
  serialize(data: unknown): string {
    return serializedText(this._ctx.options.serialize(data));
  }

  /**
   * Resolves `true` when the client has caught up (immediately if it is not behind), or `false`
   * when the stream closes first. Never rejects.
   *
   * @example
   * for (const row of rows) {
   *   if (!res.sse.send(row) && !(await res.sse.drain())) break; // client left
   * }
   */
  drain(): Promise<boolean> {
    if (this._state === CLOSED) return Promise.resolve(false);
    const target = this._socket ?? this._res;
    if (!target.writableNeedDrain) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const extra = this._more();
      if (extra.drainWaiters === undefined) {
        extra.drainWaiters = [];
        // A closure only for streams that wait: most never do.
        extra.drainListener ??= () => this._onDrain();
        target.on("drain", extra.drainListener);
      }
      extra.drainWaiters.push(resolve);
    });
  }

  /**
   * Sends each item of `source` as an event until it ends or the client leaves; waits for the
   * client to catch up when it falls behind. When the client leaves, the iterator's `return()`
   * runs at once, so an upstream request (an LLM token stream, a database cursor) is released.
   *
   * @returns `true` when the source was exhausted, `false` when the stream closed first. Rejects
   *     with the source's own error (after which the stream is still open).
   */
  pipe<T>(source: PipeSource<T>, options?: PipeOptions<T>): Promise<boolean> {
    return pipe(this, source, options);
  }

  /**
   * Calls `fn` once when the stream closes, with the reason. Called at once (on the next tick) if
   * it already has.
   * @returns a function that removes the callback.
   */
  onClose(fn: CloseCallback): () => void {
    if (typeof fn !== "function") {
      throw new TypeError(`onClose() takes a function, got ${describe(fn)}`);
    }
    if (this._state === CLOSED) {
      process.nextTick(fn, this._extra?.reason as StreamClosedError);
      return noop;
    }
    const extra = this._more();
    (extra.callbacks ??= []).push(fn);
    return () => {
      const list = extra.callbacks;
      if (list === undefined) return;
      const i = list.indexOf(fn);
      if (i !== -1) list.splice(i, 1);
    };
  }

  /**
   * Ends the response. Clients reconnect after their retry delay (EventSource always does; to
   * make a browser stop, answer its next request with 204). Safe to call more than once.
   */
  close(): void {
    this._end("closed");
  }

  /** @internal Ends the response with a given reason (used by shutdown and `maxLifetime`). */
  _end(type: CloseReason): void {
    if (this._state === CLOSED) return;
    if (this._state === CONNECTING && !this._res.headersSent) this._start();
    if (this._state === CLOSED) return; // _start() may have closed it (HEAD, maxConnections)
    this._finalize(type);
    this._res.end();
  }

  /**
   * @internal The heartbeat, once `_idle` says a whole interval passed without a write of this
   * stream's own. A stream in a channel's lane may have had lane writes since: then `_idle` takes
   * the lane's count instead, and the ping waits until that one says the same.
   */
  ping(): void {
    if (this._state !== OPEN) return;
    if (this._laneIndex >= 0 && this._owner?._lane !== undefined) {
      const checks = this._owner._lane.quietChecks(
        this,
        this._ctx.registry.checkInterval,
        Date.now(),
      );
      if (checks <= HEARTBEAT_CHECKS_PER_INTERVAL) {
        this._idle = checks;
        return;
      }
    }
    this._ctx.stats.heartbeats++;
    this._write(HEARTBEAT_FRAME);
  }

  /**
   * @internal Already-framed events (channel fan-out and replay); `count` events in `frame`.
   *
   * The fan-out calls this once per subscriber per batch. On the direct path it comes down to
   * `_writeDirect`, small enough that V8 inlines it, and Node's `Writable.write` with it, here
   * (checked with `perf`: apps/bench/README.md). Measured at 10,000 clients, the fan-out's own
   * JavaScript went from about 1.5 times `raw-socket`'s `for (const s of sockets) s.write(chunk)`
   * to within a few percent of it once the checks before the write were gone and the
   * `res.write()` path had moved out of the way (`_writeResponse`).
   */
  _writeEvent(frame: Frame, count = 1): boolean {
    if (this._state !== OPEN && !this._ready()) return false;
    this._ctx.stats.events += count;
    const socket = this._socket;
    return socket !== undefined
      ? this._writeDirect(socket, frame.chunk, frame.byteLength)
      : this._writeResponse(frame);
  }

  /** @internal The socket a channel's lane may write to: an open stream's on the direct path. */
  _laneSocket(): Socket | undefined {
    return this._state === OPEN ? this._socket : undefined;
  }

  /** @internal The counters a lane adds its writes to (this stream's `sse()` instance's). */
  get _laneStats(): StreamContext["stats"] {
    return this._ctx.stats;
  }

  /**
   * @internal `socket.write()` answered false, here or in a channel's lane (both counted the bytes
   * first): a destroyed socket is a lost client, whose bytes are taken back; one past
   * `maxBufferedBytes` is dropped. `false` when the stream closed.
   */
  _refused(socket: Socket, size: number): boolean {
    if (socket.destroyed) {
      this._ctx.stats.bytes -= size;
      return this._lost();
    }
    if (socket.writableLength > this._ctx.options.maxBufferedBytes) return this._overflow();
    return true;
  }

  /** @internal Writes already-framed bytes: a single write (event, comment, retry, ping). */
  _write(frame: string | Frame): boolean {
    if (this._state !== OPEN && !this._ready()) return false;
    const socket = this._socket;
    if (socket === undefined) return this._writeResponse(frame);
    if (typeof frame !== "string") return this._writeDirect(socket, frame.chunk, frame.byteLength);
    const size = Buffer.byteLength(frame);
    return this._writeDirect(socket, textChunkOf(frame, size), size);
  }

  /**
   * @internal
   * The direct path: one write of a ready-made chunk (`size` bytes of frames), instead of
   * res.write()'s four writes, cork and nextTick per call. A Frame's chunk is built once and
   * shared by every client of a broadcast.
   *
   * No read of `res` here: under Express each response has a hidden class of its own (its
   * prototype is swapped per request), so every property load on one is a V8 runtime lookup
   * (~12% of a 10,000-client broadcast). The app's own `res.end()` is seen by resOnPrefinish
   * instead, within that call. Nor a `socket.destroyed` check before the write: that getter reads
   * the socket's readable state too, one more object per client per event. A write to a
   * destroyed socket is harmless (Node refuses it without an 'error' event) and answers false, so
   * the check is on the `!ok` branch, which a live client rarely takes.
   */
  private _writeDirect(socket: Socket, chunk: Buffer | string, size: number): boolean {
    const ok = socket.write(chunk);
    this._ctx.stats.bytes += size;
    this._idle = 0;
    if (!ok) this._refused(socket, size);
    return ok;
  }

  /** @internal The `res.write()` path: compression and other wrappers, HTTP/2, HTTP/1.0. */
  private _writeResponse(frame: string | Frame): boolean {
    const res = this._res;
    if (res.writableEnded || res.destroyed) return this._lost();
    const ok = res.write(typeof frame === "string" ? frame : frame.bytes);
    if (res.flush !== undefined) res.flush(); // compression middleware: push this event out now
    this._idle = 0;
    this._ctx.stats.bytes +=
      typeof frame === "string" ? Buffer.byteLength(frame) : frame.byteLength;
    if (!ok && res.writableLength > this._ctx.options.maxBufferedBytes) return this._overflow();
    return ok;
  }

  /**
   * @internal
   * Something ended the response behind our back (res.end() by the user, a socket error not yet
   * reported). Writing now would emit 'error' on the response; treat it as a close.
   */
  private _lost(): false {
    const res = this._res;
    this._finalize(
      res.destroyed || this._socket?.destroyed === true ? "client-disconnected" : "closed",
    );
    return false;
  }

  /** @internal */
  private _overflow(): false {
    this._ctx.stats.slowClientsDropped++;
    this._finalize("max-buffered-bytes");
    this._res.destroy();
    return false;
  }

  /** @internal Starts a CONNECTING stream; `true` if it is open afterwards. */
  private _ready(): boolean {
    if (this._state === CONNECTING) this._start();
    return this._state === OPEN;
  }

  /** @internal */
  private _start(): void {
    const res = this._res;
    const req = res.req;
    const { options, registry } = this._ctx;
    if (res.headersSent) {
      throw new Error(
        "Cannot start an event stream: the response headers were already sent. " +
          "Use res.sse before anything else writes to the response.",
      );
    }
    if (registry.size >= options.maxConnections) {
      this._ctx.stats.rejected++;
      writeBusyHead(res, options.retry);
      this._finalize("max-connections");
      res.end(BUSY_BODY);
      return;
    }
    writeStreamHead(res, options);
    if (req.method === "HEAD") {
      this._finalize("head-request");
      res.end();
      return;
    }
    this._state = OPEN;
    this._ctx.stats.opened++;
    releaseRequestState(req);
    registry.add(this);
    const server = (req.socket as { server?: object } | null)?.server;
    if (server !== undefined && closingServers.has(server)) {
      // A handler that was still preparing when shutdown() ran: send it on its way at once, so
      // the client reconnects elsewhere instead of holding server.close() until the timeout.
      this._finalize("shutdown");
      res.end();
      return;
    }
    // Headers alone are not enough: some proxies (nginx over HTTP/2, some CDNs) forward a
    // response's headers only with its first body bytes, so the browser's `open` would wait for
    // the first event. The stream therefore starts with a first frame: the retry field if one is
    // configured, else an empty comment (3 bytes, ignored by every client).
    const first = options.retry !== undefined ? frameRetry(options.retry) : OPEN_FRAME;
    res.flushHeaders();
    const socket = directSocketOf(res);
    if (socket !== undefined) {
      this._socket = socket;
      res.on("prefinish", resOnPrefinish);
    }
    this._write(first);
    if (res.flush !== undefined) res.flush();
  }

  /** @internal The single close path: every listener, timer slot and waiter is released here. */
  _finalize(type: CloseReason): void {
    if (this._state === CLOSED) return;
    this._state = CLOSED;
    const res = this._res;
    res.removeListener("close", resOnClose);
    res.removeListener("error", resOnError);
    if (this._socket !== undefined) res.removeListener("prefinish", resOnPrefinish);
    this._ctx.registry.delete(this);

    const reason = new StreamClosedError(type);
    const extra = this._more();
    extra.reason = reason;
    if (extra.drainWaiters !== undefined) {
      if (extra.drainListener !== undefined) {
        (this._socket ?? res).removeListener("drain", extra.drainListener);
      }
      const waiters = extra.drainWaiters;
      extra.drainWaiters = undefined;
      for (const resolve of waiters) resolve(false);
    }
    if (extra.controller !== undefined) extra.controller.abort(reason);
    const owner = this._owner;
    if (owner !== undefined) {
      this._owner = undefined;
      try {
        owner._streamClosed(this, reason);
      } catch (err) {
        process.nextTick(rethrow, err);
      }
    }
    const callbacks = extra.callbacks;
    extra.callbacks = undefined;
    if (callbacks !== undefined) {
      for (const fn of callbacks) {
        try {
          fn(reason);
        } catch (err) {
          // Run every callback, then surface the error as an uncaught exception, as an
          // EventEmitter listener's would: never swallowed.
          process.nextTick(rethrow, err);
        }
      }
    }
  }

  /** @internal The stream's rarely used state, created on first use. */
  private _more(): StreamExtras {
    return (this._extra ??= new StreamExtras());
  }

  /** @internal Resolves the drain() waiters. */
  private _onDrain(): void {
    const extra = this._extra;
    const waiters = extra?.drainWaiters;
    if (extra === undefined || waiters === undefined) return;
    extra.drainWaiters = undefined;
    if (extra.drainListener !== undefined) {
      (this._socket ?? this._res).removeListener("drain", extra.drainListener);
    }
    for (const resolve of waiters) resolve(true);
  }
}

/** The part of a stream's state that most streams never need (see `SseStream#_extra`). */
class StreamExtras {
  reason: StreamClosedError | undefined = undefined;
  controller: AbortController | undefined = undefined;
  callbacks: CloseCallback[] | undefined = undefined;
  drainWaiters: Array<(drained: boolean) => void> | undefined = undefined;
  drainListener: (() => void) | undefined = undefined;
}

function resOnClose(this: TaggedResponse): void {
  const stream = this[kStream];
  if (stream instanceof SseStream) stream._finalize("client-disconnected");
}

/**
 * The app ended a direct-path response itself (`res.end()`): Node emits 'prefinish' within that
 * call when nothing is queued in the response, which the direct path guarantees. From then on
 * the stream must not write to the socket (the connection may carry the next response).
 */
function resOnPrefinish(this: TaggedResponse): void {
  const stream = this[kStream];
  if (stream instanceof SseStream) stream._finalize("closed");
}

function resOnError(this: TaggedResponse): void {
  // Socket errors (ECONNRESET, EPIPE) mean the client is gone; 'close' follows. Handling 'error'
  // here keeps one dead client from becoming an uncaught exception.
  const stream = this[kStream];
  if (stream instanceof SseStream) stream._finalize("client-disconnected");
}

function rethrow(err: unknown): never {
  throw err;
}
