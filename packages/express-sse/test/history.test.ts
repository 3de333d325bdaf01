import fc from "fast-check";
import {
  DEFAULT_HISTORY,
  History,
  resolveHistoryOptions,
  type HistoryEntry,
  type HistoryOptions,
  type SinceResult,
} from "../src/history";
import { collectGarbage } from "./helpers/gc";

interface Entry extends HistoryEntry {
  readonly label: string;
}

const MiB = 1024 * 1024;

function entry(seq: number, size = 1, time = 0): Entry {
  return { seq, size, time, label: `e${seq}` };
}

function historyWith(options: HistoryOptions): History<Entry> {
  return new History<Entry>(resolveHistoryOptions(options));
}

/** Appends entries `from..to` (inclusive) with the given size and time. */
function fill(history: History<Entry>, from: number, to: number, size = 1, time = 0): void {
  for (let seq = from; seq <= to; seq++) history.append(entry(seq, size, time));
}

/** The seqs of an `events` result, or the kind of a reset, for compact assertions. */
function seqs(result: SinceResult<Entry>): number[] | "too-old" | "unknown" {
  return result.kind === "events" ? result.events.map((e) => e.seq) : result.kind;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** Asserts that `fn` throws an error of exactly this class and message. */
function expectError(fn: () => unknown, type: ErrorConstructor, message: string): void {
  expect(fn).toThrow(type);
  expect(fn).toThrow(new type(message));
}

/** The private backing array, to assert on its internal bounds. */
function internals(history: History<Entry>): { _items: Array<Entry | undefined>; _head: number } {
  return history as unknown as { _items: Array<Entry | undefined>; _head: number };
}

afterEach(() => {
  jest.useRealTimers();
});

describe("History", () => {
  describe("append", () => {
    test("keeps every entry, oldest first, while under every bound", () => {
      const history = historyWith({});
      fill(history, 1, 5, 10);
      expect(history.size).toBe(5);
      expect(history.bytes).toBe(50);
      expect(history.lastSeq).toBe(5);
      expect(history.oldest(0)?.label).toBe("e1");
      expect(seqs(history.since(0, 0))).toEqual([1, 2, 3, 4, 5]);
    });

    test("starts empty: size 0, bytes 0, lastSeq 0, no oldest", () => {
      const history = new History<Entry>();
      expect(history.options).toBe(DEFAULT_HISTORY);
      expect(history.size).toBe(0);
      expect(history.bytes).toBe(0);
      expect(history.lastSeq).toBe(0);
      expect(history.oldest(0)).toBeUndefined();
    });

    test("throws a RangeError for an entry out of order and changes nothing", () => {
      const history = historyWith({});
      expectError(
        () => history.append(entry(2)),
        RangeError,
        "History entries must be appended in order: expected seq 1, got 2",
      );
      expectError(
        () => history.append(entry(0)),
        RangeError,
        "History entries must be appended in order: expected seq 1, got 0",
      );
      fill(history, 1, 3);
      expectError(
        () => history.append(entry(3)),
        RangeError,
        "History entries must be appended in order: expected seq 4, got 3",
      );
      expectError(
        () => history.append(entry(5)),
        RangeError,
        "History entries must be appended in order: expected seq 4, got 5",
      );
      expectError(
        () => history.append(entry(4.5)),
        RangeError,
        "History entries must be appended in order: expected seq 4, got 4.5",
      );
      expect(history.lastSeq).toBe(3);
      expect(history.size).toBe(3);
      expect(history.bytes).toBe(3);
      history.append(entry(4));
      expect(seqs(history.since(0, 0))).toEqual([1, 2, 3, 4]);
    });

    test("lastSeq counts every entry ever appended, retained or not", () => {
      const history = historyWith({ max: 2 });
      fill(history, 1, 7);
      expect(history.lastSeq).toBe(7);
      expect(history.size).toBe(2);
    });
  });

  describe("since", () => {
    const history = historyWith({ max: 5 });
    fill(history, 1, 8); // retains 4..8

    test("returns the exact slice after seq, oldest first", () => {
      expect(seqs(history.since(3, 0))).toEqual([4, 5, 6, 7, 8]);
      expect(seqs(history.since(4, 0))).toEqual([5, 6, 7, 8]);
      expect(seqs(history.since(6, 0))).toEqual([7, 8]);
      expect(seqs(history.since(7, 0))).toEqual([8]);
    });

    test("returns the entries themselves", () => {
      const result = history.since(6, 0);
      expect(result).toEqual({ kind: "events", events: [entry(7), entry(8)] });
    });

    test("seq === lastSeq is up to date: no events", () => {
      expect(history.since(8, 0)).toEqual({ kind: "events", events: [] });
    });

    test("is too-old when seq + 1 was evicted; seq == oldest.seq - 1 is not", () => {
      expect(history.oldest(0)?.seq).toBe(4);
      expect(seqs(history.since(3, 0))).toEqual([4, 5, 6, 7, 8]);
      expect(history.since(2, 0)).toEqual({ kind: "too-old" });
      expect(history.since(1, 0)).toEqual({ kind: "too-old" });
      expect(history.since(0, 0)).toEqual({ kind: "too-old" });
    });

    test.each([
      ["beyond lastSeq", 9],
      ["far beyond lastSeq", 1e9],
      ["negative", -1],
      ["non-integer", 3.5],
      ["NaN", NaN],
      ["Infinity", Infinity],
      ["-Infinity", -Infinity],
      ["unsafe integer", 2 ** 53],
    ])("is unknown for a seq %s (%p)", (_what, seq) => {
      expect(history.since(seq, 0)).toEqual({ kind: "unknown" });
    });

    test("since(0) on an empty history is up to date", () => {
      expect(new History<Entry>().since(0, 0)).toEqual({ kind: "events", events: [] });
      expect(new History<Entry>().since(1, 0)).toEqual({ kind: "unknown" });
    });

    test("the returned array is a copy: changing it does not change the history", () => {
      const h = historyWith({});
      fill(h, 1, 3);
      const result = h.since(0, 0);
      if (result.kind !== "events") throw new Error(`expected events, got ${result.kind}`);
      result.events.length = 0;
      expect(seqs(h.since(0, 0))).toEqual([1, 2, 3]);
    });
  });

  describe("max (count)", () => {
    test("keeps the newest max entries", () => {
      const history = historyWith({ max: 3 });
      fill(history, 1, 5, 2);
      expect(history.size).toBe(3);
      expect(history.bytes).toBe(6);
      expect(history.oldest(0)?.seq).toBe(3);
      expect(seqs(history.since(2, 0))).toEqual([3, 4, 5]);
      expect(history.since(1, 0)).toEqual({ kind: "too-old" });
    });

    test("keeps exactly max entries at the limit", () => {
      const history = historyWith({ max: 3 });
      fill(history, 1, 3);
      expect(history.size).toBe(3);
      expect(seqs(history.since(0, 0))).toEqual([1, 2, 3]);
    });

    test("max: 0 keeps nothing: every earlier seq is too-old, lastSeq is up to date", () => {
      const history = historyWith({ max: 0 });
      expect(history.since(0, 0)).toEqual({ kind: "events", events: [] });
      fill(history, 1, 3, 5);
      expect(history.size).toBe(0);
      expect(history.bytes).toBe(0);
      expect(history.lastSeq).toBe(3);
      expect(history.oldest(0)).toBeUndefined();
      expect(history.since(0, 0)).toEqual({ kind: "too-old" });
      expect(history.since(2, 0)).toEqual({ kind: "too-old" });
      expect(history.since(3, 0)).toEqual({ kind: "events", events: [] });
      expect(history.since(4, 0)).toEqual({ kind: "unknown" });
    });
  });

  describe("maxBytes", () => {
    test("evicts the oldest entries until the sizes fit", () => {
      const history = historyWith({ maxBytes: 10 });
      fill(history, 1, 3, 4);
      expect(history.size).toBe(2);
      expect(history.bytes).toBe(8);
      expect(seqs(history.since(1, 0))).toEqual([2, 3]);
      expect(history.since(0, 0)).toEqual({ kind: "too-old" });
    });

    test("keeps entries that fill maxBytes exactly", () => {
      const history = historyWith({ maxBytes: 10 });
      fill(history, 1, 2, 5);
      expect(history.size).toBe(2);
      expect(history.bytes).toBe(10);
    });

    test("one big entry evicts as many small ones as needed", () => {
      const history = historyWith({ maxBytes: 10 });
      fill(history, 1, 5, 2); // 10 bytes
      history.append(entry(6, 7));
      expect(history.bytes).toBe(9);
      expect(seqs(history.since(4, 0))).toEqual([5, 6]);
      expect(history.since(3, 0)).toEqual({ kind: "too-old" });
    });

    test("an entry of exactly maxBytes is kept alone", () => {
      const history = historyWith({ maxBytes: 10 });
      fill(history, 1, 2, 3);
      history.append(entry(3, 10));
      expect(history.size).toBe(1);
      expect(history.bytes).toBe(10);
      expect(seqs(history.since(2, 0))).toEqual([3]);
    });

    test("an entry larger than maxBytes clears everything; later entries are kept again", () => {
      const history = historyWith({ maxBytes: 10 });
      fill(history, 1, 3, 2);
      history.append(entry(4, 11));
      expect(history.size).toBe(0);
      expect(history.bytes).toBe(0);
      expect(history.lastSeq).toBe(4);
      expect(history.oldest(0)).toBeUndefined();
      for (const seq of [0, 1, 2, 3]) {
        expect(history.since(seq, 0)).toEqual({ kind: "too-old" });
      }
      expect(history.since(4, 0)).toEqual({ kind: "events", events: [] });

      history.append(entry(5, 2));
      expect(history.size).toBe(1);
      expect(history.bytes).toBe(2);
      expect(seqs(history.since(4, 0))).toEqual([5]);
      expect(history.since(3, 0)).toEqual({ kind: "too-old" });
    });

    test("zero-size entries are bounded by max only", () => {
      const history = historyWith({ max: 4, maxBytes: 0 });
      fill(history, 1, 6, 0);
      expect(history.size).toBe(4);
      expect(history.bytes).toBe(0);
      expect(seqs(history.since(2, 0))).toEqual([3, 4, 5, 6]);
      history.append(entry(7, 1)); // larger than maxBytes: 0
      expect(history.size).toBe(0);
      expect(history.since(6, 0)).toEqual({ kind: "too-old" });
    });
  });

  describe("maxAge", () => {
    test("an entry is kept for exactly maxAge ms, then evicted on the next read", () => {
      const history = historyWith({ maxAge: 100 });
      history.append(entry(1, 3, 0));
      history.append(entry(2, 3, 50));
      history.append(entry(3, 3, 100));
      expect(history.oldest(100)?.seq).toBe(1); // 100 - 0 is not more than 100
      expect(seqs(history.since(0, 100))).toEqual([1, 2, 3]);
      expect(history.oldest(101)?.seq).toBe(2);
      expect(history.size).toBe(2);
      expect(history.bytes).toBe(6);
      expect(history.since(0, 101)).toEqual({ kind: "too-old" });
      expect(seqs(history.since(1, 101))).toEqual([2, 3]);
      expect(seqs(history.since(2, 150))).toEqual([3]);
      expect(history.since(1, 151)).toEqual({ kind: "too-old" });
    });

    test("once everything has expired, earlier seqs are too-old and lastSeq is still up to date", () => {
      const history = historyWith({ maxAge: 100 });
      fill(history, 1, 3, 1, 0);
      expect(history.since(2, 1000)).toEqual({ kind: "too-old" });
      expect(history.size).toBe(0);
      expect(history.bytes).toBe(0);
      expect(history.since(3, 1000)).toEqual({ kind: "events", events: [] });
      expect(history.oldest(1000)).toBeUndefined();
    });

    test("append expires by the new entry's time", () => {
      const history = historyWith({ maxAge: 100 });
      history.append(entry(1, 1, 0));
      history.append(entry(2, 1, 60));
      history.append(entry(3, 1, 150));
      expect(history.size).toBe(2);
      expect(history.oldest(150)?.seq).toBe(2);
    });

    test("since() for an unknown seq does not hide an up-to-date answer", () => {
      const history = historyWith({ maxAge: 10 });
      history.append(entry(1, 1, 0));
      expect(history.since(2, 1000)).toEqual({ kind: "unknown" });
      expect(history.since(1, 1000)).toEqual({ kind: "events", events: [] });
    });

    test("maxAge: 0 keeps an entry only at the millisecond it was appended", () => {
      const history = historyWith({ maxAge: 0 });
      history.append(entry(1, 1, 500));
      expect(seqs(history.since(0, 500))).toEqual([1]);
      expect(history.since(0, 501)).toEqual({ kind: "too-old" });
    });

    test("maxAge: Infinity never expires anything", () => {
      const history = historyWith({ maxAge: Infinity });
      history.append(entry(1, 1, 0));
      expect(seqs(history.since(0, Number.MAX_SAFE_INTEGER))).toEqual([1]);
    });

    test("oldest() and since() default to Date.now()", () => {
      jest.useFakeTimers({ now: 1_000_000 });
      const history = historyWith({ maxAge: 100 });
      history.append(entry(1, 1, Date.now()));
      jest.advanceTimersByTime(60);
      history.append(entry(2, 1, Date.now()));
      jest.advanceTimersByTime(40);
      expect(history.oldest()?.seq).toBe(1);
      expect(seqs(history.since(0))).toEqual([1, 2]);
      jest.advanceTimersByTime(1);
      expect(history.oldest()?.seq).toBe(2);
      expect(history.since(0)).toEqual({ kind: "too-old" });
      expect(seqs(history.since(1))).toEqual([2]);
      jest.advanceTimersByTime(60);
      expect(history.since(1)).toEqual({ kind: "too-old" });
      expect(history.since(2)).toEqual({ kind: "events", events: [] });
    });
  });

  describe("combined bounds", () => {
    test("the tightest bound wins at each step", () => {
      const history = historyWith({ max: 5, maxBytes: 100, maxAge: 1000 });
      // Count binds first: 5 entries of 10 bytes.
      for (let seq = 1; seq <= 6; seq++) history.append(entry(seq, 10, seq * 100));
      expect(seqs(history.since(1, 600))).toEqual([2, 3, 4, 5, 6]);
      // Bytes bind next: a 70-byte entry leaves room for only three 10-byte ones.
      history.append(entry(7, 70, 700));
      expect(history.bytes).toBe(100);
      expect(seqs(history.since(3, 700))).toEqual([4, 5, 6, 7]);
      expect(history.since(2, 700)).toEqual({ kind: "too-old" });
      // Age binds last: at 1600, entries from before 600 are gone.
      expect(seqs(history.since(5, 1600))).toEqual([6, 7]);
      expect(history.since(4, 1600)).toEqual({ kind: "too-old" });
      expect(history.since(5, 1601)).toEqual({ kind: "too-old" });
      expect(seqs(history.since(6, 1601))).toEqual([7]);
      expect(history.size).toBe(1);
      expect(history.bytes).toBe(70);
    });

    test("matches a model of the bounds for any sequence of appends and reads", () => {
      const op = fc.oneof(
        fc.record({
          type: fc.constant("append" as const),
          size: fc.integer({ min: 0, max: 12 }),
          dt: fc.integer({ min: 0, max: 30 }),
        }),
        fc.record({
          type: fc.constant("read" as const),
          dt: fc.integer({ min: 0, max: 30 }),
          back: fc.integer({ min: -2, max: 12 }),
        }),
      );
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 6 }),
          fc.integer({ min: 0, max: 30 }),
          fc.oneof(fc.constant(Infinity), fc.integer({ min: 0, max: 60 })),
          fc.array(op, { maxLength: 60 }),
          (max, maxBytes, maxAge, ops) => {
            const history = historyWith({ max, maxBytes, maxAge });
            const all: Entry[] = [];
            let clearedUpTo = 0; // entries before this index were dropped by a too-big entry
            let now = 0;
            // The retained entries: the longest suffix since the last clear within every bound.
            const retained = (): Entry[] => {
              let bytes = 0;
              let i = all.length;
              while (i > clearedUpTo) {
                const e = all[i - 1]!;
                if (all.length - (i - 1) > max || bytes + e.size > maxBytes) break;
                if (now - e.time > maxAge) break;
                bytes += e.size;
                i--;
              }
              return all.slice(i);
            };
            for (const step of ops) {
              now += step.dt;
              if (step.type === "append") {
                const e = entry(all.length + 1, step.size, now);
                all.push(e);
                if (max === 0 || e.size > maxBytes) clearedUpTo = all.length;
                history.append(e);
              } else {
                const seq = all.length - step.back;
                const expected = retained();
                const result = history.since(seq, now);
                if (seq < 0 || seq > all.length) {
                  expect(result).toEqual({ kind: "unknown" });
                } else if (seq === all.length) {
                  expect(result).toEqual({ kind: "events", events: [] });
                } else if (expected.length === 0 || expected[0]!.seq > seq + 1) {
                  expect(result).toEqual({ kind: "too-old" });
                } else {
                  expect(result).toEqual({
                    kind: "events",
                    events: expected.filter((e) => e.seq > seq),
                  });
                }
              }
              const expected = retained();
              expect(history.oldest(now)).toBe(expected[0]);
              expect(history.size).toBe(expected.length);
              expect(history.bytes).toBe(expected.reduce((sum, e) => sum + e.size, 0));
              expect(history.lastSeq).toBe(all.length);
            }
          },
        ),
        { numRuns: 300 },
      );
    });
  });

  describe("compaction", () => {
    test.each([
      ["max", { max: 10 }, 1, 10],
      ["maxBytes", { max: 1000, maxBytes: 50 }, 5, 10],
    ])(
      "100,000 appends bounded by %s keep size, bytes and the backing array bounded",
      (_name, options, size, kept) => {
        const history = historyWith(options);
        let longest = 0;
        for (let seq = 1; seq <= 100_000; seq++) {
          history.append(entry(seq, size));
          longest = Math.max(longest, internals(history)._items.length);
          if (history.size > kept || history.bytes > kept * size) {
            throw new Error(`at seq ${seq}: size ${history.size}, bytes ${history.bytes}`);
          }
        }
        expect(history.size).toBe(kept);
        expect(history.bytes).toBe(kept * size);
        expect(longest).toBeGreaterThan(kept); // evictions do leave a dead prefix behind...
        expect(longest).toBeLessThan(3000); // ...which compaction keeps bounded
        expect(seqs(history.since(100_000 - kept, 0))).toEqual(range(100_001 - kept, 100_000));
        expect(seqs(history.since(99_995, 0))).toEqual(range(99_996, 100_000));
        expect(history.since(100_000 - kept - 1, 0)).toEqual({ kind: "too-old" });
        expect(history.since(100_000, 0)).toEqual({ kind: "events", events: [] });
        expect(history.since(100_001, 0)).toEqual({ kind: "unknown" });
      },
    );

    test("100,000 appends bounded by maxAge keep the backing array bounded", () => {
      const history = historyWith({ maxAge: 5 });
      let longest = 0;
      for (let seq = 1; seq <= 100_000; seq++) {
        history.append(entry(seq, 1, seq));
        longest = Math.max(longest, internals(history)._items.length);
      }
      expect(history.size).toBe(6); // times 99,995..100,000 are within 5 ms of 100,000
      expect(longest).toBeLessThan(3000);
      expect(seqs(history.since(99_994, 100_000))).toEqual(range(99_995, 100_000));
      expect(history.since(99_993, 100_000)).toEqual({ kind: "too-old" });
    });

    test("evicted entries are released at once, before compaction", async () => {
      const history = new History<{ seq: number; size: number; time: number; payload: object }>(
        resolveHistoryOptions({ max: 2 }),
      );
      const refs: Array<WeakRef<object>> = [];
      for (let seq = 1; seq <= 10; seq++) {
        const payload = { seq };
        refs.push(new WeakRef(payload));
        history.append({ seq, size: 1, time: 0, payload });
      }
      // Ten appends are far from the compaction threshold: the dead prefix is still there.
      expect(internals(history as never)._head).toBe(8);
      await collectGarbage();
      expect(refs.map((ref) => ref.deref() !== undefined)).toEqual([
        ...Array<boolean>(8).fill(false),
        true,
        true,
      ]);
    });
  });
});

describe("resolveHistoryOptions", () => {
  test("undefined gives the defaults: 1000 events, 4 MiB, no age limit", () => {
    expect(resolveHistoryOptions(undefined)).toEqual({
      max: 1000,
      maxBytes: 4 * MiB,
      maxAge: Infinity,
    });
    expect(Object.isFrozen(resolveHistoryOptions(undefined))).toBe(true);
  });

  test("{} and explicit undefined values give the defaults", () => {
    const expected = { max: 1000, maxBytes: 4 * MiB, maxAge: Infinity };
    expect(resolveHistoryOptions({})).toEqual(expected);
    expect(
      resolveHistoryOptions({ max: undefined, maxBytes: undefined, maxAge: undefined }),
    ).toEqual(expected);
  });

  test("fills in only the bounds that are missing, and freezes the result", () => {
    const resolved = resolveHistoryOptions({ max: 5 });
    expect(resolved).toEqual({ max: 5, maxBytes: 4 * MiB, maxAge: Infinity });
    expect(Object.isFrozen(resolved)).toBe(true);
    expect(resolveHistoryOptions({ maxBytes: 10, maxAge: 60_000 })).toEqual({
      max: 1000,
      maxBytes: 10,
      maxAge: 60_000,
    });
  });

  test("accepts 0 for every bound, Infinity for maxAge and the largest safe integer", () => {
    expect(resolveHistoryOptions({ max: 0, maxBytes: 0, maxAge: 0 })).toEqual({
      max: 0,
      maxBytes: 0,
      maxAge: 0,
    });
    expect(resolveHistoryOptions({ maxAge: Infinity }).maxAge).toBe(Infinity);
    const big = Number.MAX_SAFE_INTEGER;
    expect(resolveHistoryOptions({ max: big, maxBytes: big, maxAge: big })).toEqual({
      max: big,
      maxBytes: big,
      maxAge: big,
    });
  });

  test("does not mutate the caller's object", () => {
    const options = Object.freeze({ max: 3 });
    resolveHistoryOptions(options);
    expect(options).toEqual({ max: 3 });
  });

  const NOT_AN_OBJECT = "The history option must be an object like { max, maxBytes, maxAge }";
  const rangeError = (name: string, got: string, orInfinity = false) =>
    new RangeError(
      `The history "${name}" option must be a non-negative safe integer${orInfinity ? " or Infinity" : ""}, got ${got}`,
    );

  const cases: Array<[unknown, Error]> = [
    [{ max: Infinity }, rangeError("max", "Infinity")],
    [{ maxBytes: Infinity }, rangeError("maxBytes", "Infinity")],
    [{ max: -1 }, rangeError("max", "-1")],
    [{ max: 1.5 }, rangeError("max", "1.5")],
    [{ maxBytes: 2 ** 53 }, rangeError("maxBytes", "9007199254740992")],
    [{ maxAge: -1 }, rangeError("maxAge", "-1", true)],
    [{ maxAge: -Infinity }, rangeError("maxAge", "-Infinity", true)],
    [{ maxAge: 0.5 }, rangeError("maxAge", "0.5", true)],
    [{ max: "10" }, new TypeError('The history "max" option must be a number, got a string')],
    [{ max: NaN }, rangeError("max", "NaN")],
    [{ maxBytes: null }, new TypeError('The history "maxBytes" option must be a number, got null')],
    [{ maxAge: 10n }, new TypeError('The history "maxAge" option must be a number, got bigint 10')],
    [{ maxAge: NaN }, rangeError("maxAge", "NaN", true)],
    [{ size: 3 }, new TypeError('Unknown history option "size"')],
    [{ max: 3, maxCount: 3 }, new TypeError('Unknown history option "maxCount"')],
    [null, new TypeError(NOT_AN_OBJECT)],
    [100, new TypeError(NOT_AN_OBJECT)],
    ["max", new TypeError(NOT_AN_OBJECT)],
    [true, new TypeError(NOT_AN_OBJECT)],
    [() => ({ max: 1 }), new TypeError(NOT_AN_OBJECT)],
  ];
  test.each(cases.map(([options, error]) => [options, error.name, error.message, error] as const))(
    "%p throws %s: %s",
    (options, _name, _message, error) => {
      expectError(
        () => resolveHistoryOptions(options as HistoryOptions),
        error.constructor as ErrorConstructor,
        error.message,
      );
    },
  );
});
