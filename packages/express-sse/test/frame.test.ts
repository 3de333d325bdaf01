import fc from "fast-check";
import { Frame, frameComment, frameEvent, frameRetry, type EventFields } from "../src/frame";
import {
  cutPoints,
  decodeWithReference,
  eventData,
  eventFields,
  eventName,
  idControl,
  idString,
  invalidFieldValue,
  normalizeLineBreaks,
  splitAt,
} from "./helpers/wire";

const NUM_RUNS = 1000;

/** Why an id with a control character is refused, as the TypeError says it. */
const HTTP_FORBIDS =
  "the client sends the id back in the Last-Event-ID header, where HTTP forbids them " +
  "(Node answers 400 and the client stops reconnecting or retries forever)";

/** Asserts that `fn` throws an error of exactly `expected`'s class with exactly its message. */
function expectThrow(fn: () => unknown, expected: Error): void {
  let thrown: unknown = undefined;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(Error);
  expect((thrown as Error).constructor).toBe(expected.constructor);
  expect((thrown as Error).message).toBe(expected.message);
}

/** The event that eventsource-parser should report for `frameEvent(data, fields)`. */
function expectedEvent(data: string, fields: EventFields = {}) {
  return {
    data: normalizeLineBreaks(data),
    event: fields.event,
    id: fields.id === undefined ? undefined : String(fields.id),
  };
}

describe("frameEvent", () => {
  interface Row {
    name: string;
    data: string;
    fields?: EventFields;
    wire: string;
  }

  const rows: Row[] = [
    { name: "plain text", data: "hello", wire: "data: hello\n\n" },
    { name: "empty string", data: "", wire: "data: \n\n" },
    { name: "LF", data: "a\nb", wire: "data: a\ndata: b\n\n" },
    { name: "CR", data: "a\rb", wire: "data: a\ndata: b\n\n" },
    { name: "CRLF", data: "a\r\nb", wire: "data: a\ndata: b\n\n" },
    {
      name: "mixed line breaks",
      data: "a\r\nb\rc\nd",
      wire: "data: a\ndata: b\ndata: c\ndata: d\n\n",
    },
    { name: "two LFs", data: "\n\n", wire: "data: \ndata: \ndata: \n\n" },
    { name: "two CRs", data: "\r\r", wire: "data: \ndata: \ndata: \n\n" },
    { name: "two CRLFs", data: "\r\n\r\n", wire: "data: \ndata: \ndata: \n\n" },
    { name: "LF CR (two breaks, not one)", data: "a\n\rb", wire: "data: a\ndata: \ndata: b\n\n" },
    { name: "trailing LF", data: "a\n", wire: "data: a\ndata: \n\n" },
    { name: "leading space", data: " x", wire: "data:  x\n\n" },
    { name: "leading colon", data: ": not a comment", wire: "data: : not a comment\n\n" },
    {
      name: "unicode, emoji and CJK",
      data: "héllo ✓ 🎉 👩‍👩‍👧 漢字かな",
      wire: "data: héllo ✓ 🎉 👩‍👩‍👧 漢字かな\n\n",
    },
    { name: "NUL inside data", data: "a\0b", wire: "data: a\0b\n\n" },
    { name: "line that looks like a field", data: "x\nid: 9", wire: "data: x\ndata: id: 9\n\n" },
    {
      name: "with event",
      data: "hi",
      fields: { event: "greeting" },
      wire: "event: greeting\ndata: hi\n\n",
    },
    { name: "with id", data: "hi", fields: { id: "abc-1" }, wire: "id: abc-1\ndata: hi\n\n" },
    { name: "with empty id", data: "hi", fields: { id: "" }, wire: "id: \ndata: hi\n\n" },
    { name: "with numeric id", data: "hi", fields: { id: 42 }, wire: "id: 42\ndata: hi\n\n" },
    { name: "with numeric id 0", data: "hi", fields: { id: 0 }, wire: "id: 0\ndata: hi\n\n" },
    { name: "with retry 0", data: "hi", fields: { retry: 0 }, wire: "retry: 0\ndata: hi\n\n" },
    {
      name: "all fields, written as event/id/retry/data",
      data: "a\nb",
      fields: { retry: 2500, id: "7", event: "update" },
      wire: "event: update\nid: 7\nretry: 2500\ndata: a\ndata: b\n\n",
    },
    {
      name: "fields explicitly undefined",
      data: "hi",
      fields: { event: undefined, id: undefined, retry: undefined },
      wire: "data: hi\n\n",
    },
  ];

  test.each(rows)("writes $name byte for byte", ({ data, fields, wire }) => {
    expect(frameEvent(data, fields)).toBe(wire);
  });

  test.each(rows)("$name is decoded by eventsource-parser as sent", ({ data, fields }) => {
    const { events, retries } = decodeWithReference([frameEvent(data, fields)]);
    expect(events).toEqual([expectedEvent(data, fields)]);
    expect(retries).toEqual(fields?.retry === undefined ? [] : [fields.retry]);
  });

  describe("refuses invalid input", () => {
    test.each([
      ["LF", "a\nb"],
      ["CR", "a\rb"],
      ["CRLF", "a\r\nb"],
      ["NUL", "a\0b"],
    ])("event containing %s", (_, event) => {
      expectThrow(
        () => frameEvent("x", { event }),
        new TypeError('The "event" field must not contain CR, LF or NUL characters'),
      );
    });

    test("empty event", () => {
      expectThrow(
        () => frameEvent("x", { event: "" }),
        new TypeError('The "event" field must not be empty; omit it to send a "message" event'),
      );
    });

    test.each([
      [42, "number 42"],
      [null, "null"],
      [true, "boolean true"],
      [["a"], "an array"],
      [{}, "an object"],
    ])("non-string event %p", (event, described) => {
      expectThrow(
        () => frameEvent("x", { event: event as unknown as string }),
        new TypeError(`The "event" field must be a string, got ${described}`),
      );
    });

    test.each([
      ["LF", "1\n2"],
      ["CR", "1\r2"],
      ["CRLF", "1\r\n2"],
      ["NUL", "1\x002"],
    ])("id containing %s", (_, id) => {
      expectThrow(
        () => frameEvent("x", { id }),
        new TypeError('The "id" field must not contain CR, LF or NUL characters'),
      );
    });

    test.each([
      ["SOH", "a\u0001b", "U+0001 at index 1"],
      ["BEL", "\u0007", "U+0007 at index 0"],
      ["VT", "1\u000b", "U+000B at index 1"],
      ["ESC", "x\u001b[0m", "U+001B at index 1"],
      ["US", "ab\u001f", "U+001F at index 2"],
      ["DEL", "a\u007fb", "U+007F at index 1"],
    ])("id containing %s: HTTP cannot carry it back", (_, id, where) => {
      expectThrow(
        () => frameEvent("x", { id }),
        new TypeError(
          `The "id" field must not contain control characters other than tab (${where}): ${HTTP_FORBIDS}`,
        ),
      );
    });

    test.each([
      ["a leading space", " 7", "7"],
      ["a trailing space", "7 ", "7"],
      ["a leading tab", "\t7", "7"],
      ["a trailing tab", "a b\t", "a b"],
      ["only spaces", "  ", ""],
      ["only a tab", "\t", ""],
    ])("id with %s: HTTP strips it from the header", (_, id, trimmed) => {
      expectThrow(
        () => frameEvent("x", { id }),
        new TypeError(
          'The "id" field must not begin or end with a space or tab: HTTP strips them from the ' +
            `Last-Event-ID header, so the id would come back as ${JSON.stringify(trimmed)} and ` +
            "resume from another id",
        ),
      );
    });

    test.each([
      ["a lone high surrogate", "id\uD800", "U+D800 at index 2"],
      ["a lone low surrogate", "\uDC00id", "U+DC00 at index 0"],
      ["a reversed pair", "\uDE00\uD83D", "U+DE00 at index 0"],
      ["a pair, then a lone one", "\uD83D\uDE00\uD83D", "U+D83D at index 2"],
    ])("id with %s: it would go out as U+FFFD", (_, id, where) => {
      expectThrow(
        () => frameEvent("x", { id }),
        new TypeError(
          `The "id" field must not contain a lone surrogate (${where}): it is sent as U+FFFD, ` +
            "so the id the client sends back would not be this one",
        ),
      );
    });

    test.each([
      ["a tab inside", "a\tb"],
      ["a space inside", "a b"],
      ["Latin-1", "café"],
      ["beyond Latin-1", "☃ 漢"],
      ["a surrogate pair", "🎉"],
      ["U+FEFF", "\uFEFF1"],
      ["a C1 control", "a\u0085b"],
      ["a no-break space at the end", "a\u00a0"],
      ["colons", "a: b"],
      ["empty", ""],
    ])("id with %s is accepted as it is", (_, id) => {
      expect(frameEvent("x", { id })).toBe(`id: ${id}\ndata: x\n\n`);
    });

    test.each([
      [-1, "-1"],
      [1.5, "1.5"],
      [NaN, "NaN"],
      [Infinity, "Infinity"],
      [2 ** 53, "9007199254740992"],
    ])("numeric id %p", (id, shown) => {
      expectThrow(
        () => frameEvent("x", { id }),
        new RangeError(
          `The "id" field must be a non-negative safe integer or a string, got ${shown}`,
        ),
      );
    });

    test.each([
      [null, "null"],
      [true, "boolean true"],
      [10n, "bigint 10"],
      [{}, "an object"],
      [[1], "an array"],
    ])("id of type %p", (id, described) => {
      expectThrow(
        () => frameEvent("x", { id: id as unknown as string }),
        new TypeError(`The "id" field must be a string or a number, got ${described}`),
      );
    });

    test.each([
      [-1, "-1"],
      [1.5, "1.5"],
      [NaN, "NaN"],
      [Infinity, "Infinity"],
      [2 ** 53, "9007199254740992"],
    ])("retry %p", (retry, shown) => {
      expectThrow(
        () => frameEvent("x", { retry }),
        new RangeError(`The "retry" field must be a non-negative safe integer, got ${shown}`),
      );
    });

    test.each([
      ["100", "a string"],
      [null, "null"],
      [100n, "bigint 100"],
    ])("retry of type %p", (retry, described) => {
      expectThrow(
        () => frameEvent("x", { retry: retry as unknown as number }),
        new TypeError(`The "retry" field must be a number, got ${described}`),
      );
    });

    test.each([
      ["a number", 123, "number 123"],
      ["null", null, "null"],
      ["an object", { a: 1 }, "an object"],
      ["a Buffer", Buffer.from("x"), "an object"],
    ])("data that is %s", (_, data, described) => {
      expectThrow(
        () => frameEvent(data as unknown as string),
        new TypeError(`Event data must be a string once serialized, got ${described}`),
      );
    });

    test("the first invalid field is reported, in event/id/retry order", () => {
      expectThrow(
        () => frameEvent("x", { retry: -1, id: "a\nb", event: "" }),
        new TypeError('The "event" field must not be empty; omit it to send a "message" event'),
      );
      expectThrow(
        () => frameEvent("x", { retry: -1, id: "a\nb" }),
        new TypeError('The "id" field must not contain CR, LF or NUL characters'),
      );
    });
  });

  describe("properties", () => {
    test("any data and valid fields reach eventsource-parser intact", () => {
      fc.assert(
        fc.property(eventData, eventFields, (data, fields) => {
          const { events, retries } = decodeWithReference([frameEvent(data, fields)]);
          expect(events).toEqual([expectedEvent(data, fields)]);
          expect(retries).toEqual(fields.retry === undefined ? [] : [fields.retry]);
        }),
        { numRuns: NUM_RUNS },
      );
    });

    test("concatenated frames fed in random chunks reach eventsource-parser intact", () => {
      const event = fc.tuple(eventData, eventFields);
      fc.assert(
        fc.property(fc.array(event, { minLength: 1, maxLength: 5 }), cutPoints, (list, cuts) => {
          const stream = list.map(([data, fields]) => frameEvent(data, fields)).join("");
          const { events, retries } = decodeWithReference(splitAt(stream, cuts));
          expect(events).toEqual(list.map(([data, fields]) => expectedEvent(data, fields)));
          expect(retries).toEqual(
            list.flatMap(([, fields]) => (fields.retry === undefined ? [] : [fields.retry])),
          );
        }),
        { numRuns: NUM_RUNS },
      );
    });

    test("a frame is exactly one block: its only blank line is the final one", () => {
      fc.assert(
        fc.property(eventData, eventFields, (data, fields) => {
          const text = frameEvent(data, fields);
          expect(text.endsWith("\n\n")).toBe(true);
          expect(text.indexOf("\n\n")).toBe(text.length - 2);
          expect(text).not.toMatch(/\r/);
        }),
        { numRuns: NUM_RUNS },
      );
    });

    test("an event name with CR, LF or NUL always throws a TypeError", () => {
      fc.assert(
        fc.property(eventData, invalidFieldValue, (data, event) => {
          expectThrow(
            () => frameEvent(data, { event }),
            new TypeError('The "event" field must not contain CR, LF or NUL characters'),
          );
        }),
        { numRuns: NUM_RUNS },
      );
    });

    test("an id with any other control character always throws a TypeError naming it", () => {
      fc.assert(
        fc.property(idString, idControl, idString, (head, control, tail) => {
          const where = `U+${control.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
          expectThrow(
            () => frameEvent("x", { id: head + control + tail }),
            new TypeError(
              /[\r\n\0]/.test(control)
                ? 'The "id" field must not contain CR, LF or NUL characters'
                : `The "id" field must not contain control characters other than tab (${where} at index ${head.length}): ${HTTP_FORBIDS}`,
            ),
          );
        }),
        { numRuns: NUM_RUNS },
      );
    });

    test("an id with a space or tab at either end always throws a TypeError", () => {
      fc.assert(
        fc.property(
          idString,
          fc.array(fc.constantFrom(" ", "\t"), { maxLength: 3 }),
          fc.array(fc.constantFrom(" ", "\t"), { maxLength: 3 }),
          (id, before, after) => {
            fc.pre(before.length + after.length > 0);
            expectThrow(
              () => frameEvent("x", { id: before.join("") + id + after.join("") }),
              new TypeError(
                'The "id" field must not begin or end with a space or tab: HTTP strips them from ' +
                  `the Last-Event-ID header, so the id would come back as ${JSON.stringify(id)} ` +
                  "and resume from another id",
              ),
            );
          },
        ),
        { numRuns: NUM_RUNS },
      );
    });

    test("an id with CR, LF or NUL always throws a TypeError", () => {
      fc.assert(
        fc.property(
          eventData,
          fc.option(eventName, { nil: undefined }),
          invalidFieldValue,
          (data, event, id) => {
            expectThrow(
              () => frameEvent(data, { event, id }),
              new TypeError('The "id" field must not contain CR, LF or NUL characters'),
            );
          },
        ),
        { numRuns: NUM_RUNS },
      );
    });
  });
});

describe("frameComment", () => {
  test("writes a single line as one comment line", () => {
    expect(frameComment("keep-alive")).toBe(": keep-alive\n\n");
  });

  test("writes one comment line per line, whatever the line break", () => {
    expect(frameComment("a\nb\r\nc\rd")).toBe(": a\n: b\n: c\n: d\n\n");
  });

  test("writes an empty comment as a bare colon and space", () => {
    expect(frameComment("")).toBe(": \n\n");
  });

  test("is reported as comments and dispatches no event", () => {
    const { events, comments } = decodeWithReference([frameComment("one\ntwo")]);
    expect(events).toEqual([]);
    expect(comments).toEqual(["one", "two"]);
  });

  test("refuses a non-string comment", () => {
    expectThrow(
      () => frameComment(1 as unknown as string),
      new TypeError("Comment text must be a string, got number 1"),
    );
  });
});

describe("frameRetry", () => {
  test("writes only a retry field", () => {
    expect(frameRetry(3000)).toBe("retry: 3000\n\n");
  });

  test("writes retry 0", () => {
    expect(frameRetry(0)).toBe("retry: 0\n\n");
  });

  test("sets the reconnection delay without dispatching an event", () => {
    const { events, retries } = decodeWithReference([frameRetry(1500)]);
    expect(events).toEqual([]);
    expect(retries).toEqual([1500]);
  });

  test.each([
    [-1, "-1"],
    [1.5, "1.5"],
    [NaN, "NaN"],
    [Infinity, "Infinity"],
  ])("refuses %p", (ms, shown) => {
    expectThrow(
      () => frameRetry(ms),
      new RangeError(`The "retry" field must be a non-negative safe integer, got ${shown}`),
    );
  });

  test("refuses a string", () => {
    expectThrow(
      () => frameRetry("100" as unknown as number),
      new TypeError('The "retry" field must be a number, got a string'),
    );
  });
});

describe("Frame", () => {
  test("Frame.event holds the same text as frameEvent", () => {
    const fields = { event: "update", id: 3, retry: 10 };
    expect(Frame.event("a\nb", fields).text).toBe(frameEvent("a\nb", fields));
  });

  test("Frame.comment holds the same text as frameComment", () => {
    expect(Frame.comment("ping").text).toBe(": ping\n\n");
  });

  test("Frame.retry holds the same text as frameRetry", () => {
    expect(Frame.retry(500).text).toBe("retry: 500\n\n");
  });

  test("bytes is a Buffer holding the UTF-8 encoding of text", () => {
    const frame = Frame.event("é 🎉 漢");
    expect(Buffer.isBuffer(frame.bytes)).toBe(true);
    expect(frame.bytes.equals(Buffer.from("data: é 🎉 漢\n\n", "utf8"))).toBe(true);
  });

  test("bytes is encoded once and the same Buffer is returned every time", () => {
    const frame = Frame.event("hello");
    expect(frame.bytes).toBe(frame.bytes);
  });

  test("byteLength counts UTF-8 bytes, not UTF-16 code units", () => {
    // "data: " (6) + "é" (2) + "🎉" (4) + "\n\n" (2)
    const frame = Frame.event("é🎉");
    expect(frame.text.length).toBe(11);
    expect(frame.byteLength).toBe(14);
  });

  test("the factories validate like the functions they wrap", () => {
    expectThrow(
      () => Frame.event("x", { event: "a\nb" }),
      new TypeError('The "event" field must not contain CR, LF or NUL characters'),
    );
    expectThrow(
      () => Frame.comment(null as unknown as string),
      new TypeError("Comment text must be a string, got null"),
    );
    expectThrow(
      () => Frame.retry(-5),
      new RangeError('The "retry" field must be a non-negative safe integer, got -5'),
    );
  });
});
