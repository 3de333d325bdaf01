/**
 * Shared pieces for the wire-format tests: fast-check arbitraries for event fields, a chunk
 * splitter, and a decoder built on eventsource-parser, the reference implementation that
 * `frame.ts` and `parse.ts` are checked against.
 */
import fc from "fast-check";
import { createParser as createReferenceParser, type EventSourceMessage } from "eventsource-parser";
import type { EventFields } from "../../src/frame";

/** One of the three line terminators of the event stream format. */
export const lineBreak = fc.constantFrom("\r", "\n", "\r\n");

/** The characters that may never appear in an `event` or `id` field. */
export const forbiddenInField = fc.constantFrom("\r", "\n", "\0");

/** One character (or grapheme) that may appear in an `event` or `id` field. */
const fieldUnit = fc.oneof(
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 }),
  fc.string({ unit: "binary", minLength: 1, maxLength: 1 }).filter((c) => !/[\r\n\0]/.test(c)),
  fc.constantFrom(" ", ":", "\t", "\uFEFF"),
);

/** A valid event name: non-empty, no CR, LF or NUL. */
export const eventName = fc.string({ unit: fieldUnit, minLength: 1, maxLength: 20 });

/**
 * One character that may appear in an `id`: anything a field allows but control characters other
 * than tab, DEL and lone surrogates (the client could not send them back in `Last-Event-ID`).
 */
const idUnit = fieldUnit.filter((c) => !/[\x00-\x08\x0a-\x1f\x7f]|\p{Surrogate}/u.test(c));

/**
 * A valid string id: {@link idUnit}s (possibly none) that neither begin nor end with a space or
 * tab (HTTP would strip them from `Last-Event-ID`).
 */
export const idString = fc
  .string({ unit: idUnit, maxLength: 20 })
  .map((id) => id.replace(/^[ \t]+|[ \t]+$/g, ""));

/** A valid id: an {@link idString} or a non-negative safe integer. */
export const eventId = fc.oneof(idString, fc.nat(), fc.maxSafeNat());

/** A control character no id may hold: C0 other than tab (CR, LF and NUL included), and DEL. */
export const idControl = fc
  .integer({ min: 0, max: 0x7f })
  .filter((c) => c < 0x20 || c === 0x7f)
  .filter((c) => c !== 0x09)
  .map((c) => String.fromCharCode(c));

/** A value for `retry`: a non-negative safe integer. */
export const retryMs = fc.oneof(fc.nat({ max: 100_000 }), fc.maxSafeNat());

/** Any data string: printable graphemes, arbitrary code points, NUL and all three line breaks. */
export const eventData = fc
  .array(
    fc.oneof(
      fc.string({ unit: "grapheme", maxLength: 10 }),
      fc.string({ unit: "binary", maxLength: 10 }),
      lineBreak,
      fc.constant("\0"),
    ),
    { maxLength: 12 },
  )
  .map((parts) => parts.join(""));

/** Any combination of valid `event`, `id` and `retry`. */
export const eventFields: fc.Arbitrary<EventFields> = fc.record(
  { event: eventName, id: eventId, retry: retryMs },
  { requiredKeys: [] },
);

/** A string for `event` or `id` that contains at least one CR, LF or NUL. */
export const invalidFieldValue = fc
  .tuple(
    fc.string({ unit: fieldUnit, maxLength: 10 }),
    fc.array(fc.tuple(forbiddenInField, fc.string({ unit: fieldUnit, maxLength: 5 })), {
      minLength: 1,
      maxLength: 4,
    }),
  )
  .map(([head, rest]) => head + rest.map(([bad, tail]) => bad + tail).join(""));

/** Chunk cut points for a text, as arbitrary naturals (reduced modulo the text length). */
export const cutPoints = fc.array(fc.nat(), { maxLength: 20 });

/**
 * Splits `text` at `cuts` (each taken modulo `text.length + 1`) into chunks that join back to
 * `text`. Repeated cut points give empty chunks, which a parser must also survive.
 */
export function splitAt(text: string, cuts: readonly number[]): string[] {
  const points = cuts.map((cut) => cut % (text.length + 1)).sort((a, b) => a - b);
  const chunks: string[] = [];
  let start = 0;
  for (const point of points) {
    chunks.push(text.slice(start, point));
    start = point;
  }
  chunks.push(text.slice(start));
  return chunks;
}

/** Turns CRLF and CR into LF, as the client does with the lines of `data`. */
export function normalizeLineBreaks(text: string): string {
  return text.replace(/\r\n|\r/g, "\n");
}

/** What eventsource-parser reports for a stream. */
export interface ReferenceResult {
  events: EventSourceMessage[];
  retries: number[];
  comments: string[];
}

/** Feeds `chunks` to eventsource-parser, in order, and collects what it reports. */
export function decodeWithReference(chunks: readonly string[]): ReferenceResult {
  const result: ReferenceResult = { events: [], retries: [], comments: [] };
  const parser = createReferenceParser({
    onEvent: (event) => result.events.push(event),
    onRetry: (ms) => result.retries.push(ms),
    onComment: (text) => result.comments.push(text),
  });
  for (const chunk of chunks) parser.feed(chunk);
  return result;
}
