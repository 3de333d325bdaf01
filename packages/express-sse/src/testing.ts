/**
 * `@sluice/express-sse/testing`: open an event stream on an app, a server or a URL and collect
 * its parsed events until a count, a predicate or a time limit, then hang up. Endless streams
 * become ordinary `await`-able assertions in jest, vitest or node:test.
 *
 * @example
 * import { collectEvents } from "@sluice/express-sse/testing";
 * const { events } = await collectEvents(app, { path: "/api/time", count: 2 });
 * expect(events[0].event).toBe("time");
 */
import http, { type IncomingHttpHeaders, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { StringDecoder } from "node:string_decoder";
import { createParser, type ParsedEvent } from "./parse";

export { createParser, parseEventStream } from "./parse";
export type { ParsedEvent, Parser, ParserCallbacks } from "./parse";

export interface CollectOptions {
  /**
   * Path (and query) to request. For an app or a server: the path on it (default `"/"`). For a
   * URL: resolved against it (`collectEvents("http://host:3000", { path: "/events" })`); without
   * it, the URL is requested as it is, its own path and query included.
   */
  path?: string;
  /** Request headers, for example `{ "Last-Event-ID": "42" }`. */
  headers?: Record<string, string>;
  /** Resolve once this many events have arrived. */
  count?: number;
  /** Resolve once this returns `true` for the newest event (all events so far as second argument). */
  until?: (event: ParsedEvent, events: readonly ParsedEvent[]) => boolean;
  /**
   * Collect for this many milliseconds, then resolve with whatever arrived (for asserting that
   * something does not arrive). Without it, a stream that meets no condition before `timeout`
   * rejects.
   */
  duration?: number;
  /** Reject if no condition is met within this many milliseconds. @defaultValue 5000 */
  timeout?: number;
}

export interface CollectResult {
  status: number;
  headers: IncomingHttpHeaders;
  events: ParsedEvent[];
  comments: string[];
  /** `retry` values received, in order. */
  retries: number[];
  /** The whole body as received, for byte-exact assertions. */
  raw: string;
  /** `true` if the server ended the response (as opposed to the helper hanging up). */
  ended: boolean;
}

/** What `collectEvents` can talk to. */
export type CollectTarget = RequestListener | Server | string | URL;

/**
 * `collectEvents` rejects with this when the answer is not an event stream: a status other than
 * 200, or a 200 whose `Content-Type` is not `text/event-stream`. `result` holds the answer (its
 * status, headers and body in `raw`), so a test of a refusal asserts on it:
 *
 * @example
 * const error = await collectEvents(app, { path: "/events" }).catch((e) => e);
 * expect(error).toBeInstanceOf(NotAnEventStreamError);
 * expect(error.result.status).toBe(503);
 */
export class NotAnEventStreamError extends Error {
  readonly result: CollectResult;
  constructor(url: URL, result: CollectResult) {
    const type = result.headers["content-type"];
    const body = result.raw.length > 200 ? `${result.raw.slice(0, 200)}…` : result.raw;
    super(
      `collectEvents: GET ${url.href} answered ${result.status}` +
        `${type === undefined ? " without a Content-Type" : ` with ${type}`}, not an event stream` +
        (body === "" ? "" : `: ${JSON.stringify(body)}`),
    );
    this.name = "NotAnEventStreamError";
    this.result = result;
  }
}

const EVENT_STREAM = /^text\/event-stream\s*(;|$)/i;

/**
 * Requests `options.path` from `target` and collects events. An app or unstarted server is
 * started on `127.0.0.1:0` and closed afterwards; a listening server or a URL is used as is.
 * Resolves when `count` or `until` is met, `duration` passes, or the server ends the response;
 * rejects on `timeout` with the events received so far in the message, and with a
 * {@link NotAnEventStreamError} (once its body has arrived) when the answer is not a `200` event
 * stream.
 */
export async function collectEvents(
  target: CollectTarget,
  options: CollectOptions = {},
): Promise<CollectResult> {
  const { count, until, duration, timeout = 5000, headers = {} } = options;
  const { url, stop } = await resolveTarget(target, options.path);

  try {
    return await new Promise<CollectResult>((resolve, reject) => {
      const result: CollectResult = {
        status: 0,
        headers: {},
        events: [],
        comments: [],
        retries: [],
        raw: "",
        ended: false,
      };
      let settled = false;
      let refused = false; // the answer is not an event stream
      const finish = (err?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        if (err) reject(err);
        else resolve(result);
      };
      const parser = createParser({
        onEvent(event) {
          result.events.push(event);
          if (count !== undefined && result.events.length >= count) finish();
          else if (until !== undefined && until(event, result.events)) finish();
        },
        onComment: (text) => result.comments.push(text),
        onRetry: (ms) => result.retries.push(ms),
      });
      const timer = setTimeout(() => {
        if (refused) return finish(new NotAnEventStreamError(url, result));
        if (duration !== undefined) return finish();
        finish(
          new Error(
            `collectEvents: timed out after ${timeout} ms with ${result.events.length} event(s): ` +
              JSON.stringify(result.events).slice(0, 500),
          ),
        );
      }, duration ?? timeout);

      const req = http.get(url, { headers: { Accept: "text/event-stream", ...headers } }, (res) => {
        result.status = res.statusCode ?? 0;
        result.headers = res.headers;
        const decoder = new StringDecoder("utf8");
        // Not an event stream: read the body (capped) for the error message, parse nothing.
        refused = result.status !== 200 || !EVENT_STREAM.test(res.headers["content-type"] ?? "");
        res.on("data", (chunk: Buffer) => {
          const text = decoder.write(chunk);
          if (refused) {
            if (result.raw.length < 64 * 1024) result.raw += text;
            return;
          }
          result.raw += text;
          parser.feed(text);
        });
        res.on("end", () => {
          const rest = decoder.end();
          result.raw += rest;
          result.ended = true;
          if (refused) return finish(new NotAnEventStreamError(url, result));
          parser.feed(rest);
          finish();
        });
        res.on("error", () => finish(refused ? new NotAnEventStreamError(url, result) : undefined));
      });
      req.on("error", (err) => finish(settled ? undefined : err));
    });
  } finally {
    await stop();
  }
}

async function resolveTarget(
  target: CollectTarget,
  path: string | undefined,
): Promise<{ url: URL; stop: () => Promise<void> }> {
  if (typeof target === "string" || target instanceof URL) {
    // A URL keeps its own path unless a path is given; then the path is resolved against it.
    return { url: new URL(path ?? target, target), stop: async () => {} };
  }
  const server = typeof target === "function" ? http.createServer(target) : target;
  const owned = !server.listening;
  if (owned) {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        server.removeListener("error", reject);
        resolve();
      });
    });
  }
  const { port, family, address } = server.address() as AddressInfo;
  const host = family === "IPv6" || family === (6 as unknown) ? `[${address}]` : address;
  const url = new URL(path ?? "/", `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`);
  return {
    url,
    stop: async () => {
      if (!owned) return;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
