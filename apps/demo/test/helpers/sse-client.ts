/**
 * Minimal event-stream clients for the nginx tests: HTTP/1.1 (node:http, optionally asking for
 * gzip) and HTTP/2 over TLS (node:http2). Each parsed event is stamped with the time it arrived,
 * so a test can measure publish-to-receipt latency, and `waitFor` waits for one with a bound.
 */
import http, { type IncomingHttpHeaders } from "node:http";
import http2 from "node:http2";
import { performance } from "node:perf_hooks";
import type { Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import zlib from "node:zlib";
import { createParser, type ParsedEvent } from "@sluice/express-sse/testing";

export interface TimedEvent extends ParsedEvent {
  /** `performance.now()` when the event was parsed. */
  at: number;
}

export interface StreamResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** "1.1" for node:http, "h2" for node:http2 (the ALPN protocol nginx agreed to). */
  protocol: string;
}

export interface StreamClient {
  /** Resolves with the status and headers once they arrive (they may be held back too). */
  response: Promise<StreamResponse>;
  events: TimedEvent[];
  /** Body bytes received, as sent on the wire (compressed, if the response is). */
  wireBytes(): number;
  /** Resolves with the first event (already received or to come) matching `match`, or `undefined` after `timeoutMs`. */
  waitFor(
    match: (event: TimedEvent) => boolean,
    timeoutMs: number,
  ): Promise<TimedEvent | undefined>;
  close(): void;
}

function createClient(): {
  client: Omit<StreamClient, "response" | "close">;
  feedText: (text: string) => void;
  countWire: (n: number) => void;
  fail: (err: Error) => void;
} {
  const events: TimedEvent[] = [];
  const waiters = new Set<() => void>();
  let wire = 0;
  let error: Error | undefined;
  const parser = createParser({
    onEvent: (event) => {
      events.push({ ...event, at: performance.now() });
      for (const wake of [...waiters]) wake();
    },
  });
  const waitFor = (
    match: (event: TimedEvent) => boolean,
    timeoutMs: number,
  ): Promise<TimedEvent | undefined> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        if (error !== undefined) {
          cleanup();
          reject(error);
          return true;
        }
        const found = events.find(match);
        if (found === undefined) return false;
        cleanup();
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        cleanup();
        resolve(undefined);
      }, timeoutMs);
      const wake = (): void => void check();
      const cleanup = (): void => {
        clearTimeout(timer);
        waiters.delete(wake);
      };
      waiters.add(wake);
      check();
    });
  return {
    client: { events, wireBytes: () => wire, waitFor },
    feedText: (text) => parser.feed(text),
    countWire: (n) => {
      wire += n;
    },
    fail: (err) => {
      error = err;
      for (const wake of [...waiters]) wake();
    },
  };
}

/**
 * Counts `body`'s bytes as they arrive and feeds its text to the parser, through an incremental
 * gunzip if it is gzip-encoded (whatever each sync flush makes available is parsed at once).
 */
function readBody(
  body: Readable,
  contentEncoding: string | string[] | undefined,
  feedText: (text: string) => void,
  countWire: (n: number) => void,
): void {
  const decoder = new StringDecoder("utf8");
  body.on("data", (chunk: Buffer) => countWire(chunk.length));
  if (contentEncoding === "gzip") {
    const gunzip = zlib.createGunzip({ flush: zlib.constants.Z_SYNC_FLUSH });
    gunzip.on("data", (chunk: Buffer) => feedText(decoder.write(chunk)));
    gunzip.on("error", () => undefined); // a stream cut mid-member on close
    body.pipe(gunzip);
  } else {
    body.on("data", (chunk: Buffer) => feedText(decoder.write(chunk)));
  }
}

/**
 * GET `path` over HTTP/1.1 on 127.0.0.1:`port`; with `gzip`, asks for `Accept-Encoding: gzip`.
 */
export function openHttp1(
  port: number,
  path: string,
  options: { gzip?: boolean; headers?: Record<string, string> } = {},
): StreamClient {
  const { client, feedText, countWire, fail } = createClient();
  let req: http.ClientRequest | undefined;
  const response = new Promise<StreamResponse>((resolve, reject) => {
    req = http.get(
      {
        host: "127.0.0.1",
        port,
        path,
        agent: false,
        headers: {
          Accept: "text/event-stream",
          ...(options.gzip === true ? { "Accept-Encoding": "gzip" } : {}),
          ...options.headers,
        },
      },
      (res) => {
        readBody(res, res.headers["content-encoding"], feedText, countWire);
        res.on("error", () => undefined);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, protocol: "1.1" });
      },
    );
    req.on("error", (err) => {
      reject(err);
      fail(err);
    });
  });
  response.catch(() => undefined); // also reported through waitFor
  return { ...client, response, close: () => req?.destroy() };
}

/** GET `path` over HTTP/2 with TLS (self-signed certificate accepted) on 127.0.0.1:`port`. */
export function openHttp2(
  port: number,
  path: string,
  options: { gzip?: boolean; headers?: Record<string, string> } = {},
): StreamClient {
  const { client, feedText, countWire, fail } = createClient();
  const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
  session.on("error", fail);
  const stream = session.request({
    ":method": "GET",
    ":path": path,
    accept: "text/event-stream",
    ...(options.gzip === true ? { "accept-encoding": "gzip" } : {}),
    ...options.headers,
  });
  const response = new Promise<StreamResponse>((resolve, reject) => {
    stream.on("response", (headers) => {
      const { ":status": status, ...rest } = headers;
      // Wire the body up before any of it can be emitted (it may come in the same read).
      readBody(stream, headers["content-encoding"], feedText, countWire);
      resolve({
        status: Number(status),
        headers: rest as IncomingHttpHeaders,
        protocol: session.alpnProtocol ?? "",
      });
    });
    stream.on("error", (err) => {
      reject(err);
      fail(err);
    });
    session.on("error", reject);
  });
  response.catch(() => undefined);
  return {
    ...client,
    response,
    close: () => {
      stream.close();
      session.destroy();
    },
  };
}

/** Sends a plain request over HTTP/1.1 and resolves with the status, headers and (decoded) body. */
export function request(
  port: number,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string; wireBytes: number }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: options.method ?? "GET",
        agent: false,
        headers: options.headers,
        timeout: 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const raw = Buffer.concat(chunks);
          const body = res.headers["content-encoding"] === "gzip" ? zlib.gunzipSync(raw) : raw;
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: body.toString("utf8"),
            wireBytes: raw.length,
          });
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${path}: no answer within 5000 ms`)));
    req.on("error", reject);
    req.end(options.body);
  });
}
