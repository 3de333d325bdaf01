import { createParser, type EventSourceMessage } from "eventsource-parser";
import { SseError, type SseErrorCode } from "./error";
import { iterate, type Inbox } from "./iterate";
import { resolveOptions, type Resolved } from "./options";
import { MAX_DELAY, backoff, retryAfter } from "./retry";
import type {
  EventMap,
  EventName,
  Lazy,
  SseClientEvents,
  SseClientOptions,
  SseMessage,
  SseMessageOf,
  WithReset,
} from "./types";

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 2;

type State = typeof CONNECTING | typeof OPEN | typeof CLOSED;
type Listener = Parameters<EventTarget["addEventListener"]>[1];
type ListenerOptions = Parameters<EventTarget["addEventListener"]>[2];

const lazy = <T>(value: Lazy<T>): T | Promise<T> =>
  typeof value === "function" ? (value as () => T | Promise<T>)() : value;

const noop = (): void => undefined;

const error = (
  message: string,
  code: SseErrorCode,
  fatal: boolean,
  status?: number,
  cause?: unknown,
): SseError => new SseError(message, code, fatal, status, cause);

/**
 * A Server-Sent Events client on `fetch`, for browsers and Node 20+. It connects at once (in a
 * microtask, so listeners added right after `new` see everything) and reconnects the way a
 * Sluice server expects: `Last-Event-ID` on every reconnect, the server's `retry:`, backoff with
 * jitter on failures, `Retry-After` on `503`/`429`, a stop on `204`.
 *
 * @example
 * type Events = { price: { symbol: string; price: number } };
 * const prices = new SseClient<Events>("/api/prices", { headers: { Authorization: "Bearer …" } });
 * prices.on("price", (data) => console.log(data.symbol, data.price));
 * prices.on("reset", () => reloadEverything());
 */
export class SseClient<Events extends EventMap = EventMap> extends EventTarget {
  static readonly CONNECTING = CONNECTING;
  static readonly OPEN = OPEN;
  static readonly CLOSED = CLOSED;

  /** @internal */
  private readonly _o: Resolved;
  /** @internal */
  private _state: State = CONNECTING;
  /** @internal */
  private _id: string;
  /** @internal Base reconnection delay: the `retry` option until the server sends `retry:`. */
  private _retry: number;
  /** @internal Attempts since the last one that delivered an event. */
  private _failures = 0;
  /** @internal The current attempt's controller; aborting it ends the attempt silently. */
  private _ctl: AbortController | undefined;
  /** @internal The pending reconnect. */
  private _timer: ReturnType<typeof setTimeout> | undefined;
  /** @internal The current attempt's `heartbeatTimeout` timer, while it waits for the server. */
  private _watchdog: ReturnType<typeof setTimeout> | undefined;
  /** @internal `Date.now()` when the server last sent a byte, or the request went out. */
  private _heard = 0;
  /**
   * @internal An immediate retry after `onUnauthorized` was made, and no stream has opened since.
   */
  private _reauth = false;
  /** @internal Closed because the page is hidden; reopens when it is visible. */
  private _paused = false;
  /** @internal */
  private readonly _doc: Document | undefined;
  /** @internal */
  private readonly _inboxes = new Set<Inbox>();
  /** @internal */
  private readonly _onAbort = (): void => this.close();
  /** @internal */
  private readonly _onVisibility = (): void => {
    if (this._doc!.hidden) {
      if (this._state === CLOSED || this._paused) return;
      this._paused = true;
      this._halt();
      this._state = CONNECTING;
    } else if (this._paused) {
      this._paused = false;
      this._connect();
    }
  };

  /**
   * @param url Absolute, relative to the page, or a function returning the URL (called before
   *     every connection attempt, e.g. to put a fresh token in it).
   * @throws {TypeError} naming the option, for any invalid or unknown option.
   */
  constructor(url: Lazy<string | URL>, options?: SseClientOptions) {
    super();
    const o = (this._o = resolveOptions(url, options));
    this._id = o.lastEventId;
    this._retry = o.retry;
    o.signal?.addEventListener("abort", this._onAbort);
    if (o.pauseWhenHidden) {
      this._doc = (globalThis as { document?: Document }).document;
      this._doc?.addEventListener("visibilitychange", this._onVisibility);
    }
    queueMicrotask(() => this._connect());
  }

  /** `0` connecting (or waiting to reconnect), `1` open, `2` closed for good. */
  get readyState(): State {
    return this._state;
  }

  /** The id sent as `Last-Event-ID` on the next connection (`""`: none). */
  get lastEventId(): string {
    return this._id;
  }

  /**
   * Listens to a server event: `listener` gets the parsed, typed data and the event.
   * @returns a function that removes the listener.
   */
  on<K extends EventName<Events>>(
    type: K,
    listener: (data: WithReset<Events>[K], event: SseMessage<K, WithReset<Events>[K]>) => void,
  ): () => void {
    const wrapped = (event: Event): void => {
      // Only the server's events: not the client's own `open`, `error` or `close`.
      if (event instanceof MessageEvent) listener(event.data, event as never);
    };
    this.addEventListener(type, wrapped);
    return () => this.removeEventListener(type, wrapped);
  }

  /**
   * Stops for good: aborts the request or the pending reconnect, dispatches `close`, ends every
   * `for await` loop. Safe to call more than once.
   */
  close(): void {
    this._stop();
  }

  /**
   * The server's events, in order, until the client closes (the loop ends) or stops on a fatal
   * error (the loop throws it). Events are queued for the loop while its body runs. Leaving the
   * loop early (`break`, `return`, a throw) closes the client.
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<SseMessageOf<Events>> {
    return iterate(this._state === CLOSED, this._inboxes, () => this.close());
  }

  /** @internal */
  private _connect(): void {
    this._timer = undefined;
    if (this._state === CLOSED) return;
    if (this._o.signal?.aborted) return this.close();
    if (this._doc?.hidden) {
      this._paused = true;
      return;
    }
    const ctl = (this._ctl = new AbortController());
    void this._attempt(ctl).finally(() => {
      ctl.abort(); // the attempt is over: late callbacks of its parser see an aborted signal
      if (this._ctl !== ctl) return; // a newer attempt runs already (and owns the watchdog)
      this._ctl = undefined;
      clearTimeout(this._watchdog);
    });
  }

  /** @internal One request and, if it opens, the stream it reads. */
  private async _attempt(ctl: AbortController): Promise<void> {
    const o = this._o;
    const { signal } = ctl;
    let request: Request;
    try {
      const headers = new Headers(await lazy(o.headers));
      if (!headers.has("accept")) headers.set("accept", "text/event-stream");
      if (this._id) headers.set("last-event-id", this._id);
      else headers.delete("last-event-id");
      request = new Request(await lazy(o.url), {
        cache: "no-store",
        ...o.init,
        method: o.method,
        headers,
        body: await lazy(o.body),
        signal,
      });
    } catch (cause) {
      if (!signal.aborted)
        this._stop(error(`Cannot build the request: ${cause}`, "request", true, undefined, cause));
      return;
    }
    let response: Response;
    this._watch(ctl, o.heartbeatTimeout ?? 0);
    try {
      const send = o.fetch; // unbound: browsers refuse fetch called as a method of another object
      response = await send(request);
    } catch (cause) {
      if (!signal.aborted)
        this._fail(error(`Request failed: ${cause}`, "network", false, undefined, cause));
      return;
    }
    try {
      await this._answer(response, ctl);
    } finally {
      // The attempt is over: what is left of the response is released through its body, not only
      // through fetch's signal (see _read). A body that was read is locked, and has ended.
      if (response.body?.locked === false) void response.body.cancel().catch(noop);
    }
  }

  /** @internal What the response says: a stream to read, a stop, or a retry. */
  private async _answer(response: Response, ctl: AbortController): Promise<void> {
    const { signal } = ctl;
    if (signal.aborted) return;
    // The server has answered: what follows (a stream) is watched anew, the app's onUnauthorized
    // is not the server's silence.
    clearTimeout(this._watchdog);
    const o = this._o;
    const { status } = response;
    if (status === 204) return this._stop();
    if (response.ok) {
      const type = response.headers.get("content-type") ?? "";
      if (/^text\/event-stream\s*(;|$)/i.test(type)) return this._read(response, ctl);
      return this._stop(
        error(
          `Expected text/event-stream, got ${type || "no content type"}`,
          "content-type",
          true,
          status,
        ),
      );
    }
    const message = `HTTP ${status}`;
    if (status === 401 || status === 403) {
      let again: unknown = false;
      let cause: unknown;
      try {
        again = await o.onUnauthorized?.(response);
      } catch (thrown) {
        cause = thrown;
      }
      if (signal.aborted) return;
      if (again === true) {
        // Refreshed credentials are tried at once; refused again before a stream opened, back off.
        const delay = this._reauth ? undefined : 0;
        this._reauth = true;
        return this._fail(error(message, "http", false, status), delay);
      }
      return this._stop(error(message, "http", true, status, cause));
    }
    if (status === 429 || status >= 500) {
      return this._fail(error(message, "http", false, status), undefined, retryAfter(response));
    }
    this._stop(error(message, "http", true, status));
  }

  /** @internal Reads an open stream until it ends, breaks or is aborted. */
  private async _read(response: Response, ctl: AbortController): Promise<void> {
    const { signal } = ctl;
    // Without the option, a Sluice server's heartbeat interval (its Sluice-Heartbeat header) sets
    // the watch: twice it, where a Sluice stream is never silent beyond 1.25 times it. No header
    // (or not a number): off.
    this._watch(ctl, this._o.heartbeatTimeout ?? 2 * +response.headers.get("sluice-heartbeat")!);
    this._state = OPEN;
    this._reauth = false;
    this._emit("open", { response });
    const parser = createParser({
      onEvent: (message) => signal.aborted || this._message(message),
      onRetry: (ms) => (this._retry = ms),
      onError: (parseError) => {
        if (parseError.type === "invalid-retry" && !signal.aborted) {
          this._emit("error", {
            error: error(`Ignored ${parseError.line}: not a number of ms`, "invalid-retry", false),
          });
        }
      },
    });
    const decoder = new TextDecoder();
    // The abort cancels the body itself, not only through fetch's signal: Node's fetch follows
    // a Request's signal through a weak reference, and once that Request was garbage collected
    // (it is not needed after the response arrives) an abort no longer reached the connection.
    // close() then left the socket open and this read pending forever (seen under load: the
    // server kept the subscriber, the process never exited).
    const reader = response.body!.getReader();
    const cancel = (): void => void reader.cancel(signal.reason).catch(noop);
    signal.addEventListener("abort", cancel);
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        this._heard = Date.now();
        parser.feed(decoder.decode(value, { stream: true }));
      }
    } catch (cause) {
      if (!signal.aborted)
        this._fail(error(`Stream broke: ${cause}`, "network", false, undefined, cause));
      return;
    } finally {
      signal.removeEventListener("abort", cancel);
    }
    if (signal.aborted) return;
    // A clean end. An event cut short by it is dropped, as the spec says.
    if (!this._o.reconnectOnEnd) return this._stop();
    this._schedule();
  }

  /** @internal */
  private _message(message: EventSourceMessage): void {
    if (message.id !== undefined) this._id = message.id;
    this._failures = 0;
    const type = message.event ?? "message";
    let data: unknown;
    try {
      data = this._o.parse(message.data, type);
    } catch (cause) {
      const text = `Cannot parse the data of a "${type}" event: ${cause}`;
      return this._emit("error", { error: error(text, "parse", false, undefined, cause) });
    }
    const event = new MessageEvent(type, { data, lastEventId: this._id });
    this.dispatchEvent(event);
    for (const inbox of this._inboxes) inbox(event);
  }

  /**
   * @internal
   * Starts (or restarts) the `heartbeatTimeout` watch of an attempt: when the server has sent
   * nothing for that long, the attempt is aborted and a reconnect planned. One timer per attempt,
   * re-armed for what is left of the interval after the last byte (not one timer per chunk), so a
   * dead connection is noticed `heartbeatTimeout` ms after its last byte, never up to twice that.
   */
  private _watch(ctl: AbortController, limit: number): void {
    clearTimeout(this._watchdog);
    if (!(limit > 0)) return; // 0 (off), or NaN from a header that is not a number
    this._heard = Date.now();
    const check = (): void => {
      const quiet = Date.now() - this._heard;
      if (ctl.signal.aborted) return;
      if (quiet < limit) {
        // Capped as the reconnect delays are: past 2³¹−1 ms, setTimeout would fire at once.
        this._watchdog = setTimeout(check, Math.min(limit - quiet, MAX_DELAY));
        return;
      }
      ctl.abort();
      this._fail(error(`Silent for ${quiet} ms`, "timeout", false));
    };
    check();
  }

  /** @internal A failed attempt: plan the next one (see `_schedule`), then tell listeners. */
  private _fail(failure: SseError, delay?: number, atLeast?: number): void {
    this._schedule(delay, atLeast);
    this._emit("error", { error: failure });
  }

  /**
   * @internal
   * Plans the next attempt: after `delay` if given, else after the backoff (retry.ts) or
   * `atLeast` (a `Retry-After`), whichever is longer, so that `Retry-After: 0` cannot make a
   * tight loop.
   */
  private _schedule(delay?: number, atLeast = 0): void {
    delay ??= Math.max(atLeast, backoff(++this._failures, this._retry, this._o.maxRetryDelay));
    this._state = CONNECTING;
    this._timer = setTimeout(() => this._connect(), Math.min(delay, MAX_DELAY));
  }

  /** @internal Ends the current attempt and the pending reconnect, without a word. */
  private _halt(): void {
    clearTimeout(this._timer);
    clearTimeout(this._watchdog);
    this._timer = undefined;
    this._ctl?.abort();
  }

  /** @internal */
  private _stop(failure?: SseError): void {
    if (this._state === CLOSED) return;
    this._state = CLOSED;
    this._halt();
    this._o.signal?.removeEventListener("abort", this._onAbort);
    this._doc?.removeEventListener("visibilitychange", this._onVisibility);
    if (failure) this._emit("error", { error: failure });
    this._emit("close", { error: failure });
    for (const inbox of this._inboxes) inbox(undefined, failure);
    this._inboxes.clear();
  }

  /** @internal */
  private _emit(type: string, fields: object): void {
    this.dispatchEvent(Object.assign(new Event(type), fields));
  }
}

// The typed listener overloads, merged into the class.
export interface SseClient<Events extends EventMap = EventMap> {
  addEventListener<K extends keyof SseClientEvents>(
    type: K,
    listener: (this: SseClient<Events>, event: SseClientEvents[K]) => void,
    options?: ListenerOptions,
  ): void;
  addEventListener<K extends EventName<Events>>(
    type: K,
    listener: (this: SseClient<Events>, event: SseMessage<K, WithReset<Events>[K]>) => void,
    options?: ListenerOptions,
  ): void;
  addEventListener(type: string, listener: Listener, options?: ListenerOptions): void;
  removeEventListener<K extends keyof SseClientEvents>(
    type: K,
    listener: (this: SseClient<Events>, event: SseClientEvents[K]) => void,
    options?: ListenerOptions,
  ): void;
  removeEventListener<K extends EventName<Events>>(
    type: K,
    listener: (this: SseClient<Events>, event: SseMessage<K, WithReset<Events>[K]>) => void,
    options?: ListenerOptions,
  ): void;
  removeEventListener(type: string, listener: Listener, options?: ListenerOptions): void;
}
