/**
 * A RESP3 reader for the pub/sub connection (pubsub-connection.ts). Pure: bytes in, values out.
 *
 * Why not the client library's: node-redis hands every pub/sub message through a listener map
 * keyed by channel (a map entry and two listener sets per subscribed channel), and with many
 * channels open that costs memory per channel and cache misses per message. Here a message goes
 * straight to one callback with its channel's name, and the live feed finds the channel in the
 * one map it keeps anyway.
 *
 * `smessage` pushes (`>3 $8 smessage $n <channel> $n <message>`), by far the most frequent input,
 * take a fast path; every other value goes through the general decoder. Partial input is kept
 * until it is complete; a value whose length is known (a large bulk string) is parsed once, when
 * all of it is there, not again on every chunk.
 */

/** An error reply (`-ERR …`, `!<n> …`). */
export class RespError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RespError";
  }
}

/** A push (`>`): its kind (`smessage`, `ssubscribe`, …) and the rest of its items. */
export type Push = readonly unknown[];

export interface RespHandlers {
  /** A sharded pub/sub message (the fast path). */
  onMessage(message: string, channel: string): void;
  /** Any other push (subscription confirmations, unsolicited unsubscriptions, …). */
  onPush(push: Push): void;
  /** A reply to a command. */
  onReply(reply: unknown): void;
}

/** Input ended in the middle of a value. */
const INCOMPLETE = Symbol("incomplete");

const CR = 13;
const PUSH = 62; // '>'
const BULK = 36; // '$'
/** `>3\r\n$8\r\nsmessage\r\n`: the start of every sharded pub/sub message. */
const SMESSAGE = Buffer.from(">3\r\n$8\r\nsmessage\r\n", "latin1");

export class RespReader {
  /** @internal Unparsed input: the tail of the last chunk(s). */
  private _pending: Buffer[] = [];
  /** @internal */
  private _pendingBytes = 0;
  /** @internal Bytes needed before parsing again (0: any new input may complete the value). */
  private _need = 0;
  /** @internal While parsing: how many bytes the incomplete value needs in total, if known. */
  private _wanted = 0;

  constructor(private readonly _handlers: RespHandlers) {}

  /** Feeds a chunk of input; calls the handlers for every complete value in it. */
  write(chunk: Buffer): void {
    let buffer = chunk;
    if (this._pendingBytes > 0) {
      this._pending.push(chunk);
      this._pendingBytes += chunk.length;
      if (this._pendingBytes < this._need) return;
      buffer = Buffer.concat(this._pending, this._pendingBytes);
      this._pending = [];
      this._pendingBytes = 0;
    }
    let offset = 0;
    while (offset < buffer.length) {
      this._wanted = 0;
      const end = this._next(buffer, offset);
      if (end === -1) break;
      offset = end;
    }
    if (offset < buffer.length) {
      const rest = buffer.subarray(offset);
      this._pending = [rest];
      this._pendingBytes = rest.length;
      this._need = this._wanted > 0 ? this._wanted - offset : rest.length + 1;
    } else {
      this._need = 0;
    }
  }

  /** Drops partial input (the connection is gone). */
  reset(): void {
    this._pending = [];
    this._pendingBytes = 0;
    this._need = 0;
  }

  /** @internal Parses and handles one value at `offset`; its end, or -1 when it is incomplete. */
  private _next(buffer: Buffer, offset: number): number {
    if (buffer[offset] === PUSH) {
      const end = this._message(buffer, offset);
      if (end !== 0) return end;
      const value = this._value(buffer, offset);
      if (value === INCOMPLETE) return -1;
      this._handlers.onPush(value.value as Push);
      return value.end;
    }
    const value = this._value(buffer, offset);
    if (value === INCOMPLETE) return -1;
    this._handlers.onReply(value.value);
    return value.end;
  }

  /**
   * @internal
   * The fast path: an `smessage` push at `offset`, handled; its end, -1 when incomplete, 0 when
   * it is not one.
   */
  private _message(buffer: Buffer, offset: number): number {
    const start = offset + SMESSAGE.length;
    if (start > buffer.length) return 0; // let the general decoder wait for the rest
    if (buffer.compare(SMESSAGE, 0, SMESSAGE.length, offset, start) !== 0) return 0;
    const channel = this._bulk(buffer, start);
    if (channel === undefined) return -1;
    const message = this._bulk(buffer, channel.end);
    if (message === undefined) return -1;
    this._handlers.onMessage(
      buffer.toString("utf8", message.start, message.end - 2),
      buffer.toString("utf8", channel.start, channel.end - 2),
    );
    return message.end;
  }

  /**
   * @internal A bulk string's content span at `offset` (`end` is past its CRLF); `undefined` if
   * incomplete.
   */
  private _bulk(buffer: Buffer, offset: number): { start: number; end: number } | undefined {
    if (buffer[offset] !== BULK) {
      if (offset >= buffer.length) return undefined;
      throw new RespError(
        `Unexpected RESP type in a message: ${String.fromCharCode(buffer[offset]!)}`,
      );
    }
    const line = buffer.indexOf(CR, offset);
    if (line === -1 || line + 1 >= buffer.length) return undefined;
    const length = parseInteger(buffer, offset + 1, line);
    const start = line + 2;
    const end = start + length + 2;
    if (end > buffer.length) {
      this._wanted = end;
      return undefined;
    }
    return { start, end };
  }

  /** @internal The general decoder: the value at `offset` and its end, or INCOMPLETE. */
  private _value(
    buffer: Buffer,
    offset: number,
  ): { value: unknown; end: number } | typeof INCOMPLETE {
    if (offset >= buffer.length) return INCOMPLETE;
    const type = buffer[offset]!;
    const line = buffer.indexOf(CR, offset);
    if (line === -1 || line + 1 >= buffer.length) return INCOMPLETE;
    const after = line + 2;
    switch (type) {
      case 43: // '+' simple string
        return { value: buffer.toString("utf8", offset + 1, line), end: after };
      case 45: // '-' simple error
        return { value: new RespError(buffer.toString("utf8", offset + 1, line)), end: after };
      case 58: // ':' integer
        return { value: parseInteger(buffer, offset + 1, line), end: after };
      case 44: // ',' double ("inf", "-inf", "nan" as RESP3 spells them)
        return { value: parseDouble(buffer.toString("latin1", offset + 1, line)), end: after };
      case 40: // '(' big number
        return { value: buffer.toString("latin1", offset + 1, line), end: after };
      case 35: // '#' boolean
        return { value: buffer[offset + 1] === 116, end: after };
      case 95: // '_' null
        return { value: null, end: after };
      case 36: // '$' bulk string
      case 33: // '!' bulk error
      case 61: {
        // '=' verbatim string ("txt:" + text)
        const length = parseInteger(buffer, offset + 1, line);
        if (length < 0) return { value: null, end: after }; // RESP2 null bulk
        const end = after + length + 2;
        if (end > buffer.length) {
          this._wanted = end;
          return INCOMPLETE;
        }
        const text = buffer.toString("utf8", type === 61 ? after + 4 : after, after + length);
        return { value: type === 33 ? new RespError(text) : text, end };
      }
      case 42: // '*' array
      case 62: // '>' push
      case 126: // '~' set
      case 37: // '%' map (flattened: key, value, …)
      case 124: {
        // '|' attributes: skipped, the value follows
        const count = parseInteger(buffer, offset + 1, line);
        if (count < 0) return { value: null, end: after }; // RESP2 null array
        const items = type === 37 || type === 124 ? count * 2 : count;
        const values: unknown[] = [];
        let end = after;
        for (let i = 0; i < items; i++) {
          const item = this._value(buffer, end);
          if (item === INCOMPLETE) return INCOMPLETE;
          values.push(item.value);
          end = item.end;
        }
        return type === 124 ? this._value(buffer, end) : { value: values, end };
      }
      default:
        throw new RespError(`Unknown RESP type byte ${type}`);
    }
  }
}

function parseDouble(text: string): number {
  if (text === "inf") return Infinity;
  if (text === "-inf") return -Infinity;
  return Number(text); // "nan" gives NaN too
}

/** A decimal integer in `buffer[start, end)` (RESP lengths, counts and integers). */
function parseInteger(buffer: Buffer, start: number, end: number): number {
  let i = start;
  const negative = buffer[i] === 45; // '-'
  if (negative) i++;
  let value = 0;
  for (; i < end; i++) {
    const digit = buffer[i]! - 48;
    if (digit < 0 || digit > 9) throw new RespError("Malformed RESP integer");
    value = value * 10 + digit;
  }
  return negative ? -value : value;
}
