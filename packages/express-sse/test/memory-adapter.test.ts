import { MemoryAdapter, type AdapterChannel, type AdapterEvent } from "../src/adapter";
import { resolveHistoryOptions, type HistoryOptions } from "../src/history";
import { adapterContract } from "../src/adapter-contract";

adapterContract("MemoryAdapter", () => new MemoryAdapter());

const ID = /^([0-9a-z]{8})-([1-9][0-9]*)$/;

function openMemory(history?: HistoryOptions, name = "memory"): AdapterChannel {
  return new MemoryAdapter().open(name, { history: resolveHistoryOptions(history) });
}

function epochOf(id: string): string {
  const match = ID.exec(id);
  if (match === null) throw new Error(`not a memory id: ${JSON.stringify(id)}`);
  return match[1]!;
}

afterEach(() => {
  jest.useRealTimers();
});

describe("MemoryAdapter", () => {
  describe("ids", () => {
    test('look like "<8 lowercase hex/base36 chars>-<seq>", seq counting from 1', async () => {
      const channel = openMemory();
      const ids = [
        await channel.publish({ event: undefined, data: "a" }),
        await channel.publish({ event: undefined, data: "b" }),
        await channel.publish({ event: undefined, data: "c" }),
      ];
      for (const id of ids) expect(id).toMatch(ID);
      const epoch = epochOf(ids[0]!);
      expect(ids).toEqual([`${epoch}-1`, `${epoch}-2`, `${epoch}-3`]);
    });

    test("compare orders by seq, numerically rather than as strings", async () => {
      const channel = openMemory();
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) ids.push(await channel.publish({ event: undefined, data: "" }));
      const [id2, id10] = [ids[1]!, ids[9]!];
      expect(id2 > id10).toBe(true); // as strings "…-2" > "…-10"
      expect(channel.compare(id2, id10)).toBeLessThan(0);
      expect(channel.compare(id10, id2)).toBeGreaterThan(0);
    });

    test("two channels have different epochs, so one's ids are unknown to the other", async () => {
      const adapter = new MemoryAdapter();
      const history = resolveHistoryOptions(undefined);
      // Even under the same name on the same adapter: a restart gives a new epoch the same way.
      const first = adapter.open("same", { history });
      const second = adapter.open("same", { history });
      const a = [
        await first.publish({ event: undefined, data: "1" }),
        await first.publish({ event: undefined, data: "2" }),
      ];
      const b = [
        await second.publish({ event: undefined, data: "1" }),
        await second.publish({ event: undefined, data: "2" }),
      ];
      expect(epochOf(a[0]!)).not.toBe(epochOf(b[0]!));
      expect(a[0]!.endsWith("-1") && b[0]!.endsWith("-1")).toBe(true);
      expect(first.history(b[0]!)).toEqual({ kind: "unknown", oldestId: a[0], newestId: a[1] });
      expect(second.history(a[0]!)).toEqual({ kind: "unknown", oldestId: b[0], newestId: b[1] });
    });

    test("epochs differ across many channels", async () => {
      const epochs = new Set<string>();
      for (let i = 0; i < 200; i++) {
        epochs.add(epochOf(await openMemory().publish({ event: undefined, data: "" })));
      }
      expect(epochs.size).toBe(200);
    });

    test("ids of the right epoch but malformed or not yet issued are unknown", async () => {
      const channel = openMemory();
      const id1 = await channel.publish({ event: undefined, data: "a" });
      const id2 = await channel.publish({ event: undefined, data: "b" });
      const epoch = epochOf(id1);
      const unknown = { kind: "unknown", oldestId: id1, newestId: id2 };
      for (const id of [
        `${epoch}-0`,
        `${epoch}-01`,
        `${epoch}-3`,
        `${epoch}-99999999999999999`, // past MAX_SAFE_INTEGER
        `${epoch}-1 `,
        ` ${epoch}-1`,
        `A${epoch.slice(1)}-1`, // uppercase is not an epoch character
        `${epoch.slice(0, 7)}${epoch.endsWith("0") ? "1" : "0"}-1`, // another epoch, same shape
        `${epoch}1`,
        `${epoch}--1`,
        "1",
      ]) {
        expect({ id, result: channel.history(id) }).toEqual({ id, result: unknown });
      }
      expect(channel.history(`${epoch}-1`)).toEqual({
        kind: "events",
        events: [expect.objectContaining({ id: id2 })],
      });
    });
  });

  describe("delivery", () => {
    test("calls the listener synchronously, before publish() resolves", async () => {
      const channel = openMemory();
      const received: AdapterEvent[] = [];
      channel.listen((event) => received.push(event));
      const promise = channel.publish({ event: "e", data: "d", value: 42 });
      expect(received.map((e) => [e.event, e.data, e.value])).toEqual([["e", "d", 42]]);
      expect(await promise).toBe(received[0]!.id);
    });

    test("a second listen() replaces the first", async () => {
      const channel = openMemory();
      const first: string[] = [];
      const second: string[] = [];
      channel.listen((e) => first.push(e.data));
      channel.listen((e) => second.push(e.data));
      await channel.publish({ event: undefined, data: "x" });
      expect(first).toEqual([]);
      expect(second).toEqual(["x"]);
    });

    test("history keeps the value, for filters on replay", async () => {
      const channel = openMemory();
      const value = { deep: { n: 1 } };
      const first = await channel.publish({ event: undefined, data: "first" });
      await channel.publish({ event: undefined, data: JSON.stringify(value), value });
      const result = await channel.history(first);
      if (result.kind !== "events") throw new Error(`expected events, got ${result.kind}`);
      expect(result.events[0]!.value).toBe(value);
    });

    test("a closed channel still stores what is published, without delivering it", async () => {
      const channel = openMemory();
      const received: string[] = [];
      channel.listen((e) => received.push(e.data));
      const first = await channel.publish({ event: undefined, data: "a" });
      channel.close();
      const second = await channel.publish({ event: undefined, data: "b" });
      expect(received).toEqual(["a"]);
      expect(channel.history(first)).toEqual({
        kind: "events",
        events: [expect.objectContaining({ id: second, data: "b" })],
      });
    });
  });

  describe("history bounds", () => {
    test("maxBytes charges the UTF-8 bytes of the data plus the event name", async () => {
      const channel = openMemory({ maxBytes: 10 });
      const start = await channel.publish({ event: undefined, data: "" });
      // "é" is 2 bytes: 5 of them fill maxBytes exactly, 6 do not fit.
      const fits = await channel.publish({ event: undefined, data: "é".repeat(5) });
      expect(channel.history(start)).toEqual({
        kind: "events",
        events: [expect.objectContaining({ id: fits })],
      });
      const tooBig = await channel.publish({ event: undefined, data: "é".repeat(6) });
      expect(channel.history(start)).toEqual({
        kind: "too-old",
        oldestId: undefined,
        newestId: tooBig,
      });
      expect(channel.history(tooBig)).toEqual({ kind: "events", events: [] });

      const withName = await channel.publish({ event: "ab", data: "12345678" }); // 2 + 8 bytes
      expect(channel.history(tooBig)).toEqual({
        kind: "events",
        events: [expect.objectContaining({ id: withName })],
      });
      const nameTooBig = await channel.publish({ event: "abc", data: "12345678" }); // 11 bytes
      expect(channel.history(withName)).toEqual({
        kind: "too-old",
        oldestId: undefined,
        newestId: nameTooBig,
      });
    });

    test("an event larger than maxBytes is delivered live but empties the history", async () => {
      const channel = openMemory({ maxBytes: 100 });
      const received: string[] = [];
      channel.listen((e) => received.push(e.data));
      const ids = [
        await channel.publish({ event: undefined, data: "small" }),
        await channel.publish({ event: undefined, data: "y".repeat(101) }),
      ];
      expect(received).toEqual(["small", "y".repeat(101)]);
      expect(channel.history(ids[0]!)).toEqual({
        kind: "too-old",
        oldestId: undefined,
        newestId: ids[1],
      });
    });

    test("max: 0 keeps nothing: every earlier id is too-old, the newest is up to date", async () => {
      const channel = openMemory({ max: 0 });
      const ids = [
        await channel.publish({ event: undefined, data: "a" }),
        await channel.publish({ event: undefined, data: "b" }),
      ];
      expect(channel.history(ids[0]!)).toEqual({
        kind: "too-old",
        oldestId: undefined,
        newestId: ids[1],
      });
      expect(channel.history(ids[1]!)).toEqual({ kind: "events", events: [] });
    });

    test("maxAge expires events by the clock at publish and at read", async () => {
      jest.useFakeTimers({ now: 1_000_000 });
      const channel = openMemory({ maxAge: 1000 });
      const a = await channel.publish({ event: undefined, data: "a" });
      jest.advanceTimersByTime(600);
      const b = await channel.publish({ event: undefined, data: "b" });
      const c = await channel.publish({ event: undefined, data: "c" });
      jest.advanceTimersByTime(400); // a is exactly 1000 ms old: kept
      expect(channel.history(a)).toEqual({
        kind: "events",
        events: [expect.objectContaining({ id: b }), expect.objectContaining({ id: c })],
      });
      jest.advanceTimersByTime(1); // a expires; b is now the oldest
      expect(channel.history(a)).toEqual({
        kind: "events",
        events: [expect.objectContaining({ id: b }), expect.objectContaining({ id: c })],
      });
      jest.advanceTimersByTime(600); // b and c expire
      expect(channel.history(a)).toEqual({ kind: "too-old", oldestId: undefined, newestId: c });
      expect(channel.history(c)).toEqual({ kind: "events", events: [] });
    });
  });
});
