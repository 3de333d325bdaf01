/**
 * The client's options: checked once, in the constructor, so that a mistake throws a TypeError
 * naming the option at once instead of showing up as a reconnect loop later. No state.
 */
import type { Lazy, SseClientOptions } from "./types";

/** The options with their defaults filled in. */
export interface Resolved extends SseClientOptions {
  readonly url: Lazy<string | URL>;
  readonly method: string;
  readonly fetch: (request: Request) => Promise<Response>;
  readonly lastEventId: string;
  readonly retry: number;
  readonly maxRetryDelay: number;
  readonly parse: (data: string, type: string) => unknown;
}

const KNOWN =
  "method,headers,body,signal,init,fetch,lastEventId,retry,maxRetryDelay,heartbeatTimeout,reconnectOnEnd,pauseWhenHidden,onUnauthorized,parse".split(
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

function fail(subject: string, what: string, value: unknown): never {
  throw new TypeError(`The ${subject} must be ${what}, got ${describe(value)}`);
}

const isFunction = (value: unknown): boolean => typeof value === "function";
const isObject = (value: unknown): boolean => typeof value === "object" && value !== null;

/**
 * Checks `options` and fills in the defaults. The caller's object is not modified.
 * @throws {TypeError} naming the option (or the url) that is wrong.
 */
export function resolveOptions(url: unknown, options: SseClientOptions | undefined): Resolved {
  const o = options === undefined ? {} : options;
  if (!isObject(o)) fail("SseClient options", "an object", o);
  for (const key in o) {
    if (!KNOWN.includes(key)) throw new TypeError(`Unknown SseClient option "${key}"`);
  }
  /** The option `name` is valid when it is absent or `ok` holds for it. */
  const check = (name: keyof SseClientOptions, ok: (value: never) => unknown, what: string) => {
    const value = o[name];
    if (value !== undefined && !ok(value as never)) fail(`"${name}" option`, what, value);
  };
  if (typeof url === "string") {
    try {
      // Relative URLs resolve against the page, as fetch resolves them; Node has no page.
      new URL(url, (globalThis as { location?: { href: string } }).location?.href);
    } catch {
      fail("url", "an absolute URL (or one relative to the page)", url);
    }
  } else if (!(url instanceof URL) && !isFunction(url)) {
    fail("url", "a string, a URL or a function returning one", url);
  }
  const { body } = o;
  const method = o.method ?? (body === undefined ? "GET" : "POST");
  check("method", (m: unknown) => typeof m === "string" && m !== "", "a non-empty string");
  if (body !== undefined && /^(GET|HEAD)$/i.test(method)) {
    throw new TypeError(`The "body" option cannot be sent with ${method}: use "method": "POST"`);
  }
  if (isFunction((body as ReadableStream | null)?.getReader)) {
    throw new TypeError(
      'The "body" option cannot be a ReadableStream: it can be sent once, and every reconnect sends the body again (pass a function that returns a new body)',
    );
  }
  const whole = (ms: number) => Number.isSafeInteger(ms) && ms >= 0;
  const flag = (value: unknown) => typeof value === "boolean";
  check(
    "headers",
    (h) => isObject(h) || isFunction(h),
    "an object, a Headers, pairs or a function",
  );
  check(
    "signal",
    (s: AbortSignal) => isFunction(s.addEventListener) && flag(s.aborted),
    "an AbortSignal",
  );
  check("init", isObject, "an object");
  check("fetch", isFunction, "a function");
  check("lastEventId", (id) => typeof id === "string", "a string");
  check("retry", whole, "a non-negative integer (ms)");
  check("maxRetryDelay", whole, "a non-negative integer (ms)");
  check("heartbeatTimeout", whole, "a non-negative integer (ms)");
  check("reconnectOnEnd", flag, "true or false");
  check("pauseWhenHidden", flag, "true or false");
  check("onUnauthorized", isFunction, "a function");
  check("parse", isFunction, "a function");
  return {
    ...o,
    url: url as Lazy<string | URL>,
    method,
    fetch: o.fetch ?? ((request) => fetch(request)),
    lastEventId: o.lastEventId ?? "",
    retry: o.retry ?? 1000,
    maxRetryDelay: o.maxRetryDelay ?? 30_000,
    parse: o.parse ?? parseData,
  };
}
