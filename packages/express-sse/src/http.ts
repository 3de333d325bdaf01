/**
 * What HTTP itself imposes on a stream, kept apart from the write path: how the `Last-Event-ID`
 * request header is decoded, and which `Connection` header the request's HTTP version allows.
 */
import { isUtf8 } from "node:buffer";
import type { IncomingMessage } from "node:http";

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
