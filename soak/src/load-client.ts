/**
 * A lightweight SSE load client on a raw `node:net` socket: one HTTP/1.1 GET, a chunked-body
 * decoder and a frame scanner that works on Buffers (no string per event, no EventSource), so
 * hundreds of them fit in the test's own process beside the server.
 *
 * It understands the event data written by {@link eventData}: `<seq> <sentAt> <padding>`, where
 * `seq` numbers the published events from 0 and `sentAt` is `performance.now()` at publish time
 * (same process, same clock). Each event is checked against the previous one (a `seq` that does
 * not follow is a gap or a duplicate) and its publish-to-receive latency goes to a histogram.
 *
 * The scanner expects what the server writes (`\n` line ends, `data: ` with one space); it is a
 * measuring instrument for this suite, not a general-purpose parser.
 */
import net, { type Socket } from "node:net";
import { performance } from "node:perf_hooks";

const CRLF = Buffer.from("\r\n");
const HEAD_END = Buffer.from("\r\n\r\n");
const FRAME_END = Buffer.from("\n\n");
const DATA_FIELD = Buffer.from("data: ");
const EVENT_FIELD = Buffer.from("event: ");

/** Event data of `size` bytes (at least the header) carrying its sequence number and send time. */
export function eventData(seq: number, size = 0): string {
  const head = `${seq} ${performance.now().toFixed(2)} `;
  return size > head.length ? head + "x".repeat(size - head.length) : head;
}

/**
 * Publish-to-receive latencies, in 0.1 ms buckets up to 10 s (everything slower lands in the
 * last bucket). A fixed array: recording a sample allocates nothing.
 */
export class LatencyHistogram {
  private readonly buckets = new Uint32Array(100_000);
  count = 0;
  max = 0;

  record(ms: number): void {
    const bucket = Math.min(this.buckets.length - 1, Math.max(0, Math.floor(ms * 10)));
    this.buckets[bucket]!++;
    this.count++;
    if (ms > this.max) this.max = ms;
  }

  /** The `p`th percentile (0-100) in ms, rounded up to the bucket's upper edge; 0 if empty. */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.ceil((p / 100) * this.count);
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i]!;
      if (seen >= rank) return (i + 1) / 10;
    }
    return this.max;
  }
}

export interface LoadClientOptions {
  /** Request headers besides Host and Accept. */
  headers?: Record<string, string>;
  /** Where each event's latency is recorded. */
  latency?: LatencyHistogram;
  /** ms to wait for the response head before giving up (the socket is destroyed). @default 10000 */
  headTimeout?: number;
}

/** One raw SSE connection. Counters are public fields, for cheap polling by the test. */
export class LoadClient {
  readonly socket: Socket;
  /** HTTP status, once the response head arrived. */
  status: number | undefined = undefined;
  /** Response headers (lower-case names), once the head arrived. */
  headers: Record<string, string> = {};
  /** Resolves with the status once the head arrived; rejects if the connection fails first. */
  readonly opened: Promise<number>;
  /** Resolves when the connection is closed (by either side). */
  readonly closed: Promise<void>;
  /** Whether the connection is closed. */
  ended = false;
  /** Body of a response that is not an event stream (a 503, say), as text. */
  body = "";
  /** The response ended (its last chunk, or all of its Content-Length, arrived). */
  complete = false;
  /** Events received (frames with a `data:` line). */
  events = 0;
  /** Sequence number of the first event, -1 before it. */
  firstSeq = -1;
  /** Sequence number of the last event, -1 before the first. */
  lastSeq = -1;
  /** Events skipped after the first: a seq above `lastSeq + 1` counts the ones between. */
  missing = 0;
  /** Events at or below `lastSeq`: duplicates (or out of order). */
  duplicates = 0;
  /** `event: reset` frames received. */
  resets = 0;

  private readonly latency: LatencyHistogram | undefined;
  private pending: Buffer | undefined = undefined;
  private headDone = false;
  private chunked = false;
  private eventStream = false;
  /** Chunked decoding: bytes left in the current chunk, or -1 while reading a size line. */
  private chunkLeft = -1;
  /** CRLF bytes still to skip after a chunk's data. */
  private crlfLeft = 0;
  /** An incomplete SSE frame carried over to the next payload. */
  private carry: Buffer | undefined = undefined;

  constructor(port: number, path: string, options: LoadClientOptions = {}) {
    this.latency = options.latency;
    const socket = net.connect(port, "127.0.0.1");
    this.socket = socket;
    let resolveOpened!: (status: number) => void;
    let rejectOpened!: (err: Error) => void;
    this.opened = new Promise<number>((resolve, reject) => {
      resolveOpened = resolve;
      rejectOpened = reject;
    });
    this.opened.catch(() => undefined);
    // A server that never answers must fail the case, not hang it.
    const headTimer = setTimeout(() => {
      if (!this.headDone) socket.destroy();
    }, options.headTimeout ?? 10_000);
    this.closed = new Promise<void>((resolve) => {
      socket.once("close", () => {
        clearTimeout(headTimer);
        this.ended = true;
        rejectOpened(new Error(`connection to ${path} closed before a response`));
        resolve();
      });
    });
    socket.on("error", () => undefined); // ECONNRESET when the server drops us: 'close' follows
    socket.once("connect", () => {
      const headers = Object.entries({
        Host: `127.0.0.1:${port}`,
        Accept: "text/event-stream",
        ...options.headers,
      })
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join("");
      socket.write(`GET ${path} HTTP/1.1\r\n${headers}\r\n`);
    });
    socket.on("data", (chunk: Buffer) => {
      this.onData(chunk);
      if (this.headDone && this.status !== undefined) {
        clearTimeout(headTimer);
        resolveOpened(this.status);
      }
    });
  }

  /** Closes the connection from the client side. */
  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending !== undefined) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    let pos = 0;
    if (!this.headDone) {
      const end = buf.indexOf(HEAD_END);
      if (end === -1) {
        this.pending = buf;
        return;
      }
      this.parseHead(buf.toString("latin1", 0, end));
      pos = end + HEAD_END.length;
    }
    if (!this.chunked) {
      this.body += buf.toString("utf8", pos);
      const length = this.headers["content-length"];
      if (length !== undefined && Buffer.byteLength(this.body) >= Number(length)) {
        this.complete = true;
      }
      return;
    }
    while (pos < buf.length) {
      if (this.crlfLeft > 0) {
        const skip = Math.min(this.crlfLeft, buf.length - pos);
        this.crlfLeft -= skip;
        pos += skip;
        continue;
      }
      if (this.chunkLeft === -1) {
        const eol = buf.indexOf(CRLF, pos);
        if (eol === -1) {
          this.pending = buf.subarray(pos);
          return;
        }
        const size = parseInt(buf.toString("latin1", pos, eol), 16);
        pos = eol + 2;
        if (size === 0) {
          this.complete = true; // the last chunk: the server ended the response
          return;
        }
        this.chunkLeft = size;
        continue;
      }
      const take = Math.min(this.chunkLeft, buf.length - pos);
      if (this.eventStream) this.feedPayload(buf, pos, pos + take);
      else this.body += buf.toString("utf8", pos, pos + take); // (ASCII bodies only)
      pos += take;
      this.chunkLeft -= take;
      if (this.chunkLeft === 0) {
        this.chunkLeft = -1;
        this.crlfLeft = 2;
      }
    }
  }

  private parseHead(head: string): void {
    const lines = head.split("\r\n");
    this.status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "")?.[1] ?? 0);
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon > 0)
        this.headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    this.chunked = this.headers["transfer-encoding"] === "chunked";
    this.eventStream = (this.headers["content-type"] ?? "").startsWith("text/event-stream");
    this.headDone = true;
  }

  /** SSE frames in `buf[start, end)`, plus whatever was carried over. */
  private feedPayload(input: Buffer, start: number, end: number): void {
    let buf = input;
    if (this.carry !== undefined) {
      buf = Buffer.concat([this.carry, input.subarray(start, end)]);
      start = 0;
      end = buf.length;
      this.carry = undefined;
    }
    let pos = start;
    for (;;) {
      const frameEnd = buf.indexOf(FRAME_END, pos);
      if (frameEnd === -1 || frameEnd + 2 > end) break;
      this.onFrame(buf, pos, frameEnd + 1);
      pos = frameEnd + 2;
    }
    if (pos < end) this.carry = Buffer.from(buf.subarray(pos, end));
  }

  /** One frame, `buf[start, end)` (lines, each ending with `\n`). */
  private onFrame(buf: Buffer, start: number, end: number): void {
    // Walk the lines up to the first data line: `event:` and `id:` come before it.
    let dataAt = -1;
    let isReset = false;
    let line = start;
    while (line < end) {
      if (startsWith(buf, line, DATA_FIELD)) {
        dataAt = line + DATA_FIELD.length;
        break;
      }
      if (startsWith(buf, line, EVENT_FIELD)) {
        const at = line + EVENT_FIELD.length;
        isReset = buf.toString("latin1", at, buf.indexOf(10, at)) === "reset";
      }
      const eol = buf.indexOf(10, line);
      if (eol === -1) break;
      line = eol + 1;
    }
    if (dataAt === -1) return; // a comment or a retry field
    if (isReset) {
      this.resets++;
      return;
    }
    this.events++;
    // `<seq> <sentAt> ...`
    let i = dataAt;
    let seq = 0;
    for (let c = buf[i]!; c >= 48 && c <= 57; c = buf[++i]!) seq = seq * 10 + (c - 48);
    if (this.firstSeq === -1) {
      this.firstSeq = seq;
      this.lastSeq = seq;
    } else if (seq === this.lastSeq + 1) {
      this.lastSeq = seq;
    } else if (seq > this.lastSeq) {
      this.missing += seq - this.lastSeq - 1;
      this.lastSeq = seq;
    } else {
      this.duplicates++;
    }
    if (this.latency !== undefined) {
      let whole = 0;
      let fraction = 0;
      let scale = 1;
      i++; // the space
      for (let c = buf[i]!; c >= 48 && c <= 57; c = buf[++i]!) whole = whole * 10 + (c - 48);
      if (buf[i] === 46) {
        for (let c = buf[++i]!; c >= 48 && c <= 57; c = buf[++i]!) {
          scale /= 10;
          fraction += (c - 48) * scale;
        }
      }
      this.latency.record(performance.now() - (whole + fraction));
    }
  }
}

function startsWith(buf: Buffer, at: number, prefix: Buffer): boolean {
  for (let i = 0; i < prefix.length; i++) if (buf[at + i] !== prefix[i]) return false;
  return true;
}
