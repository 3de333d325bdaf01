/**
 * The client's options: checked once, in the constructor, so that a mistake throws a TypeError
 * naming the option at once instead of showing up as a reconnect loop later. No state.
 */
import type { Lazy, SseClientOptions } from "./types";

export interface Resolved {
  readonly url: Lazy<string | URL>;
  readonly method: string;
  readonly headers: Lazy<RequestInit["headers"]> | undefined;
  readonly body: Lazy<RequestInit["body"]> | undefined;
  readonly signal: AbortSignal | undefined;
  readonly init: SseClientOptions["init"];
  readonly fetch: (request: Request) => Promise<Response>;
  readonly lastEventId: string;
  readonly retry: number;
  readonly maxRetryDelay: number;
  readonly reconnectOnEnd: boolean;
  readonly pauseWhenHidden: boolean;
  readonly onUnauthorized: SseClientOptions["onUnauthorized"];
  readonly parse: (data: string, type: string) => unknown;
}

const KNOWN =
  "method,headers,body,signal,init,fetch,lastEventId,retry,maxRetryDelay,reconnectOnEnd,pauseWhenHidden,onUnauthorized,parse".split(
    ",",
  );

/** JSON when the data is JSON, else the text itself (Sluice sends strings as they are). */
const parseData = (data: string): unknown => {
  try {
    return JSON.parse(data);
  } catch {
    return data;
  }
};

const describe = (value: unknown): string =>
  typeof value === "string" ? JSON.stringify(value) : value === null ? "null" : typeof value;

function fail(name: string, what: string, value: unknown): never {
  throw new TypeError(`The "${name}" option must be ${what}, got ${describe(value)}`);
}

/** `value` when it is `undefined` or passes `ok`, else a TypeError naming the option. */
function check<T>(name: string, value: T, ok: boolean, what: string): T {
  if (value !== undefined && !ok) fail(name, what, value);
  return value;
}

function ms(name: string, value: number | undefined, fallback: number): number {
  check(
    name,
    value,
    Number.isSafeInteger(value) && (value as number) >= 0,
    "a non-negative integer (ms)",
  );
  return value ?? fallback;
}

const isFunction = (value: unknown): boolean => typeof value === "function";
const isObject = (value: unknown): boolean => typeof value === "object" && value !== null;

export function resolveOptions(url: unknown, options: SseClientOptions | undefined): Resolved {
  if (options === undefined) options = {};
  if (!isObject(options)) {
    throw new TypeError(`SseClient options must be an object, got ${describe(options)}`);
  }
  for (const key in options) {
    if (!KNOWN.includes(key)) throw new TypeError(`Unknown SseClient option "${key}"`);
  }
  if (typeof url === "string") {
    try {
      // Relative URLs resolve against the page, as fetch resolves them; there is no page in Node.
      new URL(url, (globalThis as { location?: { href: string } }).location?.href);
    } catch {
      fail("url", "an absolute URL (or one relative to the page)", url);
    }
  } else if (!(url instanceof URL) && !isFunction(url)) {
    fail("url", "a string, a URL or a function returning one", url);
  }
  const o = options;
  const { body } = o;
  const method = o.method ?? (body === undefined ? "GET" : "POST");
  check("method", method, typeof method === "string" && method !== "", "a non-empty string");
  if (body !== undefined && /^(GET|HEAD)$/i.test(method)) {
    throw new TypeError(`The "body" option cannot be sent with ${method}: use "method": "POST"`);
  }
  if (isFunction((body as ReadableStream | null)?.getReader)) {
    throw new TypeError(
      'The "body" option cannot be a ReadableStream: it can be sent once, and every reconnect sends the body again (pass a function that returns a new body)',
    );
  }
  check(
    "headers",
    o.headers,
    isObject(o.headers) || isFunction(o.headers),
    "an object, a Headers, an array of pairs or a function",
  );
  check(
    "signal",
    o.signal,
    isFunction(o.signal?.addEventListener) && typeof o.signal?.aborted === "boolean",
    "an AbortSignal",
  );
  check("init", o.init, isObject(o.init), "an object");
  check("fetch", o.fetch, isFunction(o.fetch), "a function");
  check("lastEventId", o.lastEventId, typeof o.lastEventId === "string", "a string");
  check("reconnectOnEnd", o.reconnectOnEnd, typeof o.reconnectOnEnd === "boolean", "true or false");
  check(
    "pauseWhenHidden",
    o.pauseWhenHidden,
    typeof o.pauseWhenHidden === "boolean",
    "true or false",
  );
  check("onUnauthorized", o.onUnauthorized, isFunction(o.onUnauthorized), "a function");
  check("parse", o.parse, isFunction(o.parse), "a function");
  return {
    url: url as Lazy<string | URL>,
    method,
    headers: o.headers,
    body,
    signal: o.signal,
    init: o.init,
    // Called as a plain function: browsers refuse `fetch` called as a method of another object.
    fetch: o.fetch ?? ((request) => fetch(request)),
    lastEventId: o.lastEventId ?? "",
    retry: ms("retry", o.retry, 1000),
    maxRetryDelay: ms("maxRetryDelay", o.maxRetryDelay, 30_000),
    reconnectOnEnd: o.reconnectOnEnd === true,
    pauseWhenHidden: o.pauseWhenHidden === true,
    onUnauthorized: o.onUnauthorized,
    parse: o.parse ?? parseData,
  };
}
