/**
 * `@sluice/express-sse/adapter-contract`: the test suite every {@link Adapter} must pass. The
 * in-memory adapter runs it, `@sluice/redis` runs it against standalone Redis and Redis Cluster,
 * and an adapter of your own (another broker, a database) runs it from one test file:
 *
 * @example
 * // my-adapter.test.ts (jest, or vitest with `globals: true`)
 * import { adapterContract } from "@sluice/express-sse/adapter-contract";
 * import { MyAdapter } from "../src";
 *
 * adapterContract("MyAdapter", () => new MyAdapter({ url: process.env.BROKER_URL }));
 *
 * It declares its tests with the test runner's globals (`describe`, `test`, `beforeEach`,
 * `afterEach`, `expect`), so it must be called at the top level of a test file. It is an entry
 * of its own, never loaded by the main one.
 */
import type {
  Adapter,
  AdapterChannel,
  AdapterEvent,
  AdapterPublish,
  HistoryResult,
} from "./adapter";
import { idProblem } from "./frame";
import { resolveHistoryOptions, type ResolvedHistoryOptions } from "./history";

/** How long to keep listening after the last expected event, to catch duplicates and strays. */
const QUIET_MS = 50;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once `predicate` holds; rejects, naming `what`, after 5 s (a lost event). */
async function waitFor(predicate: () => boolean, { what }: { what: string }): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`adapter contract: timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Events with every shape the wire allows: no name, a name, empty data, several lines, UTF-8. */
const SAMPLES: readonly AdapterPublish[] = [
  { event: undefined, data: "plain" },
  { event: "update", data: '{"n":1,"text":"héllo 👋"}' },
  { event: undefined, data: "" },
  { event: "multi", data: "line 1\nline 2\r\nline 3\rline 4" },
  { event: "update", data: "x".repeat(10_000) },
  { event: "ünïcode", data: "  leading and trailing spaces  " },
];

/** `{ id, event, data }` of an event, without adapter-specific extras. */
function wire(event: AdapterEvent): { id: string; event: string | undefined; data: string } {
  return { id: event.id, event: event.event, data: event.data };
}

function expectEvents(result: HistoryResult, expected: ReadonlyArray<ReturnType<typeof wire>>) {
  if (result.kind !== "events") {
    throw new Error(`expected kind "events", got ${JSON.stringify(result)}`);
  }
  expect(result.events.map(wire)).toEqual(expected);
}

/**
 * Bumps the last decimal number in `id` by `by`: for adapters whose ids end in (or contain) a
 * counter, this gives an id of the same shape that the channel has not issued yet. The contract
 * checks with `compare()` that the channel does read it as later than its newest id.
 */
function futureIdOf(id: string, by = 1000n): string {
  const match = /(\d+)(\D*)$/.exec(id);
  if (match === null) throw new Error(`cannot build a future id from ${JSON.stringify(id)}`);
  const [, digits, rest] = match as unknown as [string, string, string];
  return id.slice(0, match.index) + String(BigInt(digits) + by) + rest;
}

/**
 * Declares the contract's tests (a `describe` block named `Adapter contract: <name>`): ids that
 * strictly increase and that a client can send back, delivery of every event once and in order
 * with its name and data intact, `history()` after any id (`events`, `unknown`, `too-old` once a
 * bound trims), independent channels, and no delivery after `close()`.
 *
 * @param name Names the suite in the test report.
 * @param makeAdapter Called before each test (and once more by the tests that need a second,
 *     fresh adapter, as a second process would have).
 * @param teardown Runs after each test, once every channel the suite opened has been closed.
 *
 * Channel names are unique per test and per process, so an adapter backed by shared storage
 * needs no flush between tests.
 */
export function adapterContract(
  name: string,
  makeAdapter: () => Adapter | Promise<Adapter>,
  teardown?: () => Promise<void>,
): void {
  describe(`Adapter contract: ${name}`, () => {
    const DEFAULTS = resolveHistoryOptions(undefined);
    let adapter: Adapter;
    let opened: AdapterChannel[] = [];
    let counter = 0;

    beforeEach(async () => {
      adapter = await makeAdapter();
    });

    afterEach(async () => {
      const channels = opened;
      opened = [];
      await Promise.all(channels.map((channel) => channel.close()));
      await teardown?.();
    });

    /** A fresh channel name: no two tests (or runs) share storage. */
    function uniqueName(label: string): string {
      return `contract:${label}:${process.pid}:${Date.now()}:${++counter}`;
    }

    function open(
      channelName: string,
      history: ResolvedHistoryOptions = DEFAULTS,
      on: Adapter = adapter,
    ): AdapterChannel {
      const channel = on.open(channelName, { history });
      opened.push(channel);
      return channel;
    }

    /** Publishes `events` one after the other; resolves with their ids. */
    async function publishAll(
      channel: AdapterChannel,
      events: readonly AdapterPublish[],
    ): Promise<string[]> {
      const ids: string[] = [];
      for (const event of events) ids.push(await channel.publish(event));
      return ids;
    }

    /** Publishes `count` numbered events; resolves with their ids. */
    function publishNumbered(channel: AdapterChannel, count: number): Promise<string[]> {
      return publishAll(
        channel,
        Array.from({ length: count }, (_, i) => ({ event: "n", data: String(i) })),
      );
    }

    /**
     * Listens and collects every event delivered to `channel`, made active as a Channel does for
     * its first subscriber: every event published after this call must arrive.
     */
    function collect(channel: AdapterChannel): AdapterEvent[] {
      const received: AdapterEvent[] = [];
      channel.listen((event) => received.push(event));
      channel.setActive?.(true);
      return received;
    }

    describe("publish", () => {
      test("resolves with ids that strictly increase per channel", async () => {
        const channel = open(uniqueName("ids"));
        const ids = await publishNumbered(channel, 25);
        expect(new Set(ids).size).toBe(ids.length);
        for (const id of ids) {
          expect(typeof id).toBe("string");
          expect(id).not.toBe("");
          // An id a client can send back in Last-Event-ID (the channel refuses any other).
          expect(idProblem(id)).toBeUndefined();
          expect(channel.compare(id, id)).toBe(0);
        }
        for (let i = 1; i < ids.length; i++) {
          const [earlier, later] = [ids[i - 1]!, ids[i]!];
          expect(channel.compare(earlier, later)).toBeLessThan(0);
          expect(channel.compare(later, earlier)).toBeGreaterThan(0);
        }
        expect(channel.compare(ids[0]!, ids[24]!)).toBeLessThan(0);
        expect(channel.compare(ids[24]!, ids[0]!)).toBeGreaterThan(0);
      });

      test("concurrent publishes get distinct ids, delivered in increasing id order", async () => {
        const channel = open(uniqueName("concurrent"));
        const received = collect(channel);
        const ids = await Promise.all(
          Array.from({ length: 20 }, (_, i) => channel.publish({ event: undefined, data: `${i}` })),
        );
        expect(new Set(ids).size).toBe(20);
        await waitFor(() => received.length >= 20, { what: "20 events" });
        const delivered = received.map((e) => e.id);
        expect([...delivered].sort()).toEqual([...ids].sort());
        for (let i = 1; i < delivered.length; i++) {
          expect(channel.compare(delivered[i - 1]!, delivered[i]!)).toBeLessThan(0);
        }
      });
    });

    describe("listen", () => {
      test("receives every published event exactly once, in order, with event and data intact", async () => {
        const channel = open(uniqueName("listen"));
        const received = collect(channel);
        const ids = await publishAll(channel, SAMPLES);
        await waitFor(() => received.length >= SAMPLES.length, { what: "every event" });
        await sleep(QUIET_MS);
        expect(received.map(wire)).toEqual(SAMPLES.map((e, i) => ({ ...e, id: ids[i] })));
      });

      test("events published in this process carry the value they were published with", async () => {
        const channel = open(uniqueName("value"));
        const received = collect(channel);
        const value = { n: 1, nested: ["a"] };
        await channel.publish({ event: "obj", data: JSON.stringify(value), value });
        await waitFor(() => received.length === 1, { what: "the event" });
        expect(received[0]!.value).toEqual(value);
      });
    });

    describe("history", () => {
      test("history(afterId) returns exactly the events after it", async () => {
        const channel = open(uniqueName("history"));
        const ids = await publishAll(channel, SAMPLES);
        const all = SAMPLES.map((e, i) => ({ ...e, id: ids[i]! }));
        expectEvents(await channel.history(ids[0]!), all.slice(1)); // first
        expectEvents(await channel.history(ids[2]!), all.slice(3)); // middle
        expectEvents(await channel.history(ids[4]!), all.slice(5)); // last but one
      });

      test("history(lastId) is empty: the client is up to date", async () => {
        const channel = open(uniqueName("up-to-date"));
        const ids = await publishNumbered(channel, 3);
        expect(await channel.history(ids[2]!)).toEqual({ kind: "events", events: [] });
      });

      test("history reflects events published after an earlier call", async () => {
        const channel = open(uniqueName("later"));
        const [first] = await publishNumbered(channel, 1);
        expect(await channel.history(first!)).toEqual({ kind: "events", events: [] });
        const id = await channel.publish({ event: undefined, data: "next" });
        expectEvents(await channel.history(first!), [{ id, event: undefined, data: "next" }]);
      });

      test("an id never issued is unknown, with the oldest and newest ids held", async () => {
        const channel = open(uniqueName("unknown"));
        const ids = await publishNumbered(channel, 4);

        const other = open(uniqueName("elsewhere"), DEFAULTS, await makeAdapter());
        const foreign = await publishNumbered(other, 6);

        const future = futureIdOf(ids[3]!);
        // The future id has the shape of this channel's ids: it orders after the newest.
        expect(channel.compare(future, ids[3]!)).toBeGreaterThan(0);

        for (const id of ["nope", "", foreign[5]!, foreign[0]!, "9".repeat(300), future]) {
          expect({ id, result: await channel.history(id) }).toEqual({
            id,
            result: { kind: "unknown", oldestId: ids[0], newestId: ids[3] },
          });
        }
      });

      test("on a channel with no events, every id is unknown with no oldest or newest", async () => {
        const channel = open(uniqueName("empty"));
        for (const id of ["nope", "", "0", "1"]) {
          expect(await channel.history(id)).toEqual({
            kind: "unknown",
            oldestId: undefined,
            newestId: undefined,
          });
        }
      });

      test("once a bound trims, an id before the oldest retained is too-old", async () => {
        const history = resolveHistoryOptions({
          max: 3,
          maxBytes: 4 * 1024 * 1024,
          maxAge: Infinity,
        });
        const channel = open(uniqueName("trim"), history);
        const ids = await publishNumbered(channel, 7); // keeps 4, 5, 6
        const tooOld = { kind: "too-old", oldestId: ids[4], newestId: ids[6] };
        expect(await channel.history(ids[0]!)).toEqual(tooOld);
        expect(await channel.history(ids[2]!)).toEqual(tooOld);
        // The one before the oldest retained is not too old: nothing after it was lost.
        expectEvents(
          await channel.history(ids[3]!),
          [4, 5, 6].map((i) => ({ id: ids[i]!, event: "n", data: String(i) })),
        );
        expectEvents(await channel.history(ids[5]!), [{ id: ids[6]!, event: "n", data: "6" }]);
        expect(await channel.history(ids[6]!)).toEqual({ kind: "events", events: [] });
      });
    });

    describe("channels", () => {
      test("two channels with different names on one adapter are independent", async () => {
        const a = open(uniqueName("a"));
        const b = open(uniqueName("b"));
        const receivedA = collect(a);
        const receivedB = collect(b);
        const idsA = await publishAll(a, [
          { event: "a", data: "1" },
          { event: "a", data: "2" },
        ]);
        const idsB = await publishAll(b, [{ event: "b", data: "1" }]);
        await waitFor(() => receivedA.length >= 2 && receivedB.length >= 1, { what: "events" });
        await sleep(QUIET_MS);
        expect(receivedA.map(wire)).toEqual([
          { id: idsA[0], event: "a", data: "1" },
          { id: idsA[1], event: "a", data: "2" },
        ]);
        expect(receivedB.map(wire)).toEqual([{ id: idsB[0], event: "b", data: "1" }]);
        expectEvents(await a.history(idsA[0]!), [{ id: idsA[1]!, event: "a", data: "2" }]);
        expect(await b.history(idsB[0]!)).toEqual({ kind: "events", events: [] });
        expect(await a.history(idsB[0]!)).toEqual({
          kind: "unknown",
          oldestId: idsA[0],
          newestId: idsA[1],
        });
      });
    });

    describe("close", () => {
      test("resolves and stops delivery to the listener", async () => {
        const channelName = uniqueName("close");
        const channel = open(channelName);
        const received = collect(channel);
        await channel.publish({ event: undefined, data: "before" });
        await waitFor(() => received.length === 1, { what: "the first event" });

        opened = opened.filter((c) => c !== channel);
        await expect(Promise.resolve(channel.close())).resolves.toBeUndefined();

        // Whatever reaches the channel now (its own publish, if allowed after close, or another
        // instance's on the same name) must not reach the closed listener.
        const sibling = open(channelName);
        await Promise.allSettled([
          Promise.resolve().then(() => channel.publish({ event: undefined, data: "after" })),
          sibling.publish({ event: undefined, data: "sibling" }),
        ]);
        await sleep(QUIET_MS);
        expect(received.map((e) => e.data)).toEqual(["before"]);
      });
    });
  });
}
