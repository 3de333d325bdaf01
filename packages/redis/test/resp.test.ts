/**
 * RespReader (src/resp.ts), pure: bytes in, handler calls out. Every RESP3 type it decodes, the
 * `smessage` fast path (multi-byte UTF-8, CRLF inside a message, 1 MB), and the same byte stream
 * fed whole, one byte at a time and in random-size chunks giving the same calls in the same order.
 */
import { RespError, RespReader, type RespHandlers } from "../src/resp";

/** One handler call; errors as `{ error: message }`, so that calls compare as plain data. */
type Call =
  readonly ["message", string, string] | readonly ["push", unknown] | readonly ["reply", unknown];

/** A value with every RespError (at any depth) replaced by `{ error: message }`. */
function plain(value: unknown): unknown {
  if (value instanceof RespError) return { error: value.message };
  if (value instanceof Error) return { unexpectedError: value.name, message: value.message };
  if (Array.isArray(value)) return value.map(plain);
  return value;
}

function recorder(): { calls: Call[]; handlers: RespHandlers } {
  const calls: Call[] = [];
  return {
    calls,
    handlers: {
      onMessage: (message, channel) => calls.push(["message", message, channel]),
      onPush: (push) => calls.push(["push", plain(push)]),
      onReply: (reply) => calls.push(["reply", plain(reply)]),
    },
  };
}

/** A deterministic PRNG (mulberry32): the same chunking on every run. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `input` as one chunk. */
const whole = (input: Buffer): Buffer[] => [input];

/** `input` one byte per chunk (each its own copy, as separate socket reads would be). */
const byteByByte = (input: Buffer): Buffer[] =>
  Array.from({ length: input.length }, (_, i) => Buffer.from(input.subarray(i, i + 1)));

/** `input` in chunks of 1..`max` bytes, sizes from `seed`. */
function randomChunks(input: Buffer, seed: number, max = 64): Buffer[] {
  const random = seeded(seed);
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < input.length;) {
    const size = 1 + Math.floor(random() * max);
    chunks.push(Buffer.from(input.subarray(offset, offset + size)));
    offset += size;
  }
  return chunks;
}

/** Feeds `chunks` to a new reader; the calls it made. */
function decode(chunks: readonly Buffer[]): Call[] {
  const { calls, handlers } = recorder();
  const reader = new RespReader(handlers);
  for (const chunk of chunks) reader.write(chunk);
  return calls;
}

/** The calls for `input`, checked to be the same whole, byte by byte and in random chunks. */
function decodeEveryWay(input: Buffer, { maxChunk = 64 } = {}): Call[] {
  const expected = decode(whole(input));
  expect(decode(byteByByte(input))).toEqual(expected);
  for (const seed of [1, 2, 3, 42, 2024]) {
    expect({ seed, calls: decode(randomChunks(input, seed, maxChunk)) }).toEqual({
      seed,
      calls: expected,
    });
  }
  return expected;
}

const resp = (text: string): Buffer => Buffer.from(text, "utf8");

/** A bulk string of `text` (its length in bytes, UTF-8). */
const bulk = (text: string): string => `$${Buffer.byteLength(text)}\r\n${text}\r\n`;

/** An `smessage` push as Redis sends it. */
const smessage = (channel: string, message: string): string =>
  `>3\r\n${bulk("smessage")}${bulk(channel)}${bulk(message)}`;

describe("RespReader: each type", () => {
  test.each<[string, string, unknown]>([
    ["+ simple string", "+OK\r\n", "OK"],
    ["+ simple string, empty", "+\r\n", ""],
    ["+ simple string, UTF-8", "+héllo ✓\r\n", "héllo ✓"],
    ["- simple error", "-ERR unknown command 'x'\r\n", { error: "ERR unknown command 'x'" }],
    [
      "- simple error (WRONGPASS)",
      "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
      { error: "WRONGPASS invalid username-password pair or user is disabled." },
    ],
    [": integer", ":1000\r\n", 1000],
    [": integer, zero", ":0\r\n", 0],
    [": integer, negative", ":-42\r\n", -42],
    [", double", ",3.14\r\n", 3.14],
    [", double, negative with exponent", ",-1.5e3\r\n", -1500],
    [", double, integral", ",10\r\n", 10],
    [", double, infinity", ",inf\r\n", Infinity],
    [", double, negative infinity", ",-inf\r\n", -Infinity],
    [
      "( big number",
      "(3492890328409238509324850943850943825024385\r\n",
      "3492890328409238509324850943850943825024385",
    ],
    [
      "( big number, negative",
      "(-3492890328409238509324850943850943825024385\r\n",
      "-3492890328409238509324850943850943825024385",
    ],
    ["# boolean true", "#t\r\n", true],
    ["# boolean false", "#f\r\n", false],
    ["_ null", "_\r\n", null],
    ["$ bulk string", "$5\r\nhello\r\n", "hello"],
    ["$ bulk string, empty", "$0\r\n\r\n", ""],
    ["$ bulk string with CRLF inside", "$7\r\na\r\nb\r\nc\r\n", "a\r\nb\r\nc"],
    ["$ bulk string, multi-byte UTF-8", `${bulk("日本語 🙂")}`, "日本語 🙂"],
    ["$-1: RESP2 null bulk", "$-1\r\n", null],
    ["! bulk error", "!21\r\nSYNTAX invalid syntax\r\n", { error: "SYNTAX invalid syntax" }],
    ["= verbatim string", "=15\r\ntxt:Some string\r\n", "Some string"],
    ["= verbatim string with CRLF", "=12\r\nmkd:a\r\n\r\nb c\r\n", "a\r\n\r\nb c"],
    ["* array", "*2\r\n:1\r\n$3\r\nfoo\r\n", [1, "foo"]],
    ["* array, empty", "*0\r\n", []],
    ["*-1: RESP2 null array", "*-1\r\n", null],
    [
      "* array, nested, of every scalar",
      "*3\r\n*2\r\n+a\r\n_\r\n*0\r\n*4\r\n#t\r\n,2.5\r\n(12345678901234567890\r\n-ERR inner\r\n",
      [["a", null], [], [true, 2.5, "12345678901234567890", { error: "ERR inner" }]],
    ],
    ["~ set", "~3\r\n+a\r\n:2\r\n$1\r\nc\r\n", ["a", 2, "c"]],
    ["~ set, empty", "~0\r\n", []],
    [
      "% map (flattened key, value, …)",
      "%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n",
      ["first", 1, "second", 2],
    ],
    ["% map, empty", "%0\r\n", []],
    ["% map, nested", "%1\r\n$1\r\nm\r\n%1\r\n+k\r\n*1\r\n:7\r\n", ["m", ["k", [7]]]],
    [
      "| attributes: skipped, the value that follows is the reply",
      "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n",
      [2039123, 9543892],
    ],
    ["| attributes before a scalar", "|1\r\n+ttl\r\n:3600\r\n+OK\r\n", "OK"],
  ])("%s", (_label, input, value) => {
    expect(decodeEveryWay(resp(input))).toEqual([["reply", value]]);
  });

  test("> push (not smessage) goes to onPush, with its kind first", () => {
    const input =
      `>3\r\n${bulk("ssubscribe")}${bulk("ch:1")}:1\r\n` +
      `>3\r\n${bulk("sunsubscribe")}${bulk("ch:1")}:0\r\n` +
      `>3\r\n${bulk("message")}${bulk("plain")}${bulk("not sharded")}` +
      `>4\r\n${bulk("pmessage")}${bulk("p*")}${bulk("pq")}${bulk("x")}` +
      `>2\r\n${bulk("invalidate")}*1\r\n${bulk("key")}` +
      ">0\r\n";
    expect(decodeEveryWay(resp(input))).toEqual([
      ["push", ["ssubscribe", "ch:1", 1]],
      ["push", ["sunsubscribe", "ch:1", 0]],
      ["push", ["message", "plain", "not sharded"]],
      ["push", ["pmessage", "p*", "pq", "x"]],
      ["push", ["invalidate", ["key"]]],
      ["push", []],
    ]);
  });

  test("a HELLO 3 reply (a map with nested arrays) is one reply", () => {
    const input =
      "%7\r\n" +
      `${bulk("server")}${bulk("redis")}` +
      `${bulk("version")}${bulk("7.0.15")}` +
      `${bulk("proto")}:3\r\n` +
      `${bulk("id")}:12\r\n` +
      `${bulk("mode")}${bulk("standalone")}` +
      `${bulk("role")}${bulk("master")}` +
      `${bulk("modules")}*0\r\n`;
    expect(decodeEveryWay(resp(input))).toEqual([
      [
        "reply",
        [
          "server",
          "redis",
          "version",
          "7.0.15",
          "proto",
          3,
          "id",
          12,
          "mode",
          "standalone",
          "role",
          "master",
          "modules",
          [],
        ],
      ],
    ]);
  });
});

describe("RespReader: smessage, the fast path", () => {
  test("goes to onMessage(message, channel), never to onPush", () => {
    expect(decodeEveryWay(resp(smessage("sluice:{c}", "hello")))).toEqual([
      ["message", "hello", "sluice:{c}"],
    ]);
  });

  test("multi-byte UTF-8 in channel and message, and CRLF inside the message", () => {
    const channel = "sluice:{chän·日本·🙂}";
    const message = 'line one\r\nline two: ü €\r\n\r\n🙂 {"a":"\r\n"}\r\n';
    expect(Buffer.byteLength(channel)).toBeGreaterThan(channel.length);
    const input = resp(smessage(channel, message));
    expect(decodeEveryWay(input, { maxChunk: 7 })).toEqual([["message", message, channel]]);
  });

  test("empty channel and message", () => {
    expect(decodeEveryWay(resp(smessage("", "")))).toEqual([["message", "", ""]]);
  });

  test("a 1 MB message (multi-byte UTF-8 and CRLFs throughout)", () => {
    const unit = "0123456789abcdef é€🙂\r\n"; // 30 bytes
    const repeat = Math.ceil((1024 * 1024) / Buffer.byteLength(unit));
    const message = unit.repeat(repeat);
    expect(Buffer.byteLength(message)).toBeGreaterThanOrEqual(1024 * 1024);
    const input = resp(`+before\r\n${smessage("big", message)}${smessage("after", "small")}:1\r\n`);
    const expected: Call[] = [
      ["reply", "before"],
      ["message", message, "big"],
      ["message", "small", "after"],
      ["reply", 1],
    ];
    expect(decode(whole(input))).toEqual(expected);
    expect(decode(byteByByte(input))).toEqual(expected);
    for (const seed of [7, 8]) expect(decode(randomChunks(input, seed, 4096))).toEqual(expected);
    // Also cut into chunks around typical socket read sizes.
    expect(decode(randomChunks(input, 9, 65536))).toEqual(expected);
  }, 30_000);

  test("a push that looks like smessage only in part is decoded generally", () => {
    // Another kind of the same length, and the non-sharded `message`: not the fast path.
    const input =
      `>3\r\n${bulk("smessagX")}${bulk("c")}${bulk("m")}` +
      `>3\r\n${bulk("message")}${bulk("c")}${bulk("m")}`;
    expect(decodeEveryWay(resp(input))).toEqual([
      ["push", ["smessagX", "c", "m"]],
      ["push", ["message", "c", "m"]],
    ]);
  });
});

describe("RespReader: a stream of values", () => {
  /** Everything above, mixed, in an order a pub/sub connection could see. */
  const stream = (): Buffer =>
    resp(
      "%3\r\n+server\r\n+redis\r\n+proto\r\n:3\r\n+modules\r\n*0\r\n" +
        `>3\r\n${bulk("ssubscribe")}${bulk("a")}:1\r\n` +
        smessage("a", "one") +
        smessage("a", "two\r\nlines") +
        "+PONG\r\n" +
        smessage("ä", "ü".repeat(300)) +
        "-ERR something\r\n" +
        "!5\r\nERR b\r\n" +
        "$-1\r\n*-1\r\n_\r\n#f\r\n,0.5\r\n(99\r\n=8\r\ntxt:abcd\r\n" +
        "~2\r\n:1\r\n:2\r\n" +
        "|1\r\n+a\r\n+b\r\n$3\r\nval\r\n" +
        `>3\r\n${bulk("sunsubscribe")}${bulk("a")}:0\r\n` +
        smessage("b", "") +
        ":7\r\n",
    );

  const expected: Call[] = [
    ["reply", ["server", "redis", "proto", 3, "modules", []]],
    ["push", ["ssubscribe", "a", 1]],
    ["message", "one", "a"],
    ["message", "two\r\nlines", "a"],
    ["reply", "PONG"],
    ["message", "ü".repeat(300), "ä"],
    ["reply", { error: "ERR something" }],
    ["reply", { error: "ERR b" }],
    ["reply", null],
    ["reply", null],
    ["reply", null],
    ["reply", false],
    ["reply", 0.5],
    ["reply", "99"],
    ["reply", "abcd"],
    ["reply", [1, 2]],
    ["reply", "val"],
    ["push", ["sunsubscribe", "a", 0]],
    ["message", "", "b"],
    ["reply", 7],
  ];

  test("whole", () => {
    expect(decode(whole(stream()))).toEqual(expected);
  });

  test("one byte at a time", () => {
    expect(decode(byteByByte(stream()))).toEqual(expected);
  });

  test.each([1, 2, 3, 5, 8, 13, 21, 34, 55, 89])("in random-size chunks (seed %i)", (seed) => {
    expect(decode(randomChunks(stream(), seed, 1 + (seed % 40)))).toEqual(expected);
  });

  test("split at every single position into two chunks", () => {
    const input = stream();
    for (let at = 0; at <= input.length; at++) {
      const calls = decode([Buffer.from(input.subarray(0, at)), Buffer.from(input.subarray(at))]);
      expect({ at, calls }).toEqual({ at, calls: expected });
    }
  });

  test("a value completes only when its last byte arrives: calls happen as soon as possible", () => {
    const { calls, handlers } = recorder();
    const reader = new RespReader(handlers);
    const input = resp(`+a\r\n${smessage("c", "m")}:1\r\n`);
    const ends = [4, 4 + Buffer.byteLength(smessage("c", "m")), input.length];
    for (let i = 0; i < input.length; i++) {
      reader.write(Buffer.from(input.subarray(i, i + 1)));
      expect({ at: i + 1, count: calls.length }).toEqual({
        at: i + 1,
        count: ends.filter((end) => end <= i + 1).length,
      });
    }
  });

  test("empty chunks change nothing", () => {
    const input = stream();
    const chunks = randomChunks(input, 11).flatMap((chunk) => [Buffer.alloc(0), chunk]);
    expect(decode([...chunks, Buffer.alloc(0)])).toEqual(expected);
  });

  test("reset() drops partial input: the next value decodes on its own", () => {
    const { calls, handlers } = recorder();
    const reader = new RespReader(handlers);
    const partial = resp(smessage("c", "x".repeat(1000)));
    reader.write(partial.subarray(0, 500));
    reader.reset();
    reader.write(resp("+after\r\n"));
    reader.write(resp("$5\r\nhe"));
    reader.reset();
    reader.write(resp(smessage("c", "m")));
    expect(calls).toEqual([
      ["reply", "after"],
      ["message", "m", "c"],
    ]);
  });
});

describe("RespReader: malformed input", () => {
  test.each([
    ["an unknown type byte", "?what\r\n", /Unknown RESP type byte 63/],
    ["an unknown type byte inside an array", "*2\r\n:1\r\n@x\r\n", /Unknown RESP type byte 64/],
    [
      "an unknown type byte after valid values",
      "+ok\r\n:1\r\nXYZ\r\n",
      /Unknown RESP type byte 88/,
    ],
    [
      "a streamed string ($?), not supported",
      "$?\r\n;4\r\nHell\r\n;0\r\n",
      /Malformed RESP integer/,
    ],
    ["a malformed integer", ":12a\r\n", /Malformed RESP integer/],
    ["a malformed length", "$1x\r\nab\r\n", /Malformed RESP integer/],
    [
      "an smessage whose message is not a bulk string",
      `>3\r\n${bulk("smessage")}${bulk("c")}:5\r\n`,
      /Unexpected RESP type in a message: :/,
    ],
  ])("%s throws a RespError", (_label, input, message) => {
    const reader = new RespReader(recorder().handlers);
    let thrown: unknown;
    try {
      reader.write(resp(input));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(RespError);
    expect((thrown as Error).message).toMatch(message);
  });

  test("an unknown type byte throws when it arrives in a later chunk, after the valid values were handled", () => {
    const { calls, handlers } = recorder();
    const reader = new RespReader(handlers);
    reader.write(resp("+ok\r\n:"));
    reader.write(resp("1\r\n"));
    expect(() => reader.write(resp("?\r\n"))).toThrow(RespError);
    expect(calls).toEqual([
      ["reply", "ok"],
      ["reply", 1],
    ]);
  });

  test("fed byte by byte, an unknown type byte throws at the latest when its line is complete", () => {
    const reader = new RespReader(recorder().handlers);
    const input = resp("?abc\r\n");
    let thrownAt = -1;
    for (let i = 0; i < input.length && thrownAt === -1; i++) {
      try {
        reader.write(input.subarray(i, i + 1));
      } catch (error) {
        expect(error).toBeInstanceOf(RespError);
        thrownAt = i + 1;
      }
    }
    expect(thrownAt).toBeGreaterThan(0);
    expect(thrownAt).toBeLessThanOrEqual(input.length);
  });
});
