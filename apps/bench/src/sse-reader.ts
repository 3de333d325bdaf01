/**
 * Reads one HTTP/1.1 event-stream response off a raw socket as cheaply as possible: checks the
 * status line, undoes chunked transfer encoding, and counts frame ends ("\n\n"), including those
 * split across TCP reads or HTTP chunks, and among them the comments (frames whose first byte is
 * ":", such as heartbeats), so that `events` counts what a client dispatches. It does not parse
 * events, except on sampled connections, where each frame's `"t":` (publish time) and `"seq":`
 * are read for latency and ordering.
 */

const LF = 0x0a;
const COLON = 0x3a;
const CR = 0x0d;
const FRAME_END = Buffer.from("\n\n");
const HEAD_END = "\r\n\r\n";
/** A response head larger than this is not an event stream we understand. */
const MAX_HEAD = 16 * 1024;

const enum State {
  Head,
  Size,
  SizeExtension,
  SizeLF,
  Data,
  DataCR,
  DataLF,
  Identity,
  Done,
}

/** Called on sampled connections for every event carrying a publish time. */
export type OnSample = (t: number, seq: number) => void;

export class SseReader {
  /** HTTP status, once the head has arrived. */
  status = 0;
  /** Frames (events, comments, `retry:` fields) completed so far. */
  frames = 0;
  /** Those of them that are comments (`:` first): heartbeats, openers. */
  comments = 0;
  /** Body bytes after chunk decoding. */
  bytes = 0;
  /** Set when the response is malformed or not 200; the connection is then useless. */
  error: string | undefined = undefined;
  /** Sampled connections: events whose `seq` was not the previous one + 1. */
  seqErrors = 0;

  private _state = State.Head;
  private _head = "";
  private _size = 0;
  /** The last body byte seen was a LF that is not the second half of a counted frame end. */
  private _lf = false;
  /** The next body byte starts a frame. */
  private _frameStart = true;
  /** The current frame started with ":". */
  private _comment = false;
  /** Undecoded text of the current frame, on sampled connections only. */
  private _text: string | undefined;
  private _lastSeq = -1;

  constructor(private readonly _onSample?: OnSample) {
    this._text = _onSample === undefined ? undefined : "";
  }

  get headersDone(): boolean {
    return this._state !== State.Head;
  }

  /** Frames that are not comments: events and `retry:` fields, what delivery is counted in. */
  get events(): number {
    return this.frames - this.comments;
  }

  /** Feeds one read; returns the number of frames it completed. */
  push(buf: Buffer): number {
    const before = this.frames;
    let i = 0;
    const len = buf.length;
    while (i < len && this._state !== State.Done) {
      switch (this._state) {
        case State.Head:
          i = this._readHead(buf);
          break;
        case State.Size: {
          const c = buf[i++] as number;
          const digit = hexValue(c);
          if (digit >= 0) this._size = this._size * 16 + digit;
          else if (c === CR) this._state = State.SizeLF;
          else if (c === 0x3b /* ; */) this._state = State.SizeExtension;
          else this._fail(`bad chunk size byte 0x${c.toString(16)}`);
          break;
        }
        case State.SizeExtension:
          if (buf[i++] === CR) this._state = State.SizeLF;
          break;
        case State.SizeLF:
          if (buf[i++] !== LF) this._fail("bad chunk size line");
          else if (this._size === 0) this._state = State.Done;
          else this._state = State.Data;
          break;
        case State.Data: {
          const end = Math.min(len, i + this._size);
          this._body(buf, i, end);
          this._size -= end - i;
          i = end;
          if (this._size === 0) this._state = State.DataCR;
          break;
        }
        case State.DataCR:
          if (buf[i++] !== CR) this._fail("chunk not followed by CRLF");
          else this._state = State.DataLF;
          break;
        case State.DataLF:
          if (buf[i++] !== LF) this._fail("chunk not followed by CRLF");
          else this._state = State.Size;
          break;
        case State.Identity:
          this._body(buf, i, len);
          i = len;
          break;
      }
    }
    return this.frames - before;
  }

  /** Resets the sequence check (a new measurement starts; earlier events were counted apart). */
  resetSeq(): void {
    this._lastSeq = -1;
    this.seqErrors = 0;
  }

  private _readHead(buf: Buffer): number {
    const text = buf.toString("latin1");
    const from = Math.max(0, this._head.length - 3);
    this._head += text;
    const at = this._head.indexOf(HEAD_END, from);
    if (at === -1) {
      if (this._head.length > MAX_HEAD) this._fail("response head too large");
      return buf.length;
    }
    const head = this._head.slice(0, at);
    const consumed = at + HEAD_END.length - (this._head.length - text.length);
    this._head = "";
    this.status = Number(head.slice(9, 12));
    if (!head.startsWith("HTTP/1.") || this.status !== 200) {
      this._fail(`unexpected response: ${head.slice(0, head.indexOf("\r\n"))}`);
      return buf.length;
    }
    this._state = /\r\ntransfer-encoding:[ \t]*chunked/i.test(head) ? State.Size : State.Identity;
    return consumed;
  }

  private _body(buf: Buffer, start: number, end: number): void {
    if (start >= end) return;
    this.bytes += end - start;
    let i = start;
    let after = -1; // index just past the last frame end counted in this slice
    if (this._lf && buf[i] === LF) {
      this._frameEnd();
      i++;
      after = i;
    }
    for (;;) {
      if (this._frameStart && i < end) {
        this._comment = buf[i] === COLON;
        this._frameStart = false;
      }
      const at = buf.indexOf(FRAME_END, i);
      if (at === -1 || at + 2 > end) break;
      this._frameEnd();
      i = at + 2;
      after = i;
    }
    this._lf = buf[end - 1] === LF && after !== end;
    if (this._text !== undefined) this._sample(buf.toString("latin1", start, end));
  }

  private _frameEnd(): void {
    this.frames++;
    if (this._comment) this.comments++;
    this._frameStart = true;
    this._comment = false;
  }

  private _sample(text: string): void {
    let pending = this._text + text;
    for (;;) {
      const at = pending.indexOf("\n\n");
      if (at === -1) break;
      this._frame(pending.slice(0, at));
      pending = pending.slice(at + 2);
    }
    this._text = pending;
  }

  private _frame(frame: string): void {
    const t = frame.indexOf('"t":');
    if (t === -1) return; // a comment or a retry field: not an event of ours
    const s = frame.indexOf('"seq":');
    const seq = s === -1 ? -1 : parseInt(frame.slice(s + 6), 10);
    if (this._lastSeq !== -1 && seq !== this._lastSeq + 1) this.seqErrors++;
    this._lastSeq = seq;
    this._onSample?.(parseFloat(frame.slice(t + 4)), seq);
  }

  private _fail(message: string): void {
    this.error ??= message;
    this._state = State.Done;
  }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}
