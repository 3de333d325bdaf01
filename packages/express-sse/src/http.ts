/**
 * The HTTP side of a stream, kept apart from its state and write path: how the `Last-Event-ID`
 * request header is decoded, the response head of a stream (or the 503 that refuses one), and
 * what of Express's per-request state a started stream releases. (Whether frames may go straight
 * to the socket: direct.ts.)
 */
import { isUtf8 } from "node:buffer";
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  DEFAULT_RETRY_AFTER_S,
  HEARTBEAT_HEADER,
  SSE_CACHE_CONTROL,
  SSE_CONTENT_TYPE,
} from "./constants";
import type { ResolvedOptions } from "./options";

/**
 * A `Last-Event-ID` value as the client meant it. Node reads header bytes as Latin-1 (one char
 * per byte). The spec has the client send the id UTF-8 encoded, and browsers do, so an id such
 * as "é" arrives as the two chars "Ã©"; but undici's `EventSource` (Node's own) and clients on
 * Node's `fetch` send it Latin-1, one byte per char. So: the bytes as UTF-8 when they are valid
 * UTF-8, else as Latin-1 (the value as Node read it).
 *
 * The one ambiguity: a Latin-1 id whose bytes happen to be valid UTF-8 ("Ã©", sent as C3 A9)
 * is read as UTF-8 ("é"). Ids in ASCII, like a channel's, never meet it.
 */
export function decodeLastEventId(value: string): string {
  // eslint-disable-next-line no-control-regex
  if (!/[^\x00-\x7f]/.test(value)) return value;
  const bytes = Buffer.from(value, "latin1");
  return isUtf8(bytes) ? bytes.toString("utf8") : value;
}

/**
 * The `Connection` header of an event stream answering `req`, or `undefined` for none.
 * - HTTP/1.1: `keep-alive`, so that proxies keep the connection open.
 * - HTTP/1.0: `close`. An HTTP/1.0 response without `Content-Length` has no chunked coding and
 *   ends only when the connection closes (Node closes it after the response), so keep-alive
 *   would promise what cannot happen.
 * - HTTP/2 and later: none (connection-specific headers are forbidden, RFC 9113 section 8.2.2).
 */
export function connectionHeader(req: IncomingMessage): string | undefined {
  if (req.httpVersionMajor >= 2) return undefined;
  return req.httpVersionMajor === 1 && req.httpVersionMinor >= 1 ? "keep-alive" : "close";
}

/**
 * Sends a stream's response head: the event-stream headers, the heartbeat interval (when on),
 * then the app's `headers`.
 */
export function writeStreamHead(
  res: ServerResponse,
  { headers, heartbeat }: Pick<ResolvedOptions, "headers" | "heartbeat">,
): void {
  res.setHeader("Content-Type", SSE_CONTENT_TYPE);
  res.setHeader("Cache-Control", SSE_CACHE_CONTROL);
  // keep-alive on HTTP/1.1, close on HTTP/1.0, none on HTTP/2 (connectionHeader).
  const connection = connectionHeader(res.req);
  if (connection !== undefined) res.setHeader("Connection", connection);
  // nginx: do not buffer this response even where proxy_buffering is on.
  res.setHeader("X-Accel-Buffering", "no");
  if (heartbeat > 0) res.setHeader(HEARTBEAT_HEADER, heartbeat);
  for (const name in headers) res.setHeader(name, headers[name] as string);
  if (heartbeat > 0 && res.hasHeader("Access-Control-Allow-Origin")) exposeHeartbeat(res);
  res.writeHead(200);
}

/**
 * A cross-origin page reads only the response headers CORS exposes: the app allowed this origin
 * (its CORS middleware, or the `headers` option), so the heartbeat header is added to
 * `Access-Control-Expose-Headers`, after what the app exposes already. (`*` alone does not cover
 * requests with credentials, so the name is added then too.)
 */
function exposeHeartbeat(res: ServerResponse): void {
  const current = res.getHeader("Access-Control-Expose-Headers");
  const list = Array.isArray(current) ? current.join(", ") : String(current ?? "");
  const name = HEARTBEAT_HEADER.toLowerCase();
  if (list.split(",").some((exposed) => exposed.trim().toLowerCase() === name)) return;
  res.setHeader(
    "Access-Control-Expose-Headers",
    list.trim() === "" ? HEARTBEAT_HEADER : `${list}, ${HEARTBEAT_HEADER}`,
  );
}

/** The head of the answer to a stream refused by `maxConnections`: 503, `Retry-After` from `retry` (ms). */
export function writeBusyHead(res: ServerResponse, retry: number | undefined): void {
  res.writeHead(503, {
    "Retry-After": String(
      retry === undefined ? DEFAULT_RETRY_AFTER_S : Math.max(1, Math.ceil(retry / 1000)),
    ),
    "Content-Type": "text/plain; charset=utf-8",
    "Cache-Control": "no-store",
  });
}

/** Its body. */
export const BUSY_BODY = "Too many open event streams; retry later.\n";

/**
 * What Express keeps per request that an open event stream never uses again, released once the
 * stream has started (an idle stream then costs less than Express's own per-request state):
 *
 * - `req.next`, the router's continuation (a closure and its scope, ~200 bytes): Express uses it
 *   to report errors of `res.render()` / `res.format()`, which cannot run once the stream's
 *   headers are sent. A handler's own `next` parameter is untouched.
 * - `req._parsedUrl` / `req._parsedOriginalUrl`, the `parseurl` caches (a `Url`, ~130 bytes plus
 *   its strings): rebuilt on the next `req.query`, `req.path`, ... if the app asks.
 *
 * Set to `undefined`, not deleted: deleting would turn `req` into a slow (dictionary) object.
 */
export function releaseRequestState(req: IncomingMessage): void {
  const r = req as IncomingMessage & {
    next?: unknown;
    _parsedUrl?: unknown;
    _parsedOriginalUrl?: unknown;
  };
  if (r.next !== undefined) r.next = undefined;
  if (r._parsedUrl !== undefined) r._parsedUrl = undefined;
  if (r._parsedOriginalUrl !== undefined) r._parsedOriginalUrl = undefined;
}
