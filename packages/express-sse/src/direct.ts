/**
 * The direct socket path: the chunked writer under `ServerResponse`. A plain HTTP/1.1 chunked
 * stream's frames go to its socket as ready-made chunks, one `socket.write()` each, instead of
 * through `res.write()` (four socket writes, a cork and a `nextTick` per call); a broadcast builds
 * its chunk once for every client (`Frame#chunk`). Which streams qualify is decided once, when the
 * stream starts ({@link directSocketOf}); everything else (compression, other wrappers, HTTP/2,
 * HTTP/1.0) goes through `res.write()`. The chunk framing (RFC 9112 section 7.1) is written here
 * and nowhere else.
 */
import { ServerResponse } from "node:http";
import type { Socket } from "node:net";

/** Node's own write: a response whose `write` is anything else (compression) is wrapped. */
const NODE_WRITE = ServerResponse.prototype.write;

/**
 * The socket to hand frames to directly, once the head is flushed: a plain HTTP/1.1 chunked
 * response, its socket serving it, its `write` Node's own (not wrapped by compression or anything
 * else), nothing queued in the response itself. Else `undefined`.
 */
export function directSocketOf(res: ServerResponse): Socket | undefined {
  const socket = res.socket as (Socket & { _httpMessage?: unknown }) | null;
  const direct =
    socket !== null &&
    socket._httpMessage === res &&
    res.chunkedEncoding &&
    res.write === NODE_WRITE &&
    res.headersSent &&
    res.writableLength === socket.writableLength;
  return direct ? socket : undefined;
}

const CRLF = Buffer.from("\r\n", "latin1");

/** `bytes` as one HTTP/1.1 chunk: `<size in hex>\r\n<bytes>\r\n`. Built once per frame. */
export function chunkOf(bytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from(bytes.byteLength.toString(16), "latin1"), CRLF, bytes, CRLF]);
}

/** `text` (of `byteLength` UTF-8 bytes) as one HTTP/1.1 chunk, for a frame written once. */
export function textChunkOf(text: string, byteLength: number): string {
  return `${byteLength.toString(16)}\r\n${text}\r\n`;
}
