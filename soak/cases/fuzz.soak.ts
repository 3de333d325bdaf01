/**
 * Frame fuzz: random sequences of events, comments and retries (full Unicode data with CR, LF,
 * CRLF, NUL and lone surrogates; valid and invalid event names, ids and retries) are framed with
 * the public `Frame` factories, concatenated into one byte stream, cut into random chunks (inside
 * multi-byte UTF-8 sequences too), decoded with a streaming, fatal TextDecoder and fed to
 * eventsource-parser. What it parses must be exactly what was meant: data lines joined with "\n"
 * (CR and CRLF read as LF, as the spec says), lone surrogates as U+FFFD (the UTF-8 round trip),
 * valid names and ids as they are, and every invalid input a TypeError/RangeError naming the field,
 * with nothing written. A share of the runs also goes through `res.sse` on a real socket: the
 * bytes on the wire must equal the frames byte for byte, and parse the same.
 */
import express from "express";
import fc from "fast-check";
import { Frame, sse, type EventFields, type SseStream } from "@sluice/express-sse";
import type { EventSourceMessage } from "eventsource-parser";
import { heapUsed } from "../src/memory";
import { record } from "../src/record";
import { scaled } from "../src/scale";
import { closeAllServers, listen, waitFor } from "../../packages/express-sse/test/helpers/server";
import {
  WireClient,
  linesOf,
  normalizeLineBreaks,
  parseChunks,
  requestHead,
  splitBytes,
  wellFormed,
  within,
} from "../src/sse-wire";

const RUNS = scaled({ full: 20_000, short: 2_000 });
/** Runs that also go through a real socket (each waits for the client: slower). */
const SOCKET_RUNS = scaled({ full: 1_000, short: 100 });
/** One seed per suite run, printed in the table, so a failure can be replayed. */
const SEED = Number(process.env["SOAK_FUZZ_SEED"] ?? Date.now() % 2 ** 31);

// ---------------------------------------------------------------------------------------------
// Arbitraries. Every generated field carries what the library must do with it: the value, and
// the error class if it is invalid.

type ErrorName = "TypeError" | "RangeError";
interface Tagged<T> {
  value: T;
  error?: ErrorName;
}
const ok = <T>(value: T): Tagged<T> => ({ value });
const bad =
  (error: ErrorName) =>
  <T>(value: T): Tagged<T> => ({ value, error });

const lineBreak = fc.constantFrom("\r", "\n", "\r\n");
const loneSurrogate = fc
  .integer({ min: 0xd800, max: 0xdfff })
  .map((code) => String.fromCharCode(code));
const forbidden = fc.constantFrom("\r", "\n", "\r\n", "\0");

/** Any text: graphemes, any code point, lone surrogates, line breaks, NUL, field look-alikes. */
const anyText = fc
  .array(
    fc.oneof(
      { weight: 4, arbitrary: fc.string({ unit: "grapheme", maxLength: 8 }) },
      { weight: 4, arbitrary: fc.string({ unit: "binary", maxLength: 8 }) },
      { weight: 3, arbitrary: lineBreak },
      { weight: 1, arbitrary: fc.constant("\0") },
      { weight: 2, arbitrary: loneSurrogate },
      {
        weight: 2,
        arbitrary: fc.constantFrom(
          " ",
          ":",
          "\uFEFF",
          "data: x",
          "event: admin",
          "id: 1",
          "retry: 5",
        ),
      },
    ),
    { maxLength: 10 },
  )
  .map((parts) => parts.join(""));

/** One unit of a field value: anything but CR, LF and NUL (lone surrogates included). */
const fieldUnit = fc
  .oneof(
    fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 }),
    fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
    loneSurrogate,
    fc.constantFrom(" ", ":", "\t", "\uFEFF"),
  )
  .filter((unit) => !/[\r\n\0]/.test(unit));
const fieldText = (minLength: number) => fc.string({ unit: fieldUnit, minLength, maxLength: 12 });
const withForbidden = fc
  .tuple(fieldText(0), forbidden, fieldText(0))
  .map(([head, breaks, tail]) => head + breaks + tail);
/** Numbers that are not non-negative safe integers. */
const badNumber = fc.oneof(
  fc.integer({ max: -1 }),
  fc.double({ noInteger: true }),
  fc.constantFrom(NaN, Infinity, -Infinity, 2 ** 53, 2 ** 64),
);

const eventName: fc.Arbitrary<Tagged<unknown>> = fc.oneof(
  { weight: 12, arbitrary: fieldText(1).map(ok) },
  { weight: 2, arbitrary: withForbidden.map(bad("TypeError")) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>("", 42, null, ["x"]).map(bad("TypeError")) },
);
/**
 * An id a client could not send back in `Last-Event-ID`, which the library refuses: a control
 * character other than tab, DEL, a lone surrogate, a space or tab at either end.
 */
const unsendable = (id: string): boolean =>
  // eslint-disable-next-line no-control-regex
  /[\x00-\x08\x0a-\x1f\x7f]|\p{Surrogate}|^[ \t]|[ \t]$/u.test(id);
const eventId: fc.Arbitrary<Tagged<unknown>> = fc.oneof(
  {
    weight: 16,
    arbitrary: fieldText(0).map((id) => (unsendable(id) ? bad("TypeError")(id) : ok(id))),
  },
  { weight: 4, arbitrary: fc.oneof(fc.nat(), fc.maxSafeNat()).map(ok) },
  { weight: 2, arbitrary: withForbidden.map(bad("TypeError")) },
  { weight: 1, arbitrary: badNumber.map(bad("RangeError")) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, true, {}, 1n).map(bad("TypeError")) },
);
const retryMs: fc.Arbitrary<Tagged<unknown>> = fc.oneof(
  { weight: 20, arbitrary: fc.oneof(fc.nat({ max: 100_000 }), fc.maxSafeNat()).map(ok) },
  { weight: 2, arbitrary: badNumber.map(bad("RangeError")) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>("100", null, true, 5n).map(bad("TypeError")) },
);

type Op =
  | {
      kind: "event";
      data: string;
      event?: Tagged<unknown>;
      id?: Tagged<unknown>;
      retry?: Tagged<unknown>;
    }
  | { kind: "comment"; text: Tagged<unknown> }
  | { kind: "retry"; ms: Tagged<unknown> };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record(
        { data: anyText, event: eventName, id: eventId, retry: retryMs },
        { requiredKeys: ["data"] },
      )
      .map((fields) => ({ kind: "event" as const, ...fields })),
  },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        { weight: 10, arbitrary: anyText.map(ok) },
        {
          weight: 1,
          arbitrary: fc.constantFrom<unknown>(42, null, undefined, {}).map(bad("TypeError")),
        },
      )
      .map((text) => ({ kind: "comment" as const, text })),
  },
  { weight: 1, arbitrary: retryMs.map((ms) => ({ kind: "retry" as const, ms })) },
);
const ops = fc.array(op, { minLength: 1, maxLength: 40, size: "medium" });

// ---------------------------------------------------------------------------------------------
// The oracle: what each op must produce, independently of the library.

interface Expected {
  events: EventSourceMessage[];
  comments: string[];
  retries: number[];
}

/** The first invalid field in the order the library checks them (event, id, retry), if any. */
function firstInvalid(o: Op): { field: string; error: ErrorName } | undefined {
  if (o.kind === "comment") return o.text.error && { field: "Comment text", error: o.text.error };
  if (o.kind === "retry") return o.ms.error && { field: '"retry"', error: o.ms.error };
  for (const field of ["event", "id", "retry"] as const) {
    const error = o[field]?.error;
    if (error !== undefined) return { field: `"${field}"`, error };
  }
  return undefined;
}

function fieldsOf(o: Op & { kind: "event" }): EventFields {
  const fields: Record<string, unknown> = {};
  if (o.event !== undefined) fields["event"] = o.event.value;
  if (o.id !== undefined) fields["id"] = o.id.value;
  if (o.retry !== undefined) fields["retry"] = o.retry.value;
  return fields as EventFields;
}

/** Adds what a valid `o` must parse as to `into`. */
function expect1(o: Op, into: Expected): void {
  if (o.kind === "comment") {
    into.comments.push(...linesOf(wellFormed(o.text.value as string)));
  } else if (o.kind === "retry") {
    into.retries.push(o.ms.value as number);
  } else {
    if (o.retry !== undefined) into.retries.push(o.retry.value as number);
    into.events.push({
      data: normalizeLineBreaks(wellFormed(o.data)),
      event: o.event === undefined ? undefined : wellFormed(o.event.value as string),
      id: o.id === undefined ? undefined : wellFormed(String(o.id.value)),
    });
  }
}

/** The op through the public Frame factories. */
function frameOf(o: Op): Frame {
  if (o.kind === "comment") return Frame.comment(o.text.value as string);
  if (o.kind === "retry") return Frame.retry(o.ms.value as number);
  return Frame.event(o.data, fieldsOf(o));
}

/** The op through a live stream's methods. */
function writeTo(stream: SseStream, o: Op): void {
  if (o.kind === "comment") stream.comment(o.text.value as string);
  else if (o.kind === "retry") stream.retry(o.ms.value as number);
  else stream.send(o.data, fieldsOf(o));
}

/**
 * Runs `call` for an invalid op and returns a problem if it did not throw the expected class with
 * a message naming the field.
 */
function refusal(
  call: () => unknown,
  invalid: { field: string; error: ErrorName },
): string | undefined {
  try {
    call();
  } catch (err) {
    const e = err as Error;
    if (e.name === invalid.error && e.message.includes(invalid.field)) return undefined;
    return `expected ${invalid.error} naming ${invalid.field}, got ${e.name}: ${e.message}`;
  }
  return `expected ${invalid.error} naming ${invalid.field}, got no error`;
}

// ---------------------------------------------------------------------------------------------

let badInputs = 0;
let lost = 0;
let frames = 0;
let bytes = 0;
let chunks = 0;
let heapBefore = 0;

beforeAll(async () => {
  fc.sample(ops, { numRuns: 20, seed: 1 }); // fast-check fills its grapheme tables on first use
  heapBefore = await heapUsed();
});

afterAll(async () => {
  await closeAllServers();
  const heapAfter = await heapUsed();
  record({
    case: "frame fuzz",
    load: `${RUNS.toLocaleString("en-US")} + ${SOCKET_RUNS.toLocaleString("en-US")} socket runs: ${frames.toLocaleString("en-US")} frames, ${(bytes / 2 ** 20).toFixed(1)} MB in ${chunks.toLocaleString("en-US")} chunks`,
    faults: 0,
    badInputs,
    lost,
    heapBefore,
    heapAfter,
    notes: `${(RUNS + SOCKET_RUNS).toLocaleString("en-US")} runs vs eventsource-parser, seed ${SEED}`,
  });
});

test(`${RUNS.toLocaleString("en-US")} runs: frames cut anywhere parse exactly as intended`, () => {
  fc.assert(
    fc.property(ops, fc.array(fc.nat(), { maxLength: 40 }), (sequence, cuts) => {
      const expected: Expected = { events: [], comments: [], retries: [] };
      const written: Buffer[] = [];
      for (const o of sequence) {
        const invalid = firstInvalid(o);
        if (invalid !== undefined) {
          badInputs++;
          const problem = refusal(() => frameOf(o), invalid);
          if (problem !== undefined) throw new Error(`${JSON.stringify(o.kind)}: ${problem}`);
          continue;
        }
        written.push(frameOf(o).bytes);
        expect1(o, expected);
      }
      const stream = Buffer.concat(written);
      const pieces = splitBytes(stream, cuts);
      frames += written.length;
      bytes += stream.length;
      chunks += pieces.length;
      const parsed = parseChunks(pieces);
      lost += Math.max(0, expected.events.length - parsed.events.length);
      expect(parsed).toEqual({ ...expected, problems: [] });
    }),
    { numRuns: RUNS, seed: SEED },
  );
});

test(`${SOCKET_RUNS.toLocaleString("en-US")} runs through res.sse on a socket: the same bytes, parsed the same`, async () => {
  const middleware = sse({ heartbeat: 0 });
  const app = express();
  let handed: ((stream: SseStream) => void) | undefined;
  app.get("/fuzz", middleware, (_req, res) => handed?.(res.sse.start()));
  const { port } = await listen(app);
  const streamReady = new Promise<SseStream>((resolve) => (handed = resolve));
  const client = await WireClient.open(port, requestHead(port, "/fuzz"));
  client.body = [];
  const stream = await within(streamReady, 5_000, "the stream");
  await waitFor(() => client.comments.length === 1, { what: "the opening comment" });
  client.takeBody();
  client.comments.length = 0;

  await fc.assert(
    fc.asyncProperty(ops, async (sequence) => {
      const expected: Expected = { events: [], comments: [], retries: [] };
      const frameBytes: Buffer[] = [];
      for (const o of sequence) {
        const invalid = firstInvalid(o);
        if (invalid !== undefined) {
          badInputs++;
          const before = middleware.stats().bytes;
          const problem = refusal(() => writeTo(stream, o), invalid);
          if (problem !== undefined) throw new Error(`${o.kind} on the stream: ${problem}`);
          const written = middleware.stats().bytes - before;
          if (written !== 0) throw new Error(`${o.kind} refused, yet ${written} bytes written`);
          continue;
        }
        writeTo(stream, o);
        frameBytes.push(frameOf(o).bytes);
        expect1(o, expected);
      }
      const wanted = Buffer.concat(frameBytes);
      frames += frameBytes.length;
      bytes += wanted.length;
      await waitFor(() => unread(client) >= wanted.length, {
        what: `${wanted.length} bytes`,
        interval: 1,
      }).catch(() => undefined);
      const got = client.takeBody();
      chunks++;
      const events = client.events.splice(0);
      const comments = client.comments.splice(0);
      const retries = client.retries.splice(0);
      lost += Math.max(0, expected.events.length - events.length);
      // Byte for byte (latin1 shows every byte as one character in a diff).
      expect(got.toString("latin1")).toBe(wanted.toString("latin1"));
      expect({ events, comments, retries, problems: client.problems }).toEqual({
        ...expected,
        problems: [],
      });
    }),
    { numRuns: SOCKET_RUNS, seed: SEED, endOnFailure: true },
  );
  await client.close();
  await waitFor(() => middleware.streams.size === 0, { what: "the stream to close" });
});

/** Body bytes kept by `client` and not yet taken. */
function unread(client: WireClient): number {
  return (client.body ?? []).reduce((n, b) => n + b.length, 0);
}
