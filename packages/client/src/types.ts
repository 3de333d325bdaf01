/**
 * The client's public types. Only names that both a browser (`lib: ["dom"]`) and a Node-only
 * project (`types: ["node"]`) declare are used here, so the declarations type-check in both.
 */
import type { SseError } from "./error";

/**
 * Event name → data type: the same shape as `EventMap` of `@sluice/express-sse`, so the map a
 * `Channel<Events>` uses on the server types the client too. `Record<string, unknown>` (the
 * default) allows any event.
 */
export type EventMap = Record<string, unknown>;

/**
 * The data of a Sluice `event: reset`: the server could not resume from the client's last event
 * id (`unknown`: it never had it; `too-old`: its history no longer reaches back that far), so the
 * client missed events and should reload its state. The same shape as `ResetData` of
 * `@sluice/express-sse`.
 */
export interface ResetData {
  reason: "unknown" | "too-old";
  /** Oldest id the server still holds, or `null` when it holds none. */
  oldestId: string | null;
  /** Newest id: also the reset event's own id, so the client resumes after it. */
  newestId: string | null;
}

/** The events a client knows: the server's map, and Sluice's `reset`. */
export type WithReset<Events extends EventMap> = Events & { reset: ResetData };

/** Names of a client's server events. */
export type EventName<Events extends EventMap> = keyof WithReset<Events> & string;

/**
 * One event from the server, as listeners and `for await` get it. At run time a `MessageEvent`
 * (`instanceof MessageEvent` is `true`), with `data` already parsed.
 */
export interface SseMessage<K extends string = string, T = unknown> extends Event {
  /** The event name: the `event:` field, or `"message"` without one. */
  readonly type: K;
  /** The data, parsed once by the `parse` option (JSON, or the text when it is not JSON). */
  readonly data: T;
  /** The client's last event id once this event arrived (kept from earlier events if it had none). */
  readonly lastEventId: string;
}

/** Any event of a map: `switch (event.type)` narrows `event.data`. */
export type SseMessageOf<Events extends EventMap> = {
  [K in EventName<Events>]: SseMessage<K, WithReset<Events>[K]>;
}[EventName<Events>];

/** `open`: a response with `200` and `text/event-stream` arrived. */
export interface SseOpenEvent extends Event {
  readonly type: "open";
  /** The response; its body is being read by the client. */
  readonly response: Response;
}

/** `error`: see {@link SseError}; `error.fatal` tells whether the client stopped. */
export interface SseErrorEvent extends Event {
  readonly type: "error";
  readonly error: SseError;
}

/** `close`: the client stopped for good (once per client). */
export interface SseCloseEvent extends Event {
  readonly type: "close";
  /** Why, when it stopped on an error; `undefined` after `close()`, an abort, a `204` or an end. */
  readonly error: SseError | undefined;
}

/** The client's own events, beside the server's. */
export interface SseClientEvents {
  open: SseOpenEvent;
  error: SseErrorEvent;
  close: SseCloseEvent;
}

/** A value, or a function that gives it (called once per connection attempt, may be async). */
export type Lazy<T> = T | (() => T | Promise<T>);

/** Fields of `RequestInit` that the client passes through as they are. */
export type RequestExtras = Omit<RequestInit, "method" | "headers" | "body" | "signal">;

/** Options of {@link SseClient}. Every one is optional. */
export interface SseClientOptions {
  /** The HTTP method. @defaultValue `"POST"` with a `body`, else `"GET"` */
  method?: string;
  /**
   * Request headers, or a function that returns them (called before every connection attempt,
   * so a refreshed token is used on the next reconnect). `Accept: text/event-stream` is added
   * unless set; `Last-Event-ID` is managed by the client.
   */
  headers?: Lazy<RequestInit["headers"]>;
  /**
   * The request body, sent again on every reconnect: a string, `Blob`, `FormData`,
   * `URLSearchParams` or buffer, or a function returning a new body for each attempt. A
   * `ReadableStream` can be sent once only, so it is refused.
   */
  body?: Lazy<RequestInit["body"]>;
  /** Aborting it closes the client, as `close()` does. */
  signal?: AbortSignal;
  /** Other `fetch` options (`credentials`, `mode`, `referrerPolicy`, …), passed as they are. */
  init?: RequestExtras;
  /** The `fetch` to use (called with a `Request`). @defaultValue `globalThis.fetch` */
  fetch?: (request: Request) => Promise<Response>;
  /** `Last-Event-ID` of the first request (an id stored from an earlier session). */
  lastEventId?: string;
  /**
   * Reconnection delay in ms until the server sends a `retry:` field, which then replaces it.
   * The base of the backoff. @defaultValue 1000
   */
  retry?: number;
  /** Longest backoff delay in ms (a larger `retry:` from the server still wins). @defaultValue 30000 */
  maxRetryDelay?: number;
  /**
   * Milliseconds without a byte from the server (an event, a comment, a heartbeat ping), counted
   * from the request, after which the connection is presumed dead: the client drops it and
   * reconnects with `Last-Event-ID`, dispatching a non-fatal `timeout` error. For the connections
   * that die without a word (a laptop that slept, a network change, a proxy that lost the
   * upstream), which otherwise stay "open" until the operating system gives up, minutes later.
   *
   * Unset, a Sluice server sets it: its `Sluice-Heartbeat` response header gives its heartbeat
   * interval, and the client watches for twice that once the stream is open (a Sluice stream is
   * never silent beyond 1.25 times it): 30 s with Sluice's default 15 s heartbeat. A server that
   * sends no such header is not watched, since the client cannot know whether it sends
   * heartbeats. `0` turns the watch off; any other value is used as it is, from the request on.
   * @defaultValue twice the server's `Sluice-Heartbeat`, or off without one
   */
  heartbeatTimeout?: number;
  /**
   * Reconnect (with `Last-Event-ID`) when the server ends the stream cleanly. Off by default: a
   * finished response (an answer streamed to a `POST`) is not requested again. Turn it on for
   * endless feeds whose server ends streams on purpose (Sluice's `maxLifetime`, `shutdown()`).
   * @defaultValue false
   */
  reconnectOnEnd?: boolean;
  /**
   * In a browser, close the connection while the page is hidden (no reconnects either) and
   * reopen it with `Last-Event-ID` when it is visible again. Mind that a request with a body is
   * sent again then. @defaultValue false
   */
  pauseWhenHidden?: boolean;
  /**
   * Called on `401` or `403`. Resolve `true` to try again (refresh the credentials that the
   * `headers` or `url` function returns first): the first retry is immediate, further ones back
   * off. Anything else stops the client with a fatal error. Without it, `401` and `403` are fatal.
   */
  onUnauthorized?: (response: Response) => boolean | void | Promise<boolean | void>;
  /**
   * Turns event data into the value listeners get; called once per event, with the event name.
   * A throw skips the event and dispatches a non-fatal `parse` error.
   * @defaultValue JSON when the data parses as JSON, else the text as it is
   */
  parse?: (data: string, type: string) => unknown;
}
