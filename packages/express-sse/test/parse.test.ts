import fc from "fast-check";
import type { EventSourceMessage } from "eventsource-parser";
import { frameComment, frameEvent, frameRetry, type EventFields } from "../src/frame";
import { createParser, parseEventStream, type ParsedEvent } from "../src/parse";
import {
  cutPoints,
  decodeWithReference,
  eventData,
  eventFields,
  lineBreak,
  normalizeLineBreaks,
  retryMs,
  splitAt,
} from "./helpers/wire";

const NUM_RUNS = 1000;

interface Decoded {
  events: ParsedEvent[];
  retries: number[];
  comments: string[];
}

/** Feeds `chunks` to the parser under test, in order, and collects what it reports. */
function decode(chunks: readonly string[]): Decoded {
  const result: Decoded = { events: [], retries: [], comments: [] };
  const parser = createParser({
    onEvent: (event) => result.events.push(event),
    onRetry: (ms) => result.retries.push(ms),
    onComment: (text) => result.comments.push(text),
  });
  for (const chunk of chunks) parser.feed(chunk);
  return result;
}

/**
 * eventsource-parser's events as an `EventSource` sees them: the type defaults to `message` and
 * the last event id persists across events. (eventsource-parser reports the id of each block only;
 * it also forgets an id sent in a block without data, which the streams below never contain.)
 */
function asEventSourceSees(events: readonly EventSourceMessage[]): ParsedEvent[] {
  let lastId = "";
  return events.map(({ event, data, id }) => {
    if (id !== undefined) lastId = id;
    return { event: event ?? "message", data, id: lastId };
  });
}

/**
 * eventsource-parser holds back a CR at the end of the input until the next line break arrives,
 * since the CR could be half of a CRLF; the parser under test ends the line at once and skips the
 * LF if it comes. Feeding the reference one more LF settles a trailing CR (it becomes a CRLF) and
 * is otherwise one more blank line, which changes nothing after a stream of complete frames.
 */
function decodeWithReferenceToEnd(chunks: readonly string[]) {
  return decodeWithReference([...chunks, "\n"]);
}

/** One frame of a generated stream. */
type Block =
  | { kind: "event"; data: string; fields: EventFields }
  | { kind: "comment"; text: string }
  | { kind: "retry"; ms: number };

const block: fc.Arbitrary<Block> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant("event"), data: eventData, fields: eventFields }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("comment"), text: eventData }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("retry"), ms: retryMs }) },
);

/** Writes `blocks` with frame.ts, then uses `terminator` as the line terminator throughout. */
function writeStream(blocks: readonly Block[], terminator: string): string {
  const text = blocks
    .map((b) =>
      b.kind === "event"
        ? frameEvent(b.data, b.fields)
        : b.kind === "comment"
          ? frameComment(b.text)
          : frameRetry(b.ms),
    )
    .join("");
  // Frames contain no CR and use LF only as a terminator, so this rewrite changes nothing else.
  return text.replace(/\n/g, terminator);
}

/** What an `EventSource` must see for `blocks`, worked out from the input alone. */
function expectedFor(blocks: readonly Block[]): Decoded {
  const expected: Decoded = { events: [], retries: [], comments: [] };
  let lastId = "";
  for (const b of blocks) {
    if (b.kind === "comment") {
      expected.comments.push(...b.text.split(/\r\n|\r|\n/));
    } else if (b.kind === "retry") {
      expected.retries.push(b.ms);
    } else {
      if (b.fields.retry !== undefined) expected.retries.push(b.fields.retry);
      if (b.fields.id !== undefined) lastId = String(b.fields.id);
      expected.events.push({
        event: b.fields.event ?? "message",
        data: normalizeLineBreaks(b.data),
        id: lastId,
      });
    }
  }
  return expected;
}

const blocks = fc.array(block, { minLength: 1, maxLength: 6 });

describe("createParser", () => {
  describe("agrees with eventsource-parser", () => {
    test("on streams written by frame.ts, with any terminator, fed in random chunks", () => {
      fc.assert(
        fc.property(blocks, lineBreak, cutPoints, (list, terminator, cuts) => {
          const chunks = splitAt(writeStream(list, terminator), cuts);
          const actual = decode(chunks);
          const reference = decodeWithReferenceToEnd(chunks);
          expect(actual.events).toEqual(asEventSourceSees(reference.events));
          expect(actual.retries).toEqual(reference.retries);
          expect(actual.comments).toEqual(reference.comments);
          expect(actual).toEqual(expectedFor(list));
        }),
        { numRuns: NUM_RUNS },
      );
    });

    test("when a CRLF is split across two chunks", () => {
      fc.assert(
        fc.property(blocks, cutPoints, fc.nat(), (list, cuts, pick) => {
          const text = writeStream(list, "\r\n");
          const between: number[] = [];
          for (let i = text.indexOf("\r\n"); i !== -1; i = text.indexOf("\r\n", i + 1)) {
            between.push(i + 1);
          }
          const forced = between[pick % between.length] ?? 0;
          const chunks = splitAt(text, [...cuts, forced]);
          expect(chunks.some((chunk) => chunk.endsWith("\r"))).toBe(true);
          const actual = decode(chunks);
          expect(actual.events).toEqual(asEventSourceSees(decodeWithReferenceToEnd(chunks).events));
          expect(actual).toEqual(expectedFor(list));
        }),
        { numRuns: NUM_RUNS },
      );
    });
  });

  describe("chunking", () => {
    test("an empty chunk between CR and LF changes nothing", () => {
      expect(decode(["data: a\r", "", "\ndata: b\r\n\r\n"]).events).toEqual([
        { event: "message", data: "a\nb", id: "" },
      ]);
    });

    // Every field kind and every terminator, with a CRLF blank line and a CR-CR blank line.
    const stream =
      ": hi\r\nevent: a\rid: 1\ndata: x\r\ndata:y\r\n\r\n" +
      "retry: 50\rdata\r\r" +
      ":\nid: 2\nevent: b\ndata: z \n\n";
    const whole: Decoded = {
      events: [
        { event: "a", data: "x\ny", id: "1" },
        { event: "message", data: "", id: "1" },
        { event: "b", data: "z ", id: "2" },
      ],
      retries: [50],
      comments: ["hi", ""],
    };

    test("the reference stream decodes as expected in one chunk", () => {
      expect(decode([stream])).toEqual(whole);
    });

    test("splitting the stream into two chunks anywhere changes nothing", () => {
      for (let i = 1; i < stream.length; i++) {
        expect([i, decode([stream.slice(0, i), stream.slice(i)])]).toEqual([i, whole]);
      }
    });

    test("splitting the stream into three chunks anywhere changes nothing", () => {
      for (let i = 1; i < stream.length; i++) {
        for (let j = i + 1; j < stream.length; j++) {
          const chunks = [stream.slice(0, i), stream.slice(i, j), stream.slice(j)];
          expect([i, j, decode(chunks)]).toEqual([i, j, whole]);
        }
      }
    });

    test("one character at a time changes nothing", () => {
      expect(decode([...stream])).toEqual(whole);
    });

    test("a CR at the end of a chunk ends the line at once", () => {
      expect(decode(["data: a\r\r"]).events).toEqual([{ event: "message", data: "a", id: "" }]);
    });

    test("an LF right after a chunk that ended with CR is not a second line break", () => {
      expect(decode(["data: a\r", "\ndata: b\r", "\n\r", "\n"]).events).toEqual([
        { event: "message", data: "a\nb", id: "" },
      ]);
    });

    test("a CR at the end of a chunk followed by a chunk without LF ends the line", () => {
      expect(decode(["data: a\r", "data: b\r", "\r"]).events).toEqual([
        { event: "message", data: "a\nb", id: "" },
      ]);
    });
  });

  describe("byte order mark", () => {
    test("is stripped at the start of the stream", () => {
      expect(parseEventStream("\uFEFFdata: a\n\n")).toEqual([
        { event: "message", data: "a", id: "" },
      ]);
    });

    test("is stripped when it is the whole first chunk", () => {
      expect(decode(["\uFEFF", "data: a\n\n"]).events).toEqual([
        { event: "message", data: "a", id: "" },
      ]);
    });

    test("is stripped after empty chunks at the start of the stream", () => {
      expect(decode(["", "\uFEFFdata: a\n\n"]).events).toEqual([
        { event: "message", data: "a", id: "" },
      ]);
    });

    test("is stripped once only: a second one makes the first line an unknown field", () => {
      expect(parseEventStream("\uFEFF\uFEFFdata: a\n\ndata: b\n\n")).toEqual([
        { event: "message", data: "b", id: "" },
      ]);
    });

    test("is not stripped later in the stream", () => {
      expect(decode(["data: a\n\n", "\uFEFFdata: b\n\n"]).events).toEqual([
        { event: "message", data: "a", id: "" },
      ]);
      expect(parseEventStream("data: a\n\n\uFEFFdata: b\n\n")).toEqual([
        { event: "message", data: "a", id: "" },
      ]);
    });
  });

  describe("comments", () => {
    test("are reported via onComment without the colon and one leading space", () => {
      expect(decode([": hello\n:no space\n:  two spaces\n:\n"]).comments).toEqual([
        "hello",
        "no space",
        " two spaces",
        "",
      ]);
    });

    test("neither dispatch nor interrupt an event", () => {
      expect(decode(["data: a\n: between\ndata: b\n\n: after\n\n"])).toEqual({
        events: [{ event: "message", data: "a\nb", id: "" }],
        retries: [],
        comments: ["between", "after"],
      });
    });

    test("are ignored when there is no onComment callback", () => {
      const events: ParsedEvent[] = [];
      createParser({ onEvent: (event) => events.push(event) }).feed(": hi\ndata: a\n\n");
      expect(events).toEqual([{ event: "message", data: "a", id: "" }]);
    });
  });

  describe("retry", () => {
    test("is reported when its value is ASCII digits only", () => {
      expect(decode(["retry: 1000\nretry:25\nretry: 0\nretry: 007\n"]).retries).toEqual([
        1000, 25, 0, 7,
      ]);
    });

    test.each([
      ["a negative number", "retry: -1\n"],
      ["a decimal", "retry: 1.5\n"],
      ["an exponent", "retry: 1e3\n"],
      ["trailing letters", "retry: 10a\n"],
      ["an empty value", "retry: \n"],
      ["no value", "retry\n"],
      ["two leading spaces", "retry:  100\n"],
      ["a trailing space", "retry: 100 \n"],
      ["non-ASCII digits", "retry: １２\n"],
    ])("is ignored with %s", (_, line) => {
      expect(decode([line])).toEqual({ events: [], retries: [], comments: [] });
    });

    test("does not dispatch an event and does not disturb one in progress", () => {
      expect(decode(["data: a\nretry: 5\ndata: b\n\n"])).toEqual({
        events: [{ event: "message", data: "a\nb", id: "" }],
        retries: [5],
        comments: [],
      });
    });
  });

  describe("id", () => {
    test("persists across later events that have no id field", () => {
      expect(parseEventStream("id: 7\ndata: a\n\ndata: b\n\n")).toEqual([
        { event: "message", data: "a", id: "7" },
        { event: "message", data: "b", id: "7" },
      ]);
    });

    test("is kept even when set in a block that dispatches nothing", () => {
      expect(parseEventStream("id: 5\n\ndata: a\n\n")).toEqual([
        { event: "message", data: "a", id: "5" },
      ]);
    });

    test("is reset to empty by an empty id field, with or without a colon", () => {
      expect(
        parseEventStream("id: 1\ndata: a\n\nid: \ndata: b\n\nid: 2\n\nid\ndata: c\n\n"),
      ).toEqual([
        { event: "message", data: "a", id: "1" },
        { event: "message", data: "b", id: "" },
        { event: "message", data: "c", id: "" },
      ]);
    });

    test("containing NUL is ignored and the previous id stays", () => {
      expect(parseEventStream("id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n")).toEqual([
        { event: "message", data: "a", id: "1" },
        { event: "message", data: "b", id: "1" },
      ]);
    });

    test("keeps a second leading space", () => {
      expect(parseEventStream("id:  x\ndata: a\n\n")).toEqual([
        { event: "message", data: "a", id: " x" },
      ]);
    });
  });

  describe("event type", () => {
    test("defaults to message", () => {
      expect(parseEventStream("data: a\n\n")).toEqual([{ event: "message", data: "a", id: "" }]);
    });

    test("is reset after each dispatch", () => {
      expect(parseEventStream("event: x\ndata: a\n\ndata: b\n\n")).toEqual([
        { event: "x", data: "a", id: "" },
        { event: "message", data: "b", id: "" },
      ]);
    });

    test("is reset by a block with no data too", () => {
      expect(parseEventStream("event: x\n\ndata: b\n\n")).toEqual([
        { event: "message", data: "b", id: "" },
      ]);
    });

    test("is message when the event field is empty", () => {
      expect(parseEventStream("event:\ndata: a\n\n")).toEqual([
        { event: "message", data: "a", id: "" },
      ]);
    });

    test("takes the last event field of the block", () => {
      expect(parseEventStream("event: x\nevent: y\ndata: a\n\n")).toEqual([
        { event: "y", data: "a", id: "" },
      ]);
    });
  });

  describe("data", () => {
    test("joins the lines of a block with LF", () => {
      expect(parseEventStream("data: a\ndata:\ndata: c\n\n")).toEqual([
        { event: "message", data: "a\n\nc", id: "" },
      ]);
    });

    test("loses exactly one leading space", () => {
      expect(parseEventStream("data:x\n\ndata: x\n\ndata:  x\n\n").map((e) => e.data)).toEqual([
        "x",
        "x",
        " x",
      ]);
    });

    test("is empty for a data field without a colon", () => {
      expect(parseEventStream("data\n\n")).toEqual([{ event: "message", data: "", id: "" }]);
    });

    test("keeps colons after the first one", () => {
      expect(parseEventStream("data: a: b:c\n\n")).toEqual([
        { event: "message", data: "a: b:c", id: "" },
      ]);
    });
  });

  describe("dispatch", () => {
    test("does not happen for a block with no data field", () => {
      expect(parseEventStream("event: x\nid: 1\nretry: 5\n: c\n\n\n\n")).toEqual([]);
    });

    test("does not happen for a final block that has no blank line after it", () => {
      expect(parseEventStream("data: a\n\ndata: b\n")).toEqual([
        { event: "message", data: "a", id: "" },
      ]);
      expect(parseEventStream("data: a\n\ndata: b")).toEqual([
        { event: "message", data: "a", id: "" },
      ]);
    });

    test("happens once the blank line arrives in a later chunk", () => {
      const events: ParsedEvent[] = [];
      const parser = createParser({ onEvent: (event) => events.push(event) });
      parser.feed("data: a\n");
      expect(events).toEqual([]);
      parser.feed("\n");
      expect(events).toEqual([{ event: "message", data: "a", id: "" }]);
    });
  });

  describe("unknown fields", () => {
    test("are ignored, and field names are case-sensitive", () => {
      expect(parseEventStream("foo: bar\nData: no\nEVENT: no\ndata: a\n\n")).toEqual([
        { event: "message", data: "a", id: "" },
      ]);
    });
  });
});

describe("parseEventStream", () => {
  test("returns every event of a whole stream in order", () => {
    const text =
      frameEvent("one", { event: "a", id: 1 }) + frameComment("hb") + frameEvent("two\nlines");
    expect(parseEventStream(text)).toEqual([
      { event: "a", data: "one", id: "1" },
      { event: "message", data: "two\nlines", id: "1" },
    ]);
  });

  test("returns an empty array for an empty stream", () => {
    expect(parseEventStream("")).toEqual([]);
  });
});
