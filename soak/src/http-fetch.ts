/**
 * A `fetch` for the `eventsource` client (its `fetch` option) built on `node:http`, so that a
 * test owns every connection an EventSource makes: it can cut the current one from the client
 * side (as a lost network would), send each (re)connection to a server of its choice, and knows
 * that nothing stays pooled once the source is closed (`agent: false`, one socket per request).
 *
 * Everything else — parsing, `retry`, reconnecting, `Last-Event-ID` — is the eventsource
 * package's own behaviour: this only carries bytes.
 */
import http from "node:http";
import { ReadableStream, type ReadableStreamDefaultController } from "node:stream/web";
import type { FetchLike, FetchLikeResponse } from "eventsource";

export interface HttpLink {
  /** Pass as `new EventSource(url, { fetch: link.fetch })`. */
  readonly fetch: FetchLike;
  /** Whether a response is being streamed now. */
  readonly connected: boolean;
  /** Connections made (the first one and every reconnection). */
  readonly connections: number;
  /** Cuts the current connection from the client side; `false` if there was none. */
  drop(): boolean;
}

/**
 * @param route picks the URL of each connection from the EventSource's own (default: as is),
 *     e.g. to spread reconnections over several servers.
 */
export function httpLink(route: (url: string) => string = (url) => url): HttpLink {
  let current: http.ClientRequest | undefined;
  let streaming = false;
  let connections = 0;

  const fetch = ((
    input: string | URL,
    init: { headers: Record<string, string>; signal?: unknown },
  ) =>
    new Promise<FetchLikeResponse>((resolve, reject) => {
      const url = route(String(input));
      const signal = init.signal as AbortSignal | undefined;
      if (signal?.aborted) {
        reject(new DOMException("The operation was aborted", "AbortError"));
        return;
      }
      connections++;
      const req = http.get(url, { headers: init.headers, agent: false });
      current = req;
      let body: ReadableStreamDefaultController<Uint8Array> | undefined;
      let finished = false; // the body stream was closed or errored (or cancelled by the reader)
      const onAbort = () =>
        req.destroy(new DOMException("The operation was aborted", "AbortError"));
      signal?.addEventListener("abort", onAbort, { once: true });
      const done = () => {
        signal?.removeEventListener("abort", onAbort);
        if (current === req) {
          current = undefined;
          streaming = false;
        }
      };
      req.on("error", (err) => {
        done();
        reject(err); // ignored once resolved; the body stream carries the failure then
      });
      req.on("close", done);
      req.on("response", (res) => {
        streaming = true;
        res.on("error", () => undefined); // 'aborted'/ECONNRESET: handled on 'close'
        res.on("data", (chunk: Buffer) => {
          if (!finished) body?.enqueue(chunk);
        });
        res.on("end", () => {
          if (finished) return;
          finished = true;
          body?.close();
        });
        res.on("close", () => {
          // Closed before the end: the connection was lost. An error (not an end) makes the
          // EventSource reconnect, as a browser does on a network error.
          if (!finished) {
            finished = true;
            body?.error(new Error("connection lost"));
          }
          done();
        });
        resolve({
          status: res.statusCode ?? 0,
          url,
          redirected: false,
          headers: {
            get: (name: string) => {
              const value = res.headers[name.toLowerCase()];
              return value === undefined ? null : String(value);
            },
          },
          body: new ReadableStream<Uint8Array>({
            start: (controller) => {
              body = controller;
            },
            cancel: () => {
              finished = true;
              req.destroy();
            },
          }),
        } as FetchLikeResponse);
      });
    })) as FetchLike;

  return {
    fetch,
    get connected() {
      return streaming;
    },
    get connections() {
      return connections;
    },
    drop: () => {
      if (current === undefined || !streaming) return false;
      current.destroy();
      return true;
    },
  };
}
