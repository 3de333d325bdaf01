/**
 * Wire-level helpers for the bad-input, fuzz and disconnect cases: a raw HTTP/1.1 client that
 * checks the chunked framing byte by byte and decodes the body as strict UTF-8 into
 * eventsource-parser (the reference parser), and the oracles for what a string becomes on the
 * wire. Independent of the library: nothing here imports it.
 */
import net from "node:net";
import { createParser, type EventSourceMessage } from "eventsource-parser";

/** A request head for `path` with extra header lines (raw bytes: anything goes). */
export function requestHead(
  port: number,
  path: string,
  extraHeaders: Buffer | string = "",
  method = "GET",
): Buffer {
  return Buffer.concat([
    Buffer.from(
      `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n`,
      "latin1",
    ),
    typeof extraHeaders === "string" ? Buffer.from(extraHeaders, "latin1") : extraHeaders,
    Buffer.from("\r\n", "latin1"),
  ]);
}

/**
 * One HTTP/1.1 exchange on a plain socket. The response head is parsed, a chunked body is
 * de-chunked strictly (a malformed size line or a chunk not followed by CRLF is a problem), and
 * the body is decoded with a fatal, streaming UTF-8 decoder (invalid UTF-8 on the wire is a
 * problem) and fed to eventsource-parser. Unknown fields and invalid retries reported by the
 * parser are problems too: a correct stream has none.
 */
export class WireClient {
  status: number | undefined = undefined;
  readonly headers: Record<string, string> = {};
  readonly events: EventSourceMessage[] = [];
  readonly comments: string[] = [];
  readonly retries: number[] = [];
  /** Everything wrong with the bytes received, in words. Must stay empty. */
  readonly problems: string[] = [];
  /** Body bytes received (after de-chunking). */
  bodyBytes = 0;
  /** Set to an array to keep the de-chunked body bytes (see {@link takeBody}). */
  body: Buffer[] | undefined = undefined;
  /** The terminating zero-size chunk arrived. */
  ended = false;
  closed = false;
  error: string | undefined = undefined;
  private _pending: Buffer = Buffer.alloc(0);
  private _state: "head" | "size" | "data" | "crlf" | "identity" | "done" = "head";
  private _chunkLeft = 0;
  private readonly _decoder = new TextDecoder("utf-8", { fatal: true });
  private readonly _parser = createParser({
    onEvent: (event) => this.events.push(event),
    onComment: (comment) => this.comments.push(comment),
    onRetry: (ms) => this.retries.push(ms),
    onError: (error) => this.problems.push(`eventsource-parser: ${error.message}`),
  });
  private readonly _closedPromise: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => this._onData(chunk));
    socket.on("error", (err: NodeJS.ErrnoException) => {
      this.error = err.code ?? err.message;
    });
    this._closedPromise = new Promise((resolve) =>
      socket.once("close", () => {
        this.closed = true;
        resolve();
      }),
    );
  }

  /** Connects to 127.0.0.1:`port` and writes `head` (see {@link requestHead}). */
  static open(port: number, head: Buffer): Promise<WireClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1");
      const client = new WireClient(socket);
      socket.once("connect", () => {
        socket.write(head);
        resolve(client);
      });
      socket.once("error", reject);
    });
  }

  /** Resolves when the socket has closed. */
  whenClosed(): Promise<void> {
    return this._closedPromise;
  }

  /** Hangs up (FIN) and waits for the close. */
  async close(): Promise<void> {
    this.socket.destroy();
    await this._closedPromise;
  }

  /** The body bytes kept since the last call (needs `body` set to an array). */
  takeBody(): Buffer {
    const taken = Buffer.concat(this.body ?? []);
    if (this.body !== undefined) this.body = [];
    return taken;
  }

  private _body(bytes: Buffer): void {
    this.bodyBytes += bytes.length;
    this.body?.push(Buffer.from(bytes));
    let text: string;
    try {
      text = this._decoder.decode(bytes, { stream: true });
    } catch {
      this.problems.push("invalid UTF-8 in the body");
      this._state = "done";
      return;
    }
    this._parser.feed(text);
  }

  private _onData(chunk: Buffer): void {
    this._pending = this._pending.length === 0 ? chunk : Buffer.concat([this._pending, chunk]);
    for (;;) {
      switch (this._state) {
        case "head": {
          const end = this._pending.indexOf("\r\n\r\n");
          if (end === -1) return;
          const lines = this._pending.subarray(0, end).toString("latin1").split("\r\n");
          this.status = Number((lines[0] ?? "").split(" ")[1]);
          for (const line of lines.slice(1)) {
            const colon = line.indexOf(":");
            this.headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
          }
          this._pending = this._pending.subarray(end + 4);
          this._state = this.headers["transfer-encoding"] === "chunked" ? "size" : "identity";
          break;
        }
        case "size": {
          const end = this._pending.indexOf("\r\n");
          if (end === -1) {
            if (this._pending.length > 32) this._fail("a chunk size line longer than 32 bytes");
            return;
          }
          const line = this._pending.subarray(0, end).toString("latin1");
          if (!/^[0-9a-f]{1,16}$/i.test(line)) return this._fail(`bad chunk size line ${line}`);
          const size = parseInt(line, 16);
          this._pending = this._pending.subarray(end + 2);
          if (size === 0) {
            this.ended = true;
            this._state = "done";
            return;
          }
          this._chunkLeft = size;
          this._state = "data";
          break;
        }
        case "data": {
          if (this._pending.length === 0) return;
          const take = Math.min(this._chunkLeft, this._pending.length);
          const bytes = this._pending.subarray(0, take);
          this._pending = this._pending.subarray(take);
          this._chunkLeft -= take;
          if (this._chunkLeft === 0) this._state = "crlf";
          this._body(bytes);
          break;
        }
        case "crlf": {
          if (this._pending.length < 2) return;
          if (this._pending[0] !== 0x0d || this._pending[1] !== 0x0a) {
            return this._fail("a chunk not followed by CRLF (chunk size and data disagree)");
          }
          this._pending = this._pending.subarray(2);
          this._state = "size";
          break;
        }
        case "identity": {
          const bytes = this._pending;
          this._pending = Buffer.alloc(0);
          if (bytes.length > 0) this._body(bytes);
          return;
        }
        case "done":
          if (this._pending.length > 0) {
            this.problems.push(`${this._pending.length} bytes after the end of the response`);
            this._pending = Buffer.alloc(0);
          }
          return;
      }
    }
  }

  private _fail(problem: string): void {
    this.problems.push(problem);
    this._state = "done";
    this._pending = Buffer.alloc(0);
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * What a string becomes after a UTF-8 round trip: every lone surrogate replaced by U+FFFD (the
 * WHATWG encoder's rule, and Node's). Written with a regular expression, not with Buffer, so it
 * is an oracle for the library's encoding rather than a copy of it.
 */
export function wellFormed(text: string): string {
  return text.replace(LONE_SURROGATE, "\uFFFD");
}

/** CRLF and lone CR to LF, as the client does with the lines of `data` (they are split on them). */
export function normalizeLineBreaks(text: string): string {
  return text.replace(/\r\n|\r/g, "\n");
}

/** Lines of `text` as the library splits comments and data: on CRLF, CR and LF. */
export function linesOf(text: string): string[] {
  return text.split(/\r\n|\r|\n/);
}

/** Splits `bytes` at `cuts` (each taken modulo `bytes.length + 1`); may give empty chunks. */
export function splitBytes(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const points = cuts.map((cut) => cut % (bytes.length + 1)).sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const point of points) {
    chunks.push(bytes.subarray(start, point));
    start = point;
  }
  chunks.push(bytes.subarray(start));
  return chunks;
}

/** What eventsource-parser reports for a byte stream fed in `chunks` (decoded strictly, streaming). */
export interface Parsed {
  events: EventSourceMessage[];
  comments: string[];
  retries: number[];
  problems: string[];
}

export function parseChunks(chunks: readonly Buffer[]): Parsed {
  const out: Parsed = { events: [], comments: [], retries: [], problems: [] };
  const parser = createParser({
    onEvent: (event) => out.events.push(event),
    onComment: (comment) => out.comments.push(comment),
    onRetry: (ms) => out.retries.push(ms),
    onError: (error) => out.problems.push(`eventsource-parser: ${error.message}`),
  });
  const decoder = new TextDecoder("utf-8", { fatal: true });
  try {
    for (const chunk of chunks) parser.feed(decoder.decode(chunk, { stream: true }));
    const rest = decoder.decode();
    if (rest !== "") parser.feed(rest);
  } catch {
    out.problems.push("invalid UTF-8");
  }
  return out;
}

/** `promise`, or a rejection naming `what` after `ms` ms: no await in a case waits forever. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
