/**
 * How a channel event is stored in a Redis stream entry and announced on pub/sub, and how stream
 * ids are read and ordered. Pure: no I/O.
 *
 * An entry has the field `d` (the data) and, for a named event, `e` (the event name), and `s` = `1`
 * when the data is the serializer's output (the value was not a string), so another process's
 * channel can deserialize it for filters; the publish script writes it (scripts.ts):
 * `XADD sluice:{chat} * e message s 1 d {"text":"hi"}`. A
 * plain `message` event has no `e` field; a string payload has no `s`.
 */
import type { AdapterEvent, AdapterPublish } from "@sluice/express-sse";

const EVENT_FIELD = "e";
const DATA_FIELD = "d";
const SERIALIZED_FIELD = "s";
const PREVIOUS_FIELD = "p";

/** The `p` field of an entry: the id before it, kept by the first entry of a re-created stream. */
export function previousOf(fields: readonly string[]): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2)
    if (fields[i] === PREVIOUS_FIELD) return fields[i + 1];
  return undefined;
}

/**
 * The event stored in an entry, or `undefined` for an entry that is not a channel event (no `d`
 * field: written to the key by something else). Unknown fields are ignored.
 */
export function decodeEntry(id: string, fields: readonly string[]): AdapterEvent | undefined {
  let event: string | undefined;
  let data: string | undefined;
  let serialized = false;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i];
    if (name === DATA_FIELD) data = fields[i + 1];
    else if (name === EVENT_FIELD) event = fields[i + 1];
    else if (name === SERIALIZED_FIELD) serialized = fields[i + 1] === "1";
  }
  if (data === undefined) return undefined;
  // An empty name cannot come from a Channel (it refuses them); treat it as a plain message.
  const name = event === "" ? undefined : event;
  return serialized ? { id, event: name, data, serialized } : { id, event: name, data };
}

/**
 * The pub/sub message that announces an entry (built by the publish script, see scripts.ts):
 * `<id> <prev> <flags><event name>\n<data>`, where `prev` is the id of the entry published just
 * before it on the same stream ("0-0": none known) and `flags` one digit: 1 = a named event,
 * 2 = serialized data, 3 = both. Ids and event names never hold a line break, so the first one
 * ends the header.
 */
export interface Announcement {
  readonly id: string;
  readonly prev: string;
  /** The parts of `id` and `prev` as numbers ({@link idPart}). */
  readonly idMs: number;
  readonly idSeq: number;
  readonly prevMs: number;
  readonly prevSeq: number;
  readonly event: AdapterEvent;
  /** Set by the live feed: own publishes to wait for before delivering it (live.ts). */
  wait?: Promise<unknown> | undefined;
}

/** Flags of a publish, as the script and {@link decodeAnnouncement} agree on them. */
export function publishFlags(event: AdapterPublish): string {
  return String((event.event === undefined ? 0 : 1) + (event.serialized === true ? 2 : 0));
}

/**
 * Reads an announcement; `undefined` if it is not one (something else published on the channel).
 * `tag` is the stream's (see {@link toEventId}).
 */
export function decodeAnnouncement(message: string, tag: string): Announcement | undefined {
  const space1 = message.indexOf(" ");
  const space2 = message.indexOf(" ", space1 + 1);
  const newline = message.indexOf("\n", space2 + 1);
  if (space1 <= 0 || space2 <= space1 || newline <= space2) return undefined;
  const idDash = message.indexOf("-");
  const prevDash = message.indexOf("-", space1 + 1);
  if (idDash === -1 || idDash > space1 || prevDash === -1 || prevDash > space2) return undefined;
  const idMs = idPart(message, 0, idDash);
  const idSeq = idPart(message, idDash + 1, space1);
  const prevMs = idPart(message, space1 + 1, prevDash);
  const prevSeq = idPart(message, prevDash + 1, space2);
  const flags = message.charCodeAt(space2 + 1) - 48;
  if (idMs < 0 || idSeq < 0 || prevMs < 0 || prevSeq < 0 || flags < 0 || flags > 3) {
    return undefined;
  }
  const id = message.slice(0, space1);
  const prev = message.slice(space1 + 1, space2);
  const name = (flags & 1) === 1 ? message.slice(space2 + 2, newline) : undefined;
  const data = message.slice(newline + 1);
  const eventId = toEventId(id, tag);
  const event: AdapterEvent =
    (flags & 2) === 2
      ? { id: eventId, event: name === "" ? undefined : name, data, serialized: true }
      : { id: eventId, event: name === "" ? undefined : name, data };
  return { id, prev, idMs, idSeq, prevMs, prevSeq, event };
}

/** The largest stream id part, 2^64 - 1, as digits. */
const MAX_PART = "18446744073709551615";

/** The smallest stream id: the position before every entry. */
export const ZERO_ID = "0-0";

/**
 * Whether `id` is a stream id as Redis issues them ("1700000000000-3"), within 64 bits. Anything
 * else (`"1700000000000"`, `"01-1"`, `"1-1 "`, a UUID) is not an id this adapter issued.
 */
export function isStreamId(id: string): boolean {
  const dash = id.indexOf("-");
  return dash !== -1 && idPart(id, 0, dash) >= 0 && idPart(id, dash + 1, id.length) >= 0;
}

/**
 * The number in `id[from, to)`, a part of a stream id: -1 unless it is a canonical decimal (no
 * sign, no leading zero) within 64 bits; `Infinity` when it is beyond 2^53, where numbers are not
 * exact (such parts are compared as strings).
 */
export function idPart(id: string, from: number, to: number): number {
  const length = to - from;
  if (length < 1 || length > 20 || (length > 1 && id.charCodeAt(from) === 48)) return -1;
  let value = 0;
  for (let i = from; i < to; i++) {
    const digit = id.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  if (value <= Number.MAX_SAFE_INTEGER) return value;
  return length === 20 && id.slice(from, to) > MAX_PART ? -1 : Infinity;
}

/**
 * Orders two canonical stream ids numerically: negative, zero or positive. Canonical decimals
 * without leading zeros compare as numbers by length first, then character by character, so
 * this is exact for any 64-bit value without parsing (the hot path: it runs per event for
 * subscribers that just resumed). A malformed id orders as "0-0".
 */
export function compareStreamIds(a: string, b: string): number {
  if (a === b) return 0;
  const aDash = a.indexOf("-");
  const bDash = b.indexOf("-");
  const aMs = aDash === -1 ? -1 : idPart(a, 0, aDash);
  const aSeq = aMs < 0 ? -1 : idPart(a, aDash + 1, a.length);
  const bMs = bDash === -1 ? -1 : idPart(b, 0, bDash);
  const bSeq = bMs < 0 ? -1 : idPart(b, bDash + 1, b.length);
  if (
    aSeq >= 0 &&
    bSeq >= 0 &&
    aMs !== Infinity &&
    aSeq !== Infinity &&
    bMs !== Infinity &&
    bSeq !== Infinity
  ) {
    return aMs - bMs || aSeq - bSeq; // the common case: exact as numbers
  }
  const [aMsText, aSeqText] = split(a);
  const [bMsText, bSeqText] = split(b);
  return compareDecimal(aMsText, bMsText) || compareDecimal(aSeqText, bSeqText);
}

function split(id: string): [string, string] {
  if (!isStreamId(id)) return ["0", "0"];
  const dash = id.indexOf("-");
  return [id.slice(0, dash), id.slice(dash + 1)];
}

function compareDecimal(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Event ids: the stream id, then a tag of the stream's key — `"1732270000000-3-kqxzab"`.
 *
 * Stream ids alone are not unique across streams: two streams written in the same millisecond
 * both issue `"<ms>-0"`, so a channel could not tell an id of another channel from its own. The
 * tag (6 letters from a 32-bit FNV-1a hash of the key) makes them distinct, and since it depends
 * only on the key, every process issues and understands the same ids. Letters only, so the id's
 * last number is still the sequence.
 */
export function streamTag(key: string): string {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(key, "utf8")) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  const letters: number[] = [];
  for (let i = 0; i < 6; i++) {
    letters.push(97 + (hash % 26));
    hash = Math.floor(hash / 26);
  }
  // One flat string (not six concatenated pieces): every event id of the stream includes it.
  return String.fromCharCode(...letters);
}

/** The event id of stream entry `streamId` in the stream tagged `tag`. */
export function toEventId(streamId: string, tag: string): string {
  return `${streamId}-${tag}`;
}

/**
 * The stream id inside event id `id` if it carries `tag` (or any tag, when `tag` is omitted), else
 * `undefined`.
 */
export function toStreamId(id: string, tag?: string): string | undefined {
  const dash = id.lastIndexOf("-");
  if (dash === -1 || (tag !== undefined ? id.slice(dash + 1) !== tag : dash !== id.length - 7)) {
    return undefined;
  }
  const streamId = id.slice(0, dash);
  return isStreamId(streamId) ? streamId : undefined;
}

/** Orders two event ids of one channel by their stream ids. A malformed id orders as "0-0". */
export function compareEventIds(a: string, b: string): number {
  if (a === b) return 0;
  return compareStreamIds(toStreamId(a) ?? ZERO_ID, toStreamId(b) ?? ZERO_ID);
}

/** The millisecond part of a canonical stream id. */
export function streamIdMs(id: string): number {
  return Number(id.slice(0, id.indexOf("-")));
}
