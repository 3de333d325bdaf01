/**
 * The wire format: event fields in, `text/event-stream` bytes out. Pure; no I/O.
 *
 * Every frame produced here is a complete block that ends with a blank line, so frames can be
 * concatenated, written to many streams and interleaved with heartbeats in any order.
 *
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream
 */
import { chunkOf } from "./direct";
import { describe, nonNegativeInteger } from "./util";

/** Fields of one event other than its data. */
export interface EventFields {
  /**
   * Event type; the client dispatches it to `addEventListener(event, ...)`. Omitted: `message`.
   * Must be a non-empty string without CR, LF or NUL.
   */
  event?: string | undefined;
  /**
   * Event id; the client reports it back in `Last-Event-ID` on reconnect. `""` is legal and
   * resets the client's last event id. Must be able to come back through that header: no control
   * characters but tab (so no CR, LF or NUL), no DEL, no lone surrogate, no space or tab at
   * either end.
   */
  id?: string | number | undefined;
  /** Reconnection delay for the client, in milliseconds: a non-negative safe integer. */
  retry?: number | undefined;
}

const LINE_BREAK = /\r\n|\r|\n/;
const FORBIDDEN_IN_FIELD = /[\r\n\0]/;

/**
 * Throws a `TypeError` naming the field if `value` cannot be written as a single-line field.
 * NUL is refused too: browsers silently ignore an `id` that contains it (undici
 * `isValidLastEventId`), which would make resume fail without a trace.
 */
function assertSingleLine(field: "event" | "id", value: string): void {
  if (FORBIDDEN_IN_FIELD.test(value)) {
    throw new TypeError(`The "${field}" field must not contain CR, LF or NUL characters`);
  }
}

/** Validates `event` and returns it. */
export function validateEventName(event: unknown): string {
  if (typeof event !== "string") {
    throw new TypeError(`The "event" field must be a string, got ${describe(event)}`);
  }
  if (event === "") {
    // An empty `event:` line makes the client dispatch `message`, which is what omitting the field
    // does; an empty name is almost always a bug upstream, so it is refused instead of guessed.
    throw new TypeError('The "event" field must not be empty; omit it to send a "message" event');
  }
  assertSingleLine("event", event);
  return event;
}

/**
 * What the client cannot send back in `Last-Event-ID`, or `undefined` for an id that round-trips.
 * The browser stores the id it read from `id:` and sends it as that request header on reconnect,
 * so an id must survive both trips:
 * - C0 controls other than tab, and DEL: HTTP forbids them in a field value (RFC 9110 section
 *   5.5); Node's parser answers such a request with 400, which a browser takes as final, while
 *   Node's fetch-based clients refuse to send it and retry forever.
 * - a space or tab at either end: HTTP strips them from a field value, so " 7" would come back as
 *   "7" and the channel would resume from another id without a trace.
 * - a lone surrogate: it goes out as U+FFFD, so the id the client has is not the one sent.
 * (CR, LF and NUL are refused by {@link assertSingleLine}, before this.)
 */
export function idProblem(id: string): string | undefined {
  if (!ID_SUSPECT.test(id)) return undefined;
  const control = /[\x00-\x08\x0a-\x1f\x7f]/.exec(id);
  if (control !== null) {
    return (
      `must not contain control characters other than tab (${codePoint(control[0])} at index ` +
      `${control.index}): the client sends the id back in the Last-Event-ID header, where HTTP ` +
      "forbids them (Node answers 400 and the client stops reconnecting or retries forever)"
    );
  }
  const at = indexOfLoneSurrogate(id);
  if (at !== -1) {
    return (
      `must not contain a lone surrogate (${codePoint(id[at] as string)} at index ${at}): it is ` +
      "sent as U+FFFD, so the id the client sends back would not be this one"
    );
  }
  const trimmed = id.replace(/^[ \t]+|[ \t]+$/g, "");
  if (trimmed === id) return undefined; // surrogate pairs only: a valid id
  return (
    "must not begin or end with a space or tab: HTTP strips them from the Last-Event-ID header, " +
    `so the id would come back as ${JSON.stringify(trimmed)} and resume from another id`
  );
}

/** Cheap pre-check: anything {@link idProblem} refuses matches. */
// eslint-disable-next-line no-control-regex
const ID_SUSPECT = /[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]|^[ \t]|[ \t]$/;

/** Index of the first UTF-16 surrogate without its pair, or -1. */
function indexOfLoneSurrogate(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0xd800 || unit > 0xdfff) continue;
    const next = text.charCodeAt(i + 1);
    if (unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) i++;
    else return i;
  }
  return -1;
}

function codePoint(char: string): string {
  return `U+${(char.codePointAt(0) as number).toString(16).toUpperCase().padStart(4, "0")}`;
}

/** Validates `id` and returns it as a string. */
export function validateId(id: unknown): string {
  if (typeof id === "number") {
    if (!Number.isSafeInteger(id) || id < 0) {
      throw new RangeError(
        `The "id" field must be a non-negative safe integer or a string, got ${id}`,
      );
    }
    return String(id);
  }
  if (typeof id !== "string") {
    throw new TypeError(`The "id" field must be a string or a number, got ${describe(id)}`);
  }
  assertSingleLine("id", id);
  const problem = idProblem(id);
  if (problem !== undefined) throw new TypeError(`The "id" field ${problem}`);
  return id;
}

/** Validates a `retry` value (milliseconds) and returns it. */
export function validateRetry(retry: unknown): number {
  // Clients apply `retry` only when the value is ASCII digits (spec step "If the field value
  // consists of only ASCII digits"), so anything else would be dropped silently on the wire.
  return nonNegativeInteger('The "retry" field', retry);
}

/**
 * Returns the `data:` lines for `data`: one line per line of input, split on CRLF, CR and LF.
 * Empty input gives one empty `data:` line (an event with empty data); a trailing line break gives
 * a trailing empty line, so `"a\n"` arrives as `"a\n"`. Always a space after the colon: the client
 * strips exactly one, so a value's own leading space survives.
 */
export function dataLines(data: string): string {
  // Fast path: most payloads (JSON, tokens) have no line break at all.
  if (data.indexOf("\n") === -1 && data.indexOf("\r") === -1) return `data: ${data}\n`;
  let out = "";
  for (const line of data.split(LINE_BREAK)) out += `data: ${line}\n`;
  return out;
}

/**
 * Builds one complete event frame. `data` must already be a string (serialize first).
 *
 * @example
 * frameEvent("hello", { event: "greeting", id: "1" })
 * // => "event: greeting\nid: 1\ndata: hello\n\n"
 */
export function frameEvent(data: string, fields?: EventFields): string {
  if (typeof data !== "string") {
    throw new TypeError(`Event data must be a string once serialized, got ${describe(data)}`);
  }
  let head = "";
  if (fields !== undefined) {
    if (fields === null || typeof fields !== "object") {
      throw new TypeError(`Event options must be an object, got ${describe(fields)}`);
    }
    if (fields.event !== undefined) head += `event: ${validateEventName(fields.event)}\n`;
    if (fields.id !== undefined) head += `id: ${validateId(fields.id)}\n`;
    if (fields.retry !== undefined) head += `retry: ${validateRetry(fields.retry)}\n`;
  }
  return `${head}${dataLines(data)}\n`;
}

/**
 * Builds a comment frame: one `:` line per line of `text`. Clients ignore comments; they keep
 * proxies from timing out an idle connection and are useful for debugging with `curl -N`.
 */
export function frameComment(text: string): string {
  if (typeof text !== "string") {
    throw new TypeError(`Comment text must be a string, got ${describe(text)}`);
  }
  if (text.indexOf("\n") === -1 && text.indexOf("\r") === -1) return `: ${text}\n\n`;
  let out = "";
  for (const line of text.split(LINE_BREAK)) out += `: ${line}\n`;
  return `${out}\n`;
}

/** Builds a frame that only sets the client's reconnection delay. */
export function frameRetry(ms: number): string {
  return `retry: ${validateRetry(ms)}\n\n`;
}

/** A short description of a value for error messages. */
/** `text` if the serializer returned a string; otherwise the TypeError both send() and publish() throw. */
export function serializedText(text: unknown): string {
  if (typeof text === "string") return text;
  throw new TypeError(
    `The serializer must return a string, got ${describe(text)}` +
      (text === undefined ? " (JSON.stringify returns undefined for undefined and functions)" : ""),
  );
}

/**
 * A complete, validated frame, built once and written to any number of streams with
 * `stream.sendFrame(frame)`. Its constructor is private: every `Frame` comes from the factories
 * below, so writing one can never corrupt a stream.
 *
 * The UTF-8 bytes are encoded once, on first use, and shared by every write: a broadcast to N
 * clients then costs N `write`s of one `Buffer` instead of N string encodings.
 */
export class Frame {
  /** The frame as text. */
  readonly text: string;
  /** @internal */
  private _bytes: Buffer | undefined = undefined;
  /** @internal */
  private _chunk: Buffer | undefined = undefined;

  private constructor(text: string) {
    this.text = text;
  }

  /** The frame as UTF-8 bytes (encoded once, then cached). */
  get bytes(): Buffer {
    if (this._bytes === undefined) this._bytes = Buffer.from(this.text, "utf8");
    return this._bytes;
  }

  /** Size of the frame on the wire, in bytes. */
  get byteLength(): number {
    return this.bytes.byteLength;
  }

  /**
   * @internal The frame as one HTTP/1.1 chunk (`<size in hex>\r\n<bytes>\r\n`), built once and
   * written as is to the sockets of plain chunked responses (see SseStream's direct path).
   */
  get chunk(): Buffer {
    if (this._chunk === undefined) this._chunk = chunkOf(this.bytes);
    return this._chunk;
  }

  /** An event frame; `data` must already be a string. Same rules as {@link frameEvent}. */
  static event(data: string, fields?: EventFields): Frame {
    return new Frame(frameEvent(data, fields));
  }

  /** A comment frame. Same rules as {@link frameComment}. */
  static comment(text: string): Frame {
    return new Frame(frameComment(text));
  }

  /** A frame that only sets the client's reconnection delay. */
  static retry(ms: number): Frame {
    return new Frame(frameRetry(ms));
  }

  /**
   * @internal Several frames as one (their texts concatenated), so that a burst of events is
   * written to each client in one write.
   */
  static concat(frames: readonly Frame[]): Frame {
    if (frames.length === 1) return frames[0] as Frame;
    const joined = new Frame(frames.map((f) => f.text).join(""));
    joined._bytes = Buffer.concat(frames.map((f) => f.bytes));
    return joined;
  }
}
