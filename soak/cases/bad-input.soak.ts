/**
 * Bad input: a corpus of hostile and malformed input through every public call, the request
 * headers and the demo's chat endpoint. Every input must give a clear error at the call (a
 * TypeError/RangeError whose message names the problem) or a correct frame: never a crash, never
 * a corrupt stream. After each one a sentinel event goes down the same stream, and the client (a
 * raw socket that checks the chunked framing, decodes strict UTF-8 and parses with
 * eventsource-parser; the `eventsource` client for the chat) must have parsed exactly the
 * expected events, comments and retries, nothing more.
 */
import express from "express";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { EventSource } from "eventsource";
import type { EventSourceMessage } from "eventsource-parser";
import fc from "fast-check";
import { Channel, Frame, sse, type SseStream } from "@sluice/express-sse";
import { createApp, type DemoApp } from "../../apps/demo/src/app";
import { CHAT_ERRORS } from "../../apps/demo/src/feeds/chat";
import { heapUsed } from "../src/memory";
import { record } from "../src/record";
import { scaled } from "../src/scale";
import { closeAllServers, listen, waitFor } from "../../packages/express-sse/test/helpers/server";
import {
  WireClient,
  linesOf,
  normalizeLineBreaks,
  requestHead,
  wellFormed,
  within,
} from "../src/sse-wire";

/** fast-check generated invalid fields sent through the public calls, on top of the corpus. */
const GENERATED = scaled({ full: 5_000, short: 500 });

// ---------------------------------------------------------------------------------------------
// Bookkeeping: bad inputs tried, sentinels sent and seen.

let badInputs = 0;
const sentinels = { sent: 0, seen: 0 };
let heapBefore = 0;

// The generated inputs. Built here, and sampled once before the heap is measured: fast-check's
// grapheme arbitrary fills a module-level table (~80 MB) on first use, which is not ours to count.
const unit = fc.oneof(
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 }),
  fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
);
const withBreak = fc
  .tuple(
    fc.string({ unit, maxLength: 8 }),
    fc.constantFrom("\r", "\n", "\r\n", "\0"),
    fc.string({ unit, maxLength: 8 }),
  )
  .map(([a, b, c]) => a + b + c);
const badRetry = fc.oneof(
  fc.double().filter((x) => !(Number.isSafeInteger(x) && x >= 0)),
  fc.integer({ max: -1 }),
  fc.constantFrom(2 ** 53, 2 ** 64, Number.MAX_VALUE),
);
type Input =
  | { call: "send" | "frame" | "publish"; field: "event"; value: string }
  | { call: "send" | "frame"; field: "id"; value: string }
  | { call: "send" | "retry" | "frame"; field: "retry"; value: number };
const input: fc.Arbitrary<Input> = fc.oneof(
  fc.record({
    call: fc.constantFrom("send", "frame", "publish"),
    field: fc.constant("event"),
    value: withBreak,
  }),
  fc.record({
    call: fc.constantFrom("send", "frame"),
    field: fc.constant("id"),
    value: withBreak,
  }),
  fc.record({
    call: fc.constantFrom("send", "retry", "frame"),
    field: fc.constant("retry"),
    value: badRetry,
  }),
) as fc.Arbitrary<Input>;

type ErrorClass = typeof TypeError | typeof RangeError | typeof Error;

function describeError(err: unknown): string {
  return err instanceof Error ? `${err.constructor.name}: ${err.message}` : `${String(err)}`;
}

/**
 * What went wrong in the current test, one line per input. Collected rather than thrown, so one
 * run lists every input that misbehaves; each test fails at the end (afterEach) if any did.
 */
let misfires: string[] = [];
beforeEach(() => {
  misfires = [];
});
afterEach(() => {
  expect(misfires).toEqual([]);
});

/** Runs one corpus entry; a failed assertion inside becomes a misfire and the corpus goes on. */
async function attempt(what: string, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (err) {
    misfires.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * Counts one bad input and checks that `call` throws `cls` (exactly that class) with a message
 * matching `message`, synchronously, at the call. `written` (when given) must not move: nothing
 * reached the wire.
 */
function refused(
  what: string,
  call: () => unknown,
  cls: ErrorClass,
  message: RegExp,
  written?: () => number,
): void {
  badInputs++;
  const before = written?.();
  let thrown: unknown = undefined;
  let result: unknown = undefined;
  try {
    result = call();
  } catch (err) {
    thrown = err;
  }
  if (result instanceof Promise) result.catch(() => undefined);
  if (!(thrown instanceof Error) || thrown.constructor !== cls || !message.test(thrown.message)) {
    misfires.push(
      `${what}: expected ${cls.name} matching ${message} at the call, got ` +
        (thrown === undefined ? `no error (returned ${String(result)})` : describeError(thrown)),
    );
  }
  if (written !== undefined && written() !== before) {
    misfires.push(`${what}: ${written() - (before ?? 0)} bytes written`);
  }
}

// ---------------------------------------------------------------------------------------------
// The server under test: plain streams, streams with odd serializers, an echo of Last-Event-ID
// and a Channel. Each handler hands its stream to the test through a queue (opened one by one).

const plain = sse({ heartbeat: 0 });
const boom = new Error("the user serializer exploded");
const throwing = sse({
  heartbeat: 0,
  serialize: () => {
    throw boom;
  },
});
/** Returns `data.out` as it is, whatever it is: the "serializer returning a non-string" case. */
const nonString = sse({ heartbeat: 0, serialize: (data) => (data as { out: string }).out });
const channel = new Channel("bad-input", { history: { max: 5 } });

const waiting: Array<(stream: SseStream) => void> = [];
let unexpectedStreams = 0;
function handOut(stream: SseStream): void {
  const take = waiting.shift();
  if (take === undefined) unexpectedStreams++;
  else take(stream);
}

const app = express();
app.get("/plain", plain, (_req, res) => handOut(res.sse.start()));
app.get("/throwing", throwing, (_req, res) => handOut(res.sse.start()));
app.get("/non-string", nonString, (_req, res) => handOut(res.sse.start()));
app.get("/echo", plain, (_req, res) => {
  res.sse.send(JSON.stringify(res.sse.lastEventId ?? null), { event: "echo" });
  handOut(res.sse);
});
app.get("/chan", plain, (_req, res) => {
  void channel.subscribe(res).then(() => handOut(res.sse));
});

let port = 0;
/** The same app with Node's header limit raised to 256 KB, so a 100 KB header reaches it. */
let bigHeaderServer: http.Server;
let bigPort = 0;

/** A stream under test: the client, the server's stream, and what the client must have parsed. */
interface Session {
  client: WireClient;
  stream: SseStream;
  expected: EventSourceMessage[];
  comments: string[];
  retries: number[];
  counted: number;
}
const sessions: Session[] = [];

async function open(path: string, extraHeaders = "", onPort = port): Promise<Session> {
  const handed = new Promise<SseStream>((resolve) => waiting.push(resolve));
  const client = await WireClient.open(onPort, requestHead(onPort, path, extraHeaders));
  const stream = await within(handed, 5_000, `the stream of ${path}`);
  // Every stream starts with an empty comment (no `retry` option is set).
  const session: Session = {
    client,
    stream,
    expected: [],
    comments: [""],
    retries: [],
    counted: 0,
  };
  sessions.push(session);
  return session;
}

/** Waits for the client to catch up with `session.expected`, then checks it parsed exactly that. */
async function settle(session: Session, what: string): Promise<void> {
  const { client } = session;
  await waitFor(
    () =>
      client.closed ||
      (client.events.length >= session.expected.length &&
        client.comments.length >= session.comments.length &&
        client.retries.length >= session.retries.length),
    { what: `${what}: ${session.expected.length} events`, interval: 1 },
  ).catch(() => undefined);
  const seen = client.events.filter((e) => e.event === "sentinel").length;
  sentinels.seen += seen - session.counted;
  session.counted = seen;
  expect({ what, problems: client.problems }).toEqual({ what, problems: [] });
  expect({ what, events: client.events }).toEqual({ what, events: session.expected });
  expect({ what, comments: client.comments }).toEqual({ what, comments: session.comments });
  expect({ what, retries: client.retries }).toEqual({ what, retries: session.retries });
}

/**
 * Adds events the client must parse, in order. Every sentinel among them (live or replayed) is
 * one expected delivery: `lost` is the deliveries that never arrived.
 */
function expectEvents(session: Session, ...events: EventSourceMessage[]): void {
  for (const event of events) if (event.event === "sentinel") sentinels.sent++;
  session.expected.push(...events);
}

let streamSentinels = 0;

/** Sends a sentinel down the stream (not checked yet: `settle` does). */
function sentinel(session: Session): void {
  const n = ++streamSentinels;
  const data = `sentinel ${n}`;
  expect(session.stream.send(data, { event: "sentinel", id: `s-${n}` })).toBe(true);
  expectEvents(session, { event: "sentinel", id: `s-${n}`, data });
}

async function sentinelAndSettle(session: Session, what: string): Promise<void> {
  sentinel(session);
  await settle(session, what);
}

async function closeSession(session: Session): Promise<void> {
  await session.client.close();
  await waitFor(() => session.stream.closed, { what: "the stream to close" });
}

// The channel side: an observer subscribed from the start must receive every valid publish, in
// order, and nothing else; `published` mirrors what the channel's history should hold.
let observer: Session;
const published: Array<{ id: string; event: string | undefined; data: string }> = [];

/** Publishes a sentinel; every subscriber the test tracks must receive it (one delivery each). */
async function publishSentinel(): Promise<string> {
  const data = `channel sentinel ${published.length + 1}`;
  const id = await channel.publish(data, { event: "sentinel" });
  published.push({ id, event: "sentinel", data });
  const event = { event: "sentinel", id, data };
  for (const s of [observer, ...onChannel]) {
    if (s.stream.closed) continue;
    expectEvents(s, event);
  }
  return id;
}

/** Sessions subscribed to the channel besides the observer: they get every later publish. */
const onChannel = new Set<Session>();

/** A published event as the client must parse it. */
function asReceived(p: {
  id: string;
  event: string | undefined;
  data: string;
}): EventSourceMessage {
  return { id: p.id, event: p.event, data: normalizeLineBreaks(wellFormed(p.data)) };
}

/** The error `call` throws (identity matters: a user's error must reach the caller as is). */
function thrownBy(call: () => unknown): unknown {
  try {
    call();
  } catch (err) {
    return err;
  }
  return undefined;
}

beforeAll(async () => {
  ({ port } = await listen(app));
  bigHeaderServer = http.createServer({ maxHeaderSize: 256 * 1024 }, app);
  await new Promise<void>((resolve) => bigHeaderServer.listen(0, "127.0.0.1", resolve));
  bigPort = (bigHeaderServer.address() as AddressInfo).port;
  fc.sample(input, { numRuns: 10, seed: 1 }); // warm fast-check's tables (see above)
  await (await fetch(`http://127.0.0.1:${port}/warm-up`)).text(); // Node loads undici lazily
  heapBefore = await heapUsed();
  observer = await open("/chan");
  await publishSentinel();
  await settle(observer, "observer");
});

afterAll(async () => {
  // The observer was subscribed throughout: it must have every valid publish, in order, and
  // nothing else.
  misfires = [];
  await attempt("the observer at the end", () => settle(observer, "observer at the end"));
  const lateMisfires = misfires;
  for (const s of sessions) if (!s.client.closed) await s.client.close();
  await waitFor(() => plain.streams.size === 0 && channel.size === 0, {
    what: "every stream to close",
  }).catch(() => undefined);
  const streamsLeft = plain.streams.size + throwing.streams.size + nonString.streams.size;
  const subscribersLeft = channel.size;
  await channel.close();
  bigHeaderServer.closeAllConnections();
  await new Promise<void>((resolve) => bigHeaderServer.close(() => resolve()));
  await closeAllServers();
  const streamsOpened = sessions.length;
  sessions.length = 0; // the test's own records of every client and event
  published.length = 0;
  const heapAfter = await heapUsed();
  record({
    case: "bad input",
    load: `${streamsOpened} streams + demo chat, ${sentinels.sent.toLocaleString("en-US")} sentinel deliveries`,
    faults: 0,
    badInputs,
    lost: sentinels.sent - sentinels.seen,
    heapBefore,
    heapAfter,
    notes: `incl. ${GENERATED.toLocaleString("en-US")} fast-check inputs; ${streamsLeft} streams, ${subscribersLeft} subscribers left`,
  });
  expect(lateMisfires).toEqual([]);
  expect(unexpectedStreams).toBe(0);
  expect(streamsLeft).toBe(0);
  expect(subscribersLeft).toBe(0);
  expect(sentinels.seen).toBe(sentinels.sent);
});

// ---------------------------------------------------------------------------------------------
// Field values: every public call that takes an event name, an id or a retry.

const BREAKS = ["\r", "\n", "\r\n", "\0"];
/** Values with a CR, LF, CRLF or NUL somewhere: alone, inside, leading, trailing, injecting. */
const WITH_BREAKS = BREAKS.flatMap((b) => [b, `a${b}b`, `${b}x`, `x${b}`, `${b}${b}`]).concat([
  "ok\n\nevent: admin\ndata: x",
  "1\r\nid: 999\r\n\r\n",
  "x\rretry: 1",
]);
const CONTROL_IN_ID =
  /^The "id" field must not contain control characters other than tab \(U\+00(0[1-8BCE-F]|1[0-9A-F]|7F) at index \d+\): /;
const BLANK_AT_END = /^The "id" field must not begin or end with a space or tab: HTTP strips them /;
const UNSENDABLE_IDS: Array<[string, RegExp]> = [
  ...Array.from({ length: 0x20 }, (_, c) => c)
    .filter((c) => c !== 0x00 && c !== 0x09 && c !== 0x0a && c !== 0x0d)
    .map((c): [string, RegExp] => [`a${String.fromCharCode(c)}b`, CONTROL_IN_ID]),
  ["\x7f", CONTROL_IN_ID],
  [" 1", BLANK_AT_END],
  ["1 ", BLANK_AT_END],
  ["\t1", BLANK_AT_END],
  ["1\t", BLANK_AT_END],
  [" ", BLANK_AT_END],
];
const NOT_STRINGS: Array<[unknown, string]> = [
  [42, "number 42"],
  [null, "null"],
  [true, "boolean true"],
  [{}, "an object"],
  [["a"], "an array"],
  [10n, "bigint 10"],
];
const BAD_NUMERIC_IDS = [-1, 1.5, NaN, Infinity, -Infinity, 2 ** 53, -0.5];
const BAD_RETRY_NUMBERS = [-1, 1.5, NaN, Infinity, -Infinity, 2 ** 53, 0.1, -1e-9];
const BAD_RETRY_TYPES: Array<[unknown, string]> = [
  ["100", "a string"],
  ["abc", "a string"],
  ["", "a string"],
  [null, "null"],
  [{}, "an object"],
  [true, "boolean true"],
  [100n, "bigint 100"],
];

const EVENT_BREAK = /^The "event" field must not contain CR, LF or NUL characters$/;
const ID_BREAK = /^The "id" field must not contain CR, LF or NUL characters$/;
/** `got <described>` at the end of a message (optionally followed by a parenthesised hint). */
const describedAs = (d: string) =>
  new RegExp(`got ${d.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?: \\(.*\\))?$`);

test("event names and ids with CR, LF, CRLF or NUL are refused by send, Frame.event, publish and pipe", async () => {
  const s = await open("/plain");
  const bytes = () => plain.stats().bytes;
  const historyBefore = channel.stats().events;
  for (const bad of WITH_BREAKS) {
    const shown = JSON.stringify(bad);
    refused(
      `send event ${shown}`,
      () => s.stream.send("x", { event: bad }),
      TypeError,
      EVENT_BREAK,
      bytes,
    );
    sentinel(s);
    refused(`send id ${shown}`, () => s.stream.send("x", { id: bad }), TypeError, ID_BREAK, bytes);
    sentinel(s);
    refused(
      `send event+id ${shown}`,
      () => s.stream.send("x", { event: "ok", id: bad }),
      TypeError,
      ID_BREAK,
      bytes,
    );
    sentinel(s);
    refused(
      `Frame.event event ${shown}`,
      () => Frame.event("x", { event: bad }),
      TypeError,
      EVENT_BREAK,
    );
    sentinel(s);
    refused(`Frame.event id ${shown}`, () => Frame.event("x", { id: bad }), TypeError, ID_BREAK);
    sentinel(s);
    refused(
      `publish event ${shown}`,
      () => channel.publish("x", { event: bad }),
      TypeError,
      EVENT_BREAK,
    );
    sentinel(s);
  }
  // Ids a client could not send back in Last-Event-ID: control characters, DEL, a space or tab
  // at either end.
  for (const [bad, m] of UNSENDABLE_IDS) {
    const shown = JSON.stringify(bad);
    refused(`send id ${shown}`, () => s.stream.send("x", { id: bad }), TypeError, m, bytes);
    sentinel(s);
    refused(`Frame.event id ${shown}`, () => Frame.event("x", { id: bad }), TypeError, m);
    sentinel(s);
    badInputs++;
    await expect(s.stream.pipe(["x"], { id: () => bad })).rejects.toThrow(m);
    sentinel(s);
  }
  for (const [value, described] of NOT_STRINGS) {
    const m = new RegExp(`^The "event" field must be a string, ${describedAs(described).source}`);
    refused(
      `send event ${described}`,
      () => s.stream.send("x", { event: value as string }),
      TypeError,
      m,
      bytes,
    );
    sentinel(s);
    refused(
      `Frame.event event ${described}`,
      () => Frame.event("x", { event: value as string }),
      TypeError,
      m,
    );
    sentinel(s);
    refused(
      `publish event ${described}`,
      () => channel.publish("x", { event: value as string }),
      TypeError,
      m,
    );
    sentinel(s);
  }
  const EMPTY = /^The "event" field must not be empty; omit it to send a "message" event$/;
  refused("send event ''", () => s.stream.send("x", { event: "" }), TypeError, EMPTY, bytes);
  refused("Frame.event event ''", () => Frame.event("x", { event: "" }), TypeError, EMPTY);
  refused("publish event ''", () => channel.publish("x", { event: "" }), TypeError, EMPTY);
  sentinel(s);
  for (const id of BAD_NUMERIC_IDS) {
    const m = /^The "id" field must be a non-negative safe integer or a string, got /;
    refused(`send id ${id}`, () => s.stream.send("x", { id }), RangeError, m, bytes);
    refused(`Frame.event id ${id}`, () => Frame.event("x", { id }), RangeError, m);
    sentinel(s);
  }
  for (const [value, described] of NOT_STRINGS.filter(([v]) => typeof v !== "number")) {
    const m = new RegExp(
      `^The "id" field must be a string or a number, ${describedAs(described).source}`,
    );
    refused(
      `send id ${described}`,
      () => s.stream.send("x", { id: value as string }),
      TypeError,
      m,
      bytes,
    );
    sentinel(s);
  }
  // Options that are not an object at all.
  for (const [options, described] of [
    ["event", "a string"],
    [null, "null"],
    [7, "number 7"],
  ] as Array<[unknown, string]>) {
    refused(
      `send options ${described}`,
      () => s.stream.send("x", options as object),
      TypeError,
      new RegExp(`^Event options must be an object, ${describedAs(described).source}`),
      bytes,
    );
    refused(
      `publish options ${described}`,
      () => channel.publish("x", options as { event: string }),
      TypeError,
      new RegExp(`^publish\\(\\) options must be an object, ${describedAs(described).source}`),
    );
    sentinel(s);
  }
  await settle(s, "after the field corpus");
  // pipe(): the event name comes from an option (string or function). A bad one must not reach
  // the wire either; pipe() rejects with the send() error and the stream stays usable.
  for (const bad of ["a\nb", "\r\n", "x\0"]) {
    badInputs++;
    await expect(s.stream.pipe(["x"], { event: bad })).rejects.toThrow(EVENT_BREAK);
    sentinel(s);
    badInputs++;
    await expect(s.stream.pipe(["x"], { event: () => bad })).rejects.toThrow(EVENT_BREAK);
    sentinel(s);
    badInputs++;
    await expect(s.stream.pipe(["x"], { id: () => bad })).rejects.toThrow(ID_BREAK);
    sentinel(s);
  }
  // pipe() is async: its own option checks reject (nothing is read from the source).
  badInputs++;
  await expect(s.stream.pipe(["x"], { event: 42 as unknown as string })).rejects.toThrow(
    /^The "event" option of pipe\(\) must be a string or a function, got number 42$/,
  );
  sentinel(s);
  await settle(s, "after pipe()");
  // Nothing of the refused publishes was stored.
  expect(channel.stats().events).toBe(historyBefore);
  await settle(observer, "observer after refused publishes");
  await closeSession(s);
});

test("retry values that are not non-negative safe integers are refused everywhere", async () => {
  const s = await open("/plain");
  const bytes = () => plain.stats().bytes;
  for (const ms of BAD_RETRY_NUMBERS) {
    const m = new RegExp(
      `^The "retry" field must be a non-negative safe integer, got ${String(ms).replace(/[.+]/g, "\\$&")}$`,
    );
    refused(`retry(${ms})`, () => s.stream.retry(ms), RangeError, m, bytes);
    sentinel(s);
    refused(`send retry ${ms}`, () => s.stream.send("x", { retry: ms }), RangeError, m, bytes);
    sentinel(s);
    refused(`Frame.retry(${ms})`, () => Frame.retry(ms), RangeError, m);
    refused(`Frame.event retry ${ms}`, () => Frame.event("x", { retry: ms }), RangeError, m);
    sentinel(s);
  }
  for (const [value, described] of BAD_RETRY_TYPES) {
    const m = new RegExp(`^The "retry" field must be a number, ${describedAs(described).source}`);
    refused(`retry(${described})`, () => s.stream.retry(value as number), TypeError, m, bytes);
    sentinel(s);
    refused(
      `send retry ${described}`,
      () => s.stream.send("x", { retry: value as number }),
      TypeError,
      m,
      bytes,
    );
    sentinel(s);
    refused(`Frame.retry(${described})`, () => Frame.retry(value as number), TypeError, m);
    sentinel(s);
  }
  refused(
    "retry()",
    () => (s.stream.retry as (ms?: number) => boolean)(),
    TypeError,
    /^The "retry" field must be a number, got undefined$/,
    bytes,
  );
  sentinel(s);
  // The edges that are valid: 0, -0 (written as 0) and the largest safe integer.
  s.stream.retry(0);
  s.stream.retry(-0);
  s.stream.retry(Number.MAX_SAFE_INTEGER);
  s.retries.push(0, 0, Number.MAX_SAFE_INTEGER);
  await sentinelAndSettle(s, "after the retry corpus");
  await closeSession(s);
});

test("comments: line breaks give several comment lines, nothing else; non-strings are refused", async () => {
  const s = await open("/plain");
  const bytes = () => plain.stats().bytes;
  const texts = [
    "a\nb",
    "a\r\nb\rc\nd",
    "\n",
    "\r\n\r\n",
    "",
    "x\n\ndata: injected\nevent: admin\n\n",
    "\rid: 999\r\rretry: 1\r",
    ": nested",
    "nul \0 inside",
    "lone \uD800 surrogate",
  ];
  for (const text of texts) {
    badInputs++;
    expect(s.stream.comment(text)).toBe(true);
    s.comments.push(...linesOf(wellFormed(text)));
    await sentinelAndSettle(s, `comment ${JSON.stringify(text)}`);
    const frame = Frame.comment(text);
    badInputs++;
    expect(s.stream.sendFrame(frame)).toBe(true);
    s.comments.push(...linesOf(wellFormed(text)));
    await sentinelAndSettle(s, `Frame.comment ${JSON.stringify(text)}`);
  }
  for (const [value, described] of [...NOT_STRINGS, [undefined, "undefined"]] as Array<
    [unknown, string]
  >) {
    const m = new RegExp(`^Comment text must be a string, ${describedAs(described).source}`);
    refused(`comment(${described})`, () => s.stream.comment(value as string), TypeError, m, bytes);
    refused(`Frame.comment(${described})`, () => Frame.comment(value as string), TypeError, m);
    sentinel(s);
  }
  await settle(s, "after the comment corpus");
  await closeSession(s);
});

test("sendFrame takes only a Frame", async () => {
  const s = await open("/plain");
  const bytes = () => plain.stats().bytes;
  const fakes: Array<[unknown, string]> = [
    ["data: forged\n\n", "a string"],
    [Buffer.from("data: forged\n\n"), "an object"],
    [{ text: "data: forged\n\n", bytes: Buffer.from("data: forged\n\n") }, "an object"],
    [null, "null"],
    [undefined, "undefined"],
  ];
  for (const [fake, described] of fakes) {
    refused(
      `sendFrame(${described})`,
      () => s.stream.sendFrame(fake as Frame),
      TypeError,
      new RegExp(`^sendFrame\\(\\) takes a Frame, ${describedAs(described).source}`),
      bytes,
    );
    sentinel(s);
  }
  // A "Frame" forged around the private constructor (it passes instanceof): it must not reach
  // the wire either. (The TypeError comes from Buffer.from, in Node's realm: checked by name.)
  badInputs++;
  const forged = Object.create(Frame.prototype) as Frame;
  const before = bytes();
  const err = thrownBy(() => s.stream.sendFrame(forged)) as Error | undefined;
  if (err?.name !== "TypeError") misfires.push(`forged Frame: got ${describeError(err)}`);
  if (bytes() !== before) misfires.push(`forged Frame: ${bytes() - before} bytes written`);
  sentinel(s);
  await settle(s, "after the sendFrame corpus");
  await closeSession(s);
});

test("lone surrogates reach the client as U+FFFD, correctly framed, through every path", async () => {
  const s = await open("/plain");
  const subscriber = await open("/chan");
  onChannel.add(subscriber);
  const datas = [
    "\uD800",
    "a\uDFFFb",
    "\uDC00\uD800",
    "x\uD800\ny\uDBFF\r\nz",
    "\uD83D\uDE00 ok pair",
    "\uDFFF".repeat(1000),
  ];
  for (const data of datas) {
    const shown = JSON.stringify(data).slice(0, 40);
    badInputs++;
    s.stream.send(data);
    expectEvents(s, { data: normalizeLineBreaks(wellFormed(data)) });
    badInputs++;
    s.stream.sendFrame(Frame.event(data, { event: "framed" }));
    expectEvents(s, { event: "framed", data: normalizeLineBreaks(wellFormed(data)) });
    // As JSON: JSON.stringify escapes lone surrogates (\ud800), so the client gets them back exactly.
    badInputs++;
    s.stream.send({ data });
    expectEvents(s, { data: JSON.stringify({ data }) });
    await sentinelAndSettle(s, `data ${shown}`);
    expect(JSON.parse(s.client.events.at(-2)!.data)).toEqual({ data });
    // The same through a Channel: stored, replayed and fanned out as U+FFFD.
    badInputs++;
    const id = await channel.publish(data);
    published.push({ id, event: undefined, data });
    for (const t of [observer, subscriber])
      expectEvents(t, { id, data: normalizeLineBreaks(wellFormed(data)) });
    await publishSentinel();
    await settle(subscriber, `published ${shown}`);
  }
  // Event names with a lone surrogate are legal (no CR, LF, NUL) and go out as U+FFFD. An id
  // with one is refused: it would reach the client as U+FFFD, so it could never come back.
  badInputs++;
  s.stream.send("x", { event: "ev\uD800", id: "id" });
  expectEvents(s, { event: "ev\uFFFD", id: "id", data: "x" });
  await sentinelAndSettle(s, "event with a lone surrogate");
  refused(
    "send id with a lone surrogate",
    () => s.stream.send("x", { id: "id\uDC00" }),
    TypeError,
    /^The "id" field must not contain a lone surrogate \(U\+DC00 at index 2\): /,
    () => plain.stats().bytes,
  );
  sentinel(s);
  await sentinelAndSettle(s, "id with a lone surrogate");
  // Said in bytes: the body carries EF BF BD, never the CESU/WTF-8 bytes ED A0 80.
  expect(s.client.problems).toEqual([]);
  await closeSession(s);
  await closeSession(subscriber);
  await settle(observer, "observer after surrogates");
});

test("data cannot inject fields or end an event early", async () => {
  const s = await open("/plain");
  const subscriber = await open("/chan");
  onChannel.add(subscriber);
  const hostile = [
    "hi\n\nevent: admin\ndata: x",
    "\r\nid: 999\r\n\r\n",
    "data: x\n\nevent: admin\n\n",
    "\revent: admin\r\rdata: y",
    ": comment\n\nevent: admin\ndata: z",
    "retry: 1\n\n",
    "id: 1\0\n\n",
    "\n\n\n",
    " leading space",
    ":colon first",
    "event:admin",
  ];
  for (const data of hostile) {
    const expected = normalizeLineBreaks(data);
    badInputs++;
    s.stream.send(data);
    expectEvents(s, { data: expected });
    badInputs++;
    s.stream.send(data, { event: "named", id: "7" });
    expectEvents(s, { event: "named", id: "7", data: expected });
    badInputs++;
    const id = await channel.publish(data);
    published.push({ id, event: undefined, data });
    for (const t of [observer, subscriber]) expectEvents(t, { id, data: expected });
    await sentinelAndSettle(s, `data ${JSON.stringify(data)}`);
  }
  await publishSentinel();
  await settle(subscriber, "subscriber after hostile data");
  expect(s.client.events.some((e) => e.event === "admin")).toBe(false);
  expect(s.client.retries).toEqual([]);
  await closeSession(s);
  await closeSession(subscriber);
});

test("serializers: circular, BigInt and unserializable data, a throwing serializer, non-string results", async () => {
  const s = await open("/plain");
  const bytes = () => plain.stats().bytes;
  const circular: Record<string, unknown> = { a: 1 };
  circular["self"] = circular;
  const deep: Record<string, unknown> = {};
  deep["list"] = [1, { back: deep }];
  const historyBefore = channel.stats().events;
  const CIRCULAR = /circular/i;
  const NOT_A_STRING = /^The serializer must return a string, got /;
  const cases: Array<[string, unknown, ErrorClass, RegExp]> = [
    ["a circular object", circular, TypeError, CIRCULAR],
    ["a circular array path", deep, TypeError, CIRCULAR],
    ["a BigInt", { n: 10n }, TypeError, /BigInt/],
    ["undefined", undefined, TypeError, /^The serializer must return a string, got undefined/],
    ["a function", () => 1, TypeError, NOT_A_STRING],
    ["a symbol", Symbol("s"), TypeError, NOT_A_STRING],
  ];
  for (const [what, data, cls, m] of cases) {
    refused(`send ${what}`, () => s.stream.send(data), cls, m, bytes);
    sentinel(s);
    refused(`publish ${what}`, () => channel.publish(data), cls, m);
    sentinel(s);
  }
  // A toJSON that throws: the caller gets that very error.
  const own = new Error("toJSON failed");
  badInputs++;
  expect(
    thrownBy(() =>
      s.stream.send({
        toJSON: () => {
          throw own;
        },
      }),
    ),
  ).toBe(own);
  sentinel(s);
  await settle(s, "after the default serializer corpus");
  expect(channel.stats().events).toBe(historyBefore);
  await closeSession(s);

  // A user serializer that throws: thrown to the caller as is; strings never reach it.
  const t = await open("/throwing");
  const tBytes = () => throwing.stats().bytes;
  for (const data of [{}, [1], 42, null]) {
    badInputs++;
    const before = tBytes();
    expect(thrownBy(() => t.stream.send(data))).toBe(boom);
    expect(tBytes()).toBe(before);
    await sentinelAndSettle(t, `throwing serializer on ${JSON.stringify(data)}`);
  }
  await closeSession(t);
  const throwingChannel = new Channel("bad-input-throwing", {
    serialize: () => {
      throw boom;
    },
  });
  badInputs++;
  expect(thrownBy(() => throwingChannel.publish({}))).toBe(boom);
  expect(throwingChannel.stats().events).toBe(0);
  await throwingChannel.close();

  // A user serializer that returns something else than a string.
  const n = await open("/non-string");
  const nBytes = () => nonString.stats().bytes;
  const results: Array<[unknown, string]> = [
    [42, "number 42"],
    [null, "null"],
    [undefined, "undefined"],
    [{ toString: () => "data: forged" }, "an object"],
    [Buffer.from("data: forged\n\n"), "an object"],
    [["data: forged"], "an array"],
    [true, "boolean true"],
  ];
  const nonStringChannel = new Channel("bad-input-non-string", {
    serialize: (data) => (data as { out: string }).out,
  });
  for (const [out, described] of results) {
    refused(
      `serializer returning ${described}`,
      () => n.stream.send({ out }),
      TypeError,
      new RegExp(`^The serializer must return a string, ${describedAs(described).source}`),
      nBytes,
    );
    sentinel(n);
    refused(
      `channel serializer returning ${described}`,
      () => nonStringChannel.publish({ out }),
      TypeError,
      new RegExp(`^The serializer must return a string, ${describedAs(described).source}`),
    );
    sentinel(n);
  }
  expect(nonStringChannel.stats().events).toBe(0);
  await nonStringChannel.close();
  // A serializer that returns a string with line breaks is framed like any data.
  badInputs++;
  n.stream.send({ out: "a\n\nevent: admin" });
  expectEvents(n, { data: "a\n\nevent: admin" });
  await sentinelAndSettle(n, "after the non-string serializer corpus");
  await closeSession(n);
});

test("channel.publish with bad input: refused at the call, nothing stored, subscribers unaffected", async () => {
  const subscriber = await open("/chan");
  onChannel.add(subscriber);
  const eventsBefore = channel.stats().events;
  const circular: Record<string, unknown> = {};
  circular["me"] = circular;
  const attempts: Array<[string, () => unknown, ErrorClass, RegExp]> = [
    ["event with LF", () => channel.publish("x", { event: "a\nb" }), TypeError, EVENT_BREAK],
    ["event with CR", () => channel.publish("x", { event: "a\rb" }), TypeError, EVENT_BREAK],
    ["event with CRLF", () => channel.publish("x", { event: "\r\n" }), TypeError, EVENT_BREAK],
    ["event with NUL", () => channel.publish("x", { event: "\0" }), TypeError, EVENT_BREAK],
    ["empty event", () => channel.publish("x", { event: "" }), TypeError, /must not be empty/],
    [
      "numeric event",
      () => channel.publish("x", { event: 1 as unknown as string }),
      TypeError,
      /must be a string, got number 1$/,
    ],
    [
      "null options",
      () => channel.publish("x", null as unknown as { event: string }),
      TypeError,
      /^publish\(\) options must be an object, got null$/,
    ],
    ["circular data", () => channel.publish(circular), TypeError, /circular/i],
    [
      "undefined data",
      () => channel.publish(undefined),
      TypeError,
      /^The serializer must return a string, got undefined \(JSON.stringify returns undefined for undefined and functions\)$/,
    ],
    [
      "function data",
      () => channel.publish(() => 1),
      TypeError,
      /^The serializer must return a string, got undefined \(JSON.stringify returns undefined for undefined and functions\)$/,
    ],
    ["BigInt data", () => channel.publish(1n), TypeError, /BigInt/],
  ];
  for (const [what, call, cls, m] of attempts) {
    refused(`publish ${what}`, call, cls, m);
    await publishSentinel();
  }
  // subscribe() with a bad target or options: refused at the call.
  refused(
    "subscribe(null)",
    () => channel.subscribe(null as unknown as SseStream),
    TypeError,
    /^subscribe\(\) needs res\.sse/,
  );
  refused(
    "subscribe({})",
    () => channel.subscribe({} as SseStream),
    TypeError,
    /^subscribe\(\) needs res\.sse/,
  );
  refused(
    "subscribe filter 42",
    () => channel.subscribe(subscriber.stream, { filter: 42 as unknown as () => boolean }),
    TypeError,
    /^The "filter" option must be a function, got number 42$/,
  );
  refused(
    "subscribe options null",
    () => channel.subscribe(subscriber.stream, null as unknown as object),
    TypeError,
    /^subscribe\(\) options must be an object, got null$/,
  );
  await publishSentinel();
  await settle(subscriber, "subscriber after refused publishes");
  await settle(observer, "observer after refused publishes");
  // Nothing stored: only the sentinels were published, and a resume from before them replays
  // exactly those (history holds 5).
  expect(channel.stats().events - eventsBefore).toBe(attempts.length + 1);
  const resumeFrom = published[published.length - 4]!;
  const replay = await open("/chan", `Last-Event-ID: ${resumeFrom.id}\r\n`);
  expectEvents(replay, ...published.slice(-3).map(asReceived));
  await settle(replay, "replay after refused publishes");
  await closeSession(replay);
  await closeSession(subscriber);
});

test(`${GENERATED.toLocaleString("en-US")} generated invalid fields are refused, and the stream stays exact`, async () => {
  const s = await open("/plain");
  const bytes = () => plain.stats().bytes;
  const inputs = fc.sample(input, { numRuns: GENERATED, seed: 20_261_122 });
  const historyBefore = channel.stats().events;
  for (const [i, one] of inputs.entries()) {
    const what = `generated #${i} ${one.call} ${one.field} ${JSON.stringify(one.value)}`;
    if (one.field === "retry") {
      const m = /^The "retry" field must be a non-negative safe integer, got /;
      if (one.call === "retry")
        refused(what, () => s.stream.retry(one.value), RangeError, m, bytes);
      else if (one.call === "send")
        refused(what, () => s.stream.send("x", { retry: one.value }), RangeError, m, bytes);
      else refused(what, () => Frame.event("x", { retry: one.value }), RangeError, m);
    } else {
      const m = one.field === "event" ? EVENT_BREAK : ID_BREAK;
      const fields = { [one.field]: one.value };
      if (one.call === "send") refused(what, () => s.stream.send("x", fields), TypeError, m, bytes);
      else if (one.call === "frame") refused(what, () => Frame.event("x", fields), TypeError, m);
      else refused(what, () => channel.publish("x", fields), TypeError, m);
    }
    sentinel(s);
    if (i % 250 === 249) await settle(s, `after ${what}`);
  }
  await settle(s, "after the generated inputs");
  expect(channel.stats().events).toBe(historyBefore);
  await closeSession(s);
});

// ---------------------------------------------------------------------------------------------
// Last-Event-ID: on a plain stream (`res.sse.lastEventId`) and on a Channel subscribe.

test("Last-Event-ID: oversized, invalid UTF-8, CR/LF/NUL, odd but valid — a 400/431, or an exact echo and a reset or clean replay", async () => {
  const resetOf = (reason: "unknown" | "too-old"): EventSourceMessage => {
    const newest = published.at(-1)!.id;
    const oldest = published.at(-Math.min(5, published.length))!.id;
    return {
      event: "reset",
      id: newest,
      data: JSON.stringify({ reason, oldestId: oldest, newestId: newest }),
    };
  };
  // Make sure the history has been trimmed, so the first id is too old.
  while (published.length < 8) await publishSentinel();
  const first = published[0]!.id;
  const epoch = first.split("-")[0]!;

  /** A header value that reaches the handler: the echo and the channel must both cope. */
  async function accepted(
    what: string,
    header: Buffer,
    seen: (echoed: string | null) => boolean,
    outcome: "unknown" | "too-old" | { replayFrom: number } | "live",
    onPort = port,
  ): Promise<void> {
    await attempt(`${what} on /echo`, () => onEcho(what, header, seen, onPort));
    await attempt(`${what} on a channel`, () => onTheChannel(what, header, outcome, onPort));
  }

  /** `res.sse.lastEventId` is echoed back as an event; then a sentinel. */
  async function onEcho(
    what: string,
    header: Buffer,
    seen: (echoed: string | null) => boolean,
    onPort: number,
  ): Promise<void> {
    badInputs++;
    const echo = await open("/echo", header.toString("latin1"), onPort);
    try {
      await waitFor(() => echo.client.events.length > 0 || echo.client.closed, {
        what: `${what}: the echo`,
      }).catch(() => undefined);
      const data = echo.client.events[0]?.data;
      const echoed = data === undefined ? undefined : (JSON.parse(data) as string | null);
      if (data === undefined || echoed === undefined || !seen(echoed)) {
        throw new Error(`lastEventId echoed as ${String(JSON.stringify(echoed)).slice(0, 80)}`);
      }
      expectEvents(echo, { event: "echo", data });
      await sentinelAndSettle(echo, `${what} on /echo`);
    } finally {
      await closeSession(echo);
    }
  }

  /** A Channel subscriber: a reset, a clean replay or nothing, then a live sentinel. */
  async function onTheChannel(
    what: string,
    header: Buffer,
    outcome: "unknown" | "too-old" | { replayFrom: number } | "live",
    onPort: number,
  ): Promise<void> {
    badInputs++;
    const sub = await open("/chan", header.toString("latin1"), onPort);
    try {
      if (outcome === "unknown" || outcome === "too-old") expectEvents(sub, resetOf(outcome));
      else if (outcome !== "live")
        expectEvents(sub, ...published.slice(outcome.replayFrom + 1).map(asReceived));
      await settle(sub, `${what} on a channel`);
      onChannel.add(sub);
      await publishSentinel();
      await settle(sub, `${what} on a channel, then live`);
    } finally {
      onChannel.delete(sub);
      await closeSession(sub);
    }
  }

  /** A header Node's parser refuses: the status, no handler run, and the server still serves. */
  async function rejected(what: string, header: Buffer, status: number): Promise<void> {
    await attempt(what, () => rejectedOnce(what, header, status));
  }

  async function rejectedOnce(what: string, header: Buffer, status: number): Promise<void> {
    const onPort = port;
    badInputs++;
    const subscribersBefore = channel.size;
    const client = await WireClient.open(onPort, requestHead(onPort, "/chan", header));
    await waitFor(() => client.closed, { what: `${what}: the server to close` }).catch(() => {});
    if (!client.closed) await client.close(); // accepted after all: the assertion below says so
    expect({ what, status: client.status, events: client.events.length }).toEqual({
      what,
      status,
      events: 0,
    });
    expect(channel.size).toBe(subscribersBefore);
    const after = await open("/plain", "", onPort);
    try {
      await sentinelAndSettle(after, `${what}: the server still serves`);
    } finally {
      await closeSession(after);
    }
  }

  const h = (value: string | Buffer, name = "Last-Event-ID") =>
    Buffer.concat([
      Buffer.from(`${name}: `, "latin1"),
      typeof value === "string" ? Buffer.from(value, "latin1") : value,
      Buffer.from("\r\n", "latin1"),
    ]);
  const same = (v: string) => (echoed: string | null) => echoed === v;

  // 100 KB: Node refuses it (431) under its default 16 KB header limit ...
  const big = "a".repeat(100 * 1024);
  await rejected("a 100 KB Last-Event-ID", h(big), 431);
  await rejected("a 100 KB id-shaped Last-Event-ID", h(`${epoch}-${"1".repeat(100 * 1024)}`), 431);
  // ... and with the limit raised it reaches the handler: echoed whole, unknown to the channel.
  await accepted("a 100 KB Last-Event-ID", h(big), same(big), "unknown", bigPort);
  await accepted(
    "a 100 KB id-shaped Last-Event-ID",
    h(`${epoch}-${"1".repeat(100 * 1024)}`),
    (v) => v?.length === 100 * 1024 + 9,
    "unknown",
    bigPort,
  );
  await accepted(
    "a 257-character id",
    h(`${epoch}-${"9".repeat(248)}`),
    (v) => v?.length === 257,
    "unknown",
  );

  // Invalid UTF-8 bytes: Node passes obs-text through (as latin1); whatever the reading, the
  // stream must open, echo a string and the channel must reset.
  const badUtf8 = Buffer.from([
    0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0xf0, 0x28, 0x8c, 0x28, 0xc0, 0xaf,
  ]);
  const readings = (bytes: Buffer) => (v: string | null) =>
    v === bytes.toString("latin1") || v === bytes.toString("utf8");
  await accepted("invalid UTF-8 bytes", h(badUtf8), readings(badUtf8), "unknown");
  await accepted(
    "a valid id followed by invalid UTF-8",
    h(Buffer.concat([Buffer.from(first, "latin1"), badUtf8])),
    readings(Buffer.concat([Buffer.from(first, "latin1"), badUtf8])),
    "unknown",
  );
  const utf8 = Buffer.from("é漢🎉", "utf8");
  await accepted("non-ASCII UTF-8", h(utf8), readings(utf8), "unknown");

  // CR, LF, NUL and other controls inside the value: Node's parser answers 400 itself.
  for (const [what, value] of [
    ["a CR inside", "1\r2"],
    ["an LF inside", "1\n2"],
    ["a bare LF line end", "12\n"],
    ["a NUL inside", "1\x002"],
    ["a NUL alone", "\x00"],
    ["BEL", "1\x072"],
    ["DEL", "1\x7f2"],
    ["a folded continuation line", "1\r\n 2"],
  ]) {
    await rejected(
      `Last-Event-ID with ${what}`,
      Buffer.from(`Last-Event-ID: ${value}\r\n`, "latin1"),
      400,
    );
  }
  await rejected("a space before the colon", Buffer.from("Last-Event-ID : 1\r\n", "latin1"), 400);

  // CRLF inside the value ends the header: the rest is another header, never stream content.
  await accepted(
    "CRLF then 'event: admin'",
    Buffer.from("Last-Event-ID: a\r\nevent: admin\r\n", "latin1"),
    same("a"),
    "unknown",
  );
  // Odd but valid.
  await accepted("a tab inside", h("1\t2"), same("1\t2"), "unknown");
  await accepted("only whitespace", h(" \t "), same(""), "live");
  await accepted("empty", h(""), same(""), "live");
  await accepted("lower-case name", h("x", "last-event-id"), same("x"), "unknown");
  await accepted("upper-case name", h("x", "LAST-EVENT-ID"), same("x"), "unknown");
  await accepted(
    "two headers",
    Buffer.concat([h("first"), h("second")]),
    (v) => v === "first" || v === "second",
    "unknown",
  );
  await accepted("id of another channel epoch", h(`zzzzzzzz-1`), same("zzzzzzzz-1"), "unknown");
  await accepted("sequence 0", h(`${epoch}-0`), same(`${epoch}-0`), "unknown");
  await accepted("an id from the future", h(`${epoch}-999999`), same(`${epoch}-999999`), "unknown");
  await accepted("sequence with an exponent", h(`${epoch}-1e3`), same(`${epoch}-1e3`), "unknown");
  await accepted("a negative sequence", h(`${epoch}--1`), same(`${epoch}--1`), "unknown");
  await accepted("a path", h("../../etc/passwd"), same("../../etc/passwd"), "unknown");
  await accepted("a trimmed-away id (too old)", h(first), same(first), "too-old");
  const recent = published.length - 3;
  await accepted(
    "a recent id padded with whitespace (clean replay)",
    h(` \t${published[recent]!.id}\t `),
    same(published[recent]!.id),
    { replayFrom: recent },
  );
  await accepted(
    "the newest id (nothing to replay)",
    h(published.at(-1)!.id),
    same(published.at(-1)!.id),
    { replayFrom: published.length - 1 },
  );
  await settle(observer, "observer after the Last-Event-ID corpus");
});

// ---------------------------------------------------------------------------------------------
// The demo: POST /api/chat.

interface Posted {
  status: number;
  body: { id?: string; error?: string };
}

function post(
  chatPort: number,
  headers: Record<string, string>,
  body: string | Buffer,
): Promise<Posted> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port: chatPort,
        path: "/api/chat",
        method: "POST",
        headers,
        agent: false,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (text += chunk));
        res.on("end", () => {
          let parsed: Posted["body"];
          try {
            parsed = JSON.parse(text) as Posted["body"];
          } catch {
            parsed = { error: `(not JSON) ${text.slice(0, 80)}` };
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error("POST /api/chat timed out")));
    req.end(body);
  });
}

test("demo POST /api/chat: 413/400/415 for bad bodies, hostile text arrives as one plain message", async () => {
  const demo: DemoApp = createApp({ updateIntervalMs: [60_000, 60_000] });
  const { port: chatPort, url } = await listen(demo);
  const chat = demo.feeds.chat.channel;
  let es: EventSource | undefined;
  let wire: WireClient | undefined;
  try {
    // The browser's view: the eventsource client, with listeners for the names an attack would use.
    const source = (es = new EventSource(`${url}/api/chat`));
    const messages: Array<{ id: string; data: string }> = [];
    const others: string[] = [];
    source.addEventListener("message", (e) => messages.push({ id: e.lastEventId, data: e.data }));
    for (const name of ["admin", "reset", "sentinel", "error-event"]) {
      source.addEventListener(name, () => others.push(name));
    }
    let esErrors = 0;
    source.addEventListener("error", () => esErrors++);
    await new Promise<void>((resolve, reject) => {
      source.onopen = () => resolve();
      setTimeout(() => reject(new Error("EventSource did not open")), 5000).unref();
    });
    // The wire's view: every event on the stream, whatever its name.
    const raw = (wire = await WireClient.open(chatPort, requestHead(chatPort, "/api/chat")));

    const J = { "Content-Type": "application/json" };
    const accepted: Array<{ id: string; user: string; text: string }> = [];
    let chatSentinels = 0;
    const sendValid = async (user: string, text: string, what: string): Promise<void> => {
      const res = await post(chatPort, J, JSON.stringify({ user, text }));
      expect({ what, status: res.status }).toEqual({ what, status: 202 });
      accepted.push({ id: res.body.id!, user: user.trim(), text: text.trim() });
      await waitFor(() => messages.length >= accepted.length, {
        what: `${what} to arrive`,
        interval: 1,
      }).catch(() => undefined);
    };
    const chatSentinel = async (what: string): Promise<void> => {
      sentinels.sent++;
      chatSentinels++;
      await sendValid("sentinel", `sentinel ${sentinels.sent}`, `sentinel after ${what}`);
    };

    const u = (n: number) => "u".repeat(n);
    const t = (n: number) => "t".repeat(n);
    const rejections: Array<[string, Record<string, string>, string | Buffer, number, string]> = [
      [
        "4097 bytes (limit + 1)",
        J,
        JSON.stringify({ user: "a", text: t(4097 - 22) }),
        413,
        CHAT_ERRORS.tooLarge,
      ],
      ["64 KB", J, JSON.stringify({ user: "a", text: t(65_536) }), 413, CHAT_ERRORS.tooLarge],
      ["1 MB of garbage", J, "x".repeat(2 ** 20), 413, CHAT_ERRORS.tooLarge],
      ["truncated JSON", J, '{"user":"ada","text":', 400, CHAT_ERRORS.malformed],
      ["a lone brace", J, "{", 400, CHAT_ERRORS.malformed],
      ["single quotes", J, "{'user':'a','text':'b'}", 400, CHAT_ERRORS.malformed],
      ["a trailing brace", J, '{"user":"a","text":"b"}}', 400, CHAT_ERRORS.malformed],
      ["a bad escape", J, '{"user":"a","text":"\\x41"}', 400, CHAT_ERRORS.malformed],
      ["a NUL byte", J, "\u0000", 400, CHAT_ERRORS.malformed],
      ["only whitespace", J, "   ", 400, CHAT_ERRORS.malformed],
      [
        "text/plain",
        { "Content-Type": "text/plain" },
        '{"user":"a","text":"b"}',
        415,
        CHAT_ERRORS.contentType,
      ],
      [
        "a form",
        { "Content-Type": "application/x-www-form-urlencoded" },
        "user=a&text=b",
        415,
        CHAT_ERRORS.contentType,
      ],
      [
        "multipart",
        { "Content-Type": "multipart/form-data; boundary=x" },
        "--x--",
        415,
        CHAT_ERRORS.contentType,
      ],
      [
        "application/jsonx",
        { "Content-Type": "application/jsonx" },
        '{"user":"a","text":"b"}',
        415,
        CHAT_ERRORS.contentType,
      ],
      ["no Content-Type", {}, '{"user":"a","text":"b"}', 415, CHAT_ERRORS.contentType],
      [
        "latin1 charset",
        { "Content-Type": "application/json; charset=latin1" },
        '{"user":"a","text":"b"}',
        415,
        CHAT_ERRORS.charset,
      ],
      [
        "an unknown Content-Encoding",
        { ...J, "Content-Encoding": "compress" },
        '{"user":"a","text":"b"}',
        415,
        CHAT_ERRORS.encoding,
      ],
      [
        "gzip that is not gzip",
        { ...J, "Content-Encoding": "gzip" },
        '{"user":"a","text":"b"}',
        400,
        CHAT_ERRORS.unreadable,
      ],
      ["an array", J, '["ada","hi"]', 400, CHAT_ERRORS.notObject],
      ["null", J, "null", 400, CHAT_ERRORS.notObject],
      ["a string", J, '"hi"', 400, CHAT_ERRORS.notObject],
      ["a number", J, "3", 400, CHAT_ERRORS.notObject],
      ["true", J, "true", 400, CHAT_ERRORS.notObject],
      ["an empty body", J, "", 400, CHAT_ERRORS.user],
      ["an empty object", J, "{}", 400, CHAT_ERRORS.user],
      ["user a number", J, '{"user":42,"text":"hi"}', 400, CHAT_ERRORS.user],
      ["user an array", J, '{"user":["a"],"text":"hi"}', 400, CHAT_ERRORS.user],
      ["user empty", J, '{"user":"","text":"hi"}', 400, CHAT_ERRORS.user],
      ["user whitespace", J, '{"user":" \\t\\n ","text":"hi"}', 400, CHAT_ERRORS.user],
      ["user 33 characters", J, JSON.stringify({ user: u(33), text: "hi" }), 400, CHAT_ERRORS.user],
      ["text missing", J, '{"user":"ada"}', 400, CHAT_ERRORS.text],
      ["text null", J, '{"user":"ada","text":null}', 400, CHAT_ERRORS.text],
      ["text true", J, '{"user":"ada","text":true}', 400, CHAT_ERRORS.text],
      ["text an object", J, '{"user":"ada","text":{"a":1}}', 400, CHAT_ERRORS.text],
      ["text an array", J, '{"user":"ada","text":["hi"]}', 400, CHAT_ERRORS.text],
      ["text empty", J, '{"user":"ada","text":""}', 400, CHAT_ERRORS.text],
      ["text whitespace", J, '{"user":"ada","text":" \\r\\n\\t "}', 400, CHAT_ERRORS.text],
      [
        "text Unicode whitespace",
        J,
        '{"user":"ada","text":"\\u3000\\ufeff\\u00a0"}',
        400,
        CHAT_ERRORS.text,
      ],
      [
        "text 501 characters",
        J,
        JSON.stringify({ user: "a", text: t(501) }),
        400,
        CHAT_ERRORS.text,
      ],
    ];
    for (const [what, headers, body, status, error] of rejections) {
      badInputs++;
      const before = chat.stats().events;
      const res = await post(chatPort, headers, body);
      expect({ what, status: res.status, body: res.body }).toEqual({
        what,
        status,
        body: { error },
      });
      expect({ what, stored: chat.stats().events - before }).toEqual({ what, stored: 0 });
      await chatSentinel(what);
    }

    // Hostile but valid: each arrives as ONE message whose text is exactly what was sent (trimmed,
    // as the demo documents), never as a field, an event name or a second event.
    const hostile: Array<[string, string]> = [
      ["ada", "hi\n\nevent: admin\ndata: x"],
      ["ada", "\r\nid: 999\r\n\r\n"],
      ["ada", "data: x\n\nevent: admin\n\n"],
      ["ada", "\revent: admin\r\rdata: y"],
      ["ada", ": comment\n\nevent: admin\ndata: z"],
      ["ada", "retry: 1\n\nid: 0"],
      ["ada", "a\u0000b"],
      ["ada", "\u2028\u2029\u0085 line separators"],
      ["ada", "</script><script>alert(1)</script>"],
      ["ada", "\uD800 a lone surrogate"],
      ["ada", "🎉 ".repeat(100)],
      ["event: admin", "a name that looks like a field"],
      ["x\n\nevent: admin", "a name with line breaks"],
      ["ada", t(500)],
      [u(32), "longest name"],
    ];
    for (const [user, text] of hostile) {
      badInputs++;
      await sendValid(user, text, `hostile ${JSON.stringify(text).slice(0, 40)}`);
      await chatSentinel(`hostile ${JSON.stringify(text).slice(0, 40)}`);
    }
    // Bodies the parser takes that are not what a client should send; handled as the demo does.
    for (const [what, body, user, text] of [
      [
        "invalid UTF-8 in a string",
        Buffer.concat([
          Buffer.from('{"user":"', "latin1"),
          Buffer.from([0xff, 0xfe]),
          Buffer.from('","text":"b"}', "latin1"),
        ]),
        "\uFFFD\uFFFD",
        "b",
      ],
      ["__proto__ key", '{"user":"a","text":"b","__proto__":{"admin":true}}', "a", "b"],
      ["duplicate keys (last wins)", '{"user":"a","text":"b","text":"c"}', "a", "c"],
    ] as Array<[string, string | Buffer, string, string]>) {
      badInputs++;
      const res = await post(chatPort, J, body);
      expect({ what, status: res.status }).toEqual({ what, status: 202 });
      accepted.push({ id: res.body.id!, user, text });
      await chatSentinel(what);
    }

    // The chat also tells every client who is here (event: members); only messages count here.
    const rawMessages = () => raw.events.filter((e) => e.event !== "members");
    await waitFor(
      () => messages.length >= accepted.length && rawMessages().length >= accepted.length,
      {
        what: "every accepted message on both clients",
      },
    ).catch(() => undefined);
    const got = messages.map(({ id, data }) => {
      const m = JSON.parse(data) as { user: string; text: string; at: string };
      return { id, user: m.user, text: m.text };
    });
    expect(got).toEqual(accepted);
    sentinels.seen += got.filter((m) => m.user === "sentinel").length;
    expect(got.filter((m) => m.user === "sentinel")).toHaveLength(chatSentinels);
    expect(others).toEqual([]);
    expect(esErrors).toBe(0);
    expect(raw.problems).toEqual([]);
    expect(rawMessages().map((e) => ({ event: e.event, id: e.id }))).toEqual(
      accepted.map(({ id }) => ({ event: undefined, id })),
    );
    expect(chat.stats().events).toBe(accepted.length);
  } finally {
    es?.close(); // else it reconnects for ever
    await wire?.close();
    await demo.close();
  }
});
