/**
 * What only the Redis adapter has to show: its options, stream ids, trimming and expiry by Redis
 * and the resets they give, the live feed (sharded pub/sub only on channels with subscribers here,
 * gap reads), a user's client, and a clean close().
 */
import express from "express";
import { createClient } from "redis";
import { Channel, sse, type AdapterChannel, type AdapterEvent } from "@sluice/express-sse";
import { collectEvents } from "@sluice/express-sse/testing";
import { resolveHistoryOptions, type HistoryOptions } from "../../express-sse/src/history";
import { activeResources, collectGarbage } from "../../express-sse/test/helpers/gc";
import { closeAllServers, listen, sleep, waitFor } from "../../express-sse/test/helpers/server";
import {
  createRedisAdapter,
  hashSlot,
  metaKey,
  streamKey,
  type RedisAdapter,
  type RedisAdapterOptions,
} from "../src";
import {
  compareEventIds,
  compareStreamIds,
  isStreamId,
  streamTag,
  toEventId,
  toStreamId,
} from "../src/codec";
import { feedStarted } from "./helpers/adapters";
import { startRedisServer, type RedisServer } from "./helpers/redis-server";
import { closeAllStreams, dataOf, openStream } from "./helpers/sse-client";

let redis: RedisServer;
/** For looking at what the adapter did (XINFO, CLIENT LIST) and writing behind its back. */
let admin: ReturnType<typeof createClient>;
let adapters: RedisAdapter[] = [];
let errors: Error[] = [];
let counter = 0;

beforeAll(async () => {
  redis = await startRedisServer();
  admin = createClient({ url: redis.url });
  admin.on("error", () => undefined); // the server goes away at the end
  await admin.connect();
});

afterAll(async () => {
  await admin.close?.();
  await redis.dispose();
});

afterEach(async () => {
  closeAllStreams();
  await closeAllServers();
  await Promise.all(adapters.map((adapter) => adapter.close()));
  adapters = [];
  errors = [];
});

function adapterFor(options: Partial<RedisAdapterOptions> = {}): RedisAdapter {
  const adapter = createRedisAdapter({ url: redis.url, ...options } as RedisAdapterOptions);
  adapter.on("error", (err) => errors.push(err));
  adapters.push(adapter);
  return adapter;
}

function openOn(adapter: RedisAdapter, name: string, history?: HistoryOptions): AdapterChannel {
  return adapter.open(name, { history: resolveHistoryOptions(history) });
}

const unique = (label: string) => `test:${label}:${process.pid}:${++counter}`;

async function publishNumbered(channel: AdapterChannel, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push(await channel.publish({ event: "n", data: String(i) }));
  return ids;
}

/** `XINFO STREAM` of a channel's stream, as an object (the admin client speaks RESP3). */
async function xinfo(name: string): Promise<Record<string, unknown>> {
  const reply: unknown = await admin.sendCommand(["XINFO", "STREAM", keyOf(name)]);
  if (!Array.isArray(reply)) return reply as Record<string, unknown>;
  const record: Record<string, unknown> = {};
  for (let i = 0; i + 1 < reply.length; i += 2) record[String(reply[i])] = reply[i + 1];
  return record;
}

/** Connections named `name` that Redis has now (`CLIENT LIST`). */
async function connectionCount(name: string): Promise<number> {
  const list = String(await admin.sendCommand(["CLIENT", "LIST"]));
  return list.split("\n").filter((line) => line.includes(` name=${name} `)).length;
}

const subscriberCount = () => connectionCount("sluice-sub");

/** The stream key of channel `name` with the default prefix. */
const keyOf = (name: string) => streamKey("sluice:", name);

/** Sharded pub/sub channels Redis has subscribers on, among `names`' keys. */
async function subscribedAmong(names: readonly string[]): Promise<string[]> {
  const active = new Set((await admin.sendCommand(["PUBSUB", "SHARDCHANNELS"])) as string[]);
  return names.filter((name) => active.has(keyOf(name)));
}

/** Polls an async condition (every 10 ms, up to 2 s). */
async function eventually(predicate: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Listens on `channel` and makes it active, as a Channel with a subscriber does; returns the array the events arrive in. */
async function listening(channel: AdapterChannel): Promise<AdapterEvent[]> {
  const received: AdapterEvent[] = [];
  channel.listen((event) => received.push(event));
  channel.setActive!(true);
  return received;
}

describe("createRedisAdapter(options)", () => {
  test.each([
    [undefined, /needs an options object/],
    [{}, /needs exactly one of the "url", "rootNodes" and "client" options/],
    [{ url: "redis://x", client: {} }, /needs exactly one of the "url", "rootNodes" and "client"/],
    [{ url: "redis://x", rootNodes: ["redis://y"] }, /needs exactly one of the "url", "rootNodes"/],
    [{ rootNodes: [] }, /The "rootNodes" option must be a non-empty array of URLs/],
    [{ rootNodes: "redis://x" }, /The "rootNodes" option must be a non-empty array of URLs/],
    [{ url: "redis://x", prefix: "a{b}:" }, /The "prefix" option must not contain "{" or "}"/],
    [{ url: "" }, /The "url" option must be a non-empty string/],
    [{ client: { sendCommand: 1 } }, /The "client" option must be a node-redis client/],
    [{ url: "redis://x", prefx: "a" }, /Unknown createRedisAdapter\(\) option "prefx"/],
    [{ url: "redis://x", prefix: 1 }, /The "prefix" option must be a string, got number/],
    [{ url: "redis://x", reconnect: { max: 1 } }, /Unknown "reconnect" option "max"/],
  ])("refuses %j with a TypeError", (options, message) => {
    expect(() => createRedisAdapter(options as RedisAdapterOptions)).toThrow(TypeError);
    expect(() => createRedisAdapter(options as RedisAdapterOptions)).toThrow(message);
  });

  test.each([
    [{ publishTimeout: 0 }, '"publishTimeout" option must be a safe integer of at least 1, got 0'],
    [{ pingInterval: 1.5 }, '"pingInterval" option must be a safe integer of at least 1, got 1.5'],
    [{ metaTtl: 0 }, '"metaTtl" option must be a safe integer of at least 1, got 0'],
    [{ minStreamLength: -1 }, '"minStreamLength" option must be a safe integer of at least 0'],
    [{ reconnect: { minDelay: 500, maxDelay: 100 } }, '"reconnect.minDelay" option (500) must not'],
  ])("refuses %j with a RangeError", (options, message) => {
    const create = () => createRedisAdapter({ url: "redis://x", ...options });
    expect(create).toThrow(RangeError);
    expect(create).toThrow(message);
  });
});

describe("ids", () => {
  test("are the stream ids Redis issues plus a tag of the stream, the same in every process", async () => {
    const name = unique("ids");
    const [a, b] = [adapterFor(), adapterFor()];
    const [onA, onB] = [openOn(a, name), openOn(b, name)];
    const id1 = await onA.publish({ event: undefined, data: "1" });
    const id2 = await onB.publish({ event: undefined, data: "2" });
    const tag = streamTag(streamKey("sluice:", name));
    expect(tag).toMatch(/^[a-z]{6}$/);
    expect(id1).toMatch(new RegExp(`^\\d+-\\d+-${tag}$`));
    expect(onA.compare(id1, id2)).toBeLessThan(0);
    expect(onB.compare(id2, id1)).toBeGreaterThan(0);
    const range = (await admin.sendCommand(["XRANGE", keyOf(name), "-", "+"])) as string[][];
    expect(range.map((entry) => toEventId(entry[0]!, tag))).toEqual([id1, id2]);
  });

  test("an id another channel issued in the same millisecond is unknown here", async () => {
    const adapter = adapterFor();
    const [one, two] = [openOn(adapter, unique("one")), openOn(adapter, unique("two"))];
    // Publish pairs until both streams issue the same stream id (the same ms, seq 0).
    for (let attempt = 0; attempt < 50; attempt++) {
      const [a, b] = await Promise.all([
        one.publish({ event: undefined, data: "a" }),
        two.publish({ event: undefined, data: "b" }),
      ]);
      if (toStreamId(a) !== toStreamId(b)) continue;
      expect(a).not.toBe(b);
      expect(await two.history(a)).toEqual({
        kind: "unknown",
        oldestId: expect.any(String),
        newestId: b,
      });
      expect(await one.history(b)).toEqual({
        kind: "unknown",
        oldestId: expect.any(String),
        newestId: a,
      });
      return;
    }
    throw new Error("never got the same stream id on both streams");
  });

  test("compare() orders them numerically, exactly, up to 64 bits", () => {
    const max = "18446744073709551615";
    const pairs: Array<[string, string]> = [
      ["9-0", "10-0"],
      ["1-9", "1-10"],
      ["1700000000000-99", "1700000000001-0"],
      [`${max}-0`, `${max}-1`],
      ["18446744073709551614-" + max, `${max}-0`],
    ];
    for (const [lower, higher] of pairs) {
      expect(compareStreamIds(lower, higher)).toBeLessThan(0);
      expect(compareStreamIds(higher, lower)).toBeGreaterThan(0);
      expect(compareStreamIds(lower, lower)).toBe(0);
      const [a, b] = [toEventId(lower, "abcdef"), toEventId(higher, "abcdef")];
      expect(compareEventIds(a, b)).toBeLessThan(0);
      expect(compareEventIds(b, a)).toBeGreaterThan(0);
    }
    // Not ids this adapter issues: order as 0-0.
    for (const bad of ["", "1", "01-1", "1-1 ", "-1-1", "18446744073709551616-0", "a-b"]) {
      expect(isStreamId(bad)).toBe(false);
      expect(compareStreamIds(bad, "0-1")).toBeLessThan(0);
      expect(compareEventIds(`${bad}-abcdef`, "0-1-abcdef")).toBeLessThan(0);
    }
  });
});

describe("history", () => {
  test("once Redis trimmed (MAXLEN ~), an id older than the stream's first entry is too-old", async () => {
    const adapter = adapterFor({ minStreamLength: 0 });
    const name = unique("trim");
    const channel = openOn(adapter, name, { max: 10 });
    const ids = await publishNumbered(channel, 350);
    const info = await xinfo(name);
    // Whole nodes of 100 entries went: at least 11 are left, fewer than 350.
    expect(Number(info["length"])).toBeGreaterThanOrEqual(11);
    expect(Number(info["length"])).toBeLessThan(350);
    expect(Number(info["entries-added"])).toBe(350);
    const first = String((info["first-entry"] as unknown[])[0]);
    expect(compareStreamIds(first, toStreamId(ids[0]!)!)).toBeGreaterThan(0);

    const reset = { kind: "too-old", oldestId: ids[340], newestId: ids[349] };
    expect(await channel.history(ids[0]!)).toEqual(reset);
    expect(await channel.history(ids[200]!)).toEqual(reset); // stored, but beyond max
    const resumed = await channel.history(ids[339]!);
    expect(resumed.kind === "events" && resumed.events.map((e) => e.data)).toEqual(
      Array.from({ length: 10 }, (_, i) => String(340 + i)),
    );
  });

  test("a subscriber resuming from a trimmed id gets event: reset (too-old), then live events", async () => {
    const adapter = adapterFor({ minStreamLength: 0 });
    const channel = new Channel(unique("reset"), { adapter, history: { max: 5 } });
    const app = express();
    app.use(sse({ heartbeat: 0 }));
    app.get("/c", (_req, res) => void channel.subscribe(res));
    const server = await listen(app);
    const ids: string[] = [];
    for (let i = 0; i < 250; i++) ids.push(await channel.publish(String(i)));

    const resumed = collectEvents(server.url, {
      path: "/c",
      headers: { "Last-Event-ID": ids[0]! },
      count: 2,
    });
    await waitFor(() => channel.size === 1, { what: "the subscriber" });
    const live = await channel.publish("live");
    const { events } = await resumed;
    expect(events[0]).toEqual({
      event: "reset",
      id: ids[249],
      data: JSON.stringify({ reason: "too-old", oldestId: ids[245], newestId: ids[249] }),
    });
    expect(events[1]).toEqual({ event: "message", id: live, data: "live" });
    await channel.close();
  });

  test("maxAge: an event older than maxAge is no longer replayed (Redis's clock)", async () => {
    const adapter = adapterFor();
    const channel = openOn(adapter, unique("age"), { maxAge: 300 });
    const [x, a] = await publishNumbered(channel, 2);
    await sleep(400);
    const b = await channel.publish({ event: undefined, data: "b" });
    expect(await channel.history(x!)).toEqual({ kind: "too-old", oldestId: b, newestId: b });
    const fromA = await channel.history(a!);
    expect(fromA.kind === "events" && fromA.events.map((e) => e.id)).toEqual([b]);
  });

  test("maxAge expires an idle channel's keys: a resume from an old id then gets event: reset", async () => {
    const adapter = adapterFor({ metaTtl: 400 });
    const name = unique("expire");
    const channel = new Channel(name, { adapter, history: { maxAge: 200 } });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await channel.publish(String(i)));
    expect(Number(await admin.sendCommand(["PTTL", keyOf(name)]))).toBeGreaterThan(100);
    expect(Number(await admin.sendCommand(["PTTL", metaKey(keyOf(name))]))).toBeGreaterThan(300);
    await sleep(250);
    // The history is gone; the meta hash still knows the channel's ids.
    expect(await admin.sendCommand(["EXISTS", keyOf(name)])).toBe(0);
    const adapterChannel = openOn(adapter, name, { maxAge: 200 });
    expect(await adapterChannel.history(ids[2]!)).toEqual({ kind: "events", events: [] });
    expect(await adapterChannel.history(ids[0]!)).toEqual({
      kind: "too-old",
      oldestId: undefined,
      newestId: ids[2],
    });
    await sleep(250);
    expect(await admin.sendCommand(["EXISTS", keyOf(name), metaKey(keyOf(name))])).toBe(0);

    const app = express();
    app.use(sse({ heartbeat: 0 }));
    app.get("/c", (_req, res) => void channel.subscribe(res));
    const server = await listen(app);
    const resumed = collectEvents(server.url, {
      path: "/c",
      headers: { "Last-Event-ID": ids[2]! },
      count: 2,
    });
    await waitFor(() => channel.size === 1, { what: "the subscriber" });
    const live = await channel.publish("after");
    const { events } = await resumed;
    expect(events).toEqual([
      {
        event: "reset",
        id: "",
        data: JSON.stringify({ reason: "unknown", oldestId: null, newestId: null }),
      },
      { event: "message", id: live, data: "after" },
    ]);
    await channel.close();
  });

  test("a stream that expired and was created again still resumes its last id without a gap", async () => {
    const adapter = adapterFor();
    const name = unique("recreated");
    const channel = openOn(adapter, name, { maxAge: 150 });
    const [x, a] = await publishNumbered(channel, 2);
    await sleep(250);
    expect(await admin.sendCommand(["EXISTS", keyOf(name)])).toBe(0);
    const b = await channel.publish({ event: undefined, data: "b" });
    const fromA = await channel.history(a!);
    expect(fromA.kind === "events" && fromA.events.map((e) => e.data)).toEqual(["b"]);
    expect(await channel.history(x!)).toEqual({ kind: "too-old", oldestId: b, newestId: b });
  });

  test("an id inside the stream's range that it never held is unknown, and so are ids of another shape", async () => {
    const adapter = adapterFor();
    const name = unique("never");
    const channel = openOn(adapter, name);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push(await channel.publish({ event: undefined, data: String(i) }));
      await sleep(3); // a new millisecond, so that ids[0]'s ms with a large seq was never issued
    }
    const tag = streamTag(streamKey("sluice:", name));
    const [ms, seq] = toStreamId(ids[0]!, tag)!.split("-") as [string, string];
    const never = toEventId(`${ms}-${Number(seq) + 500}`, tag);
    expect(compareEventIds(never, ids[1]!)).toBeLessThan(0);
    const unknown = { kind: "unknown", oldestId: ids[0], newestId: ids[2] };
    for (const id of [
      never,
      toEventId("0-0", tag),
      toStreamId(ids[1]!), // no tag
      `${toStreamId(ids[1]!)}-${tag === "aaaaaa" ? "aaaaab" : "aaaaaa"}`, // another tag
      `${ms}-${tag}`,
      `${ms}-01-${tag}`,
    ]) {
      expect({ id, result: await channel.history(id!) }).toEqual({ id, result: unknown });
    }
    expect(await channel.history(ids[1]!)).toEqual({
      kind: "events",
      events: [{ id: ids[2], event: undefined, data: "2" }],
    });
  });
});

describe("the live feed", () => {
  test("one pub/sub connection, subscribed only to the channels with subscribers here", async () => {
    const adapter = adapterFor();
    const names = Array.from({ length: 5 }, (_, i) => unique(`shared${i}`));
    const channels = names.map((name) => openOn(adapter, name));
    const received = await Promise.all(channels.slice(0, 3).map(listening));
    await adapter.ready();
    await eventually(async () => (await subscribedAmong(names)).length === 3, "3 subscriptions");
    expect(await subscribedAmong(names)).toEqual(names.slice(0, 3));
    expect(adapter.stats()).toMatchObject({ channels: 5, subscriptions: 3 });
    for (const [i, channel] of channels.entries()) {
      await channel.publish({ event: undefined, data: String(i) });
    }
    await waitFor(() => received.every((r) => r.length === 1), { what: "one event each" });
    expect(received.map((r) => r.map((e) => e.data))).toEqual([["0"], ["1"], ["2"]]);
    expect(await subscriberCount()).toBe(1);

    // The last subscriber leaves: the subscription goes, and the channel costs nothing here.
    channels[0]!.setActive!(false);
    channels[1]!.setActive!(false);
    await eventually(async () => (await subscribedAmong(names)).length === 1, "1 subscription");
    expect(await subscribedAmong(names)).toEqual([names[2]]);
    expect(adapter.stats().subscriptions).toBe(1);
  });

  test("an inactive channel gets nothing; active again, it gets what is published from then on", async () => {
    const adapter = adapterFor();
    const channel = openOn(adapter, unique("again"));
    const received = await listening(channel);
    await adapter.ready();
    await channel.publish({ event: undefined, data: "1" });
    await waitFor(() => received.length === 1, { what: "the first event" });
    channel.setActive!(false);
    await channel.publish({ event: undefined, data: "while inactive" });
    await sleep(50);
    channel.setActive!(true);
    await channel.publish({ event: undefined, data: "2" });
    await waitFor(() => received.length === 2, { what: "the event after reactivation" });
    await sleep(50);
    expect(received.map((e) => e.data)).toEqual(["1", "2"]);
  });

  test("a channel gets events another process published after it became active, before its adapter connected", async () => {
    const name = unique("early");
    const other = adapterFor();
    await other.ready();
    const old = await openOn(other, name).publish({ event: undefined, data: "before open" });
    expect(old).toBeDefined();
    await sleep(5); // the old entry is at least a millisecond older than the activation

    // A user's client, connected only later: the adapter's position query waits for it.
    const client = createClient({ url: redis.url });
    const late = createRedisAdapter({ client });
    adapters.push(late);
    try {
      const channel = openOn(late, name);
      const received = await listening(channel);
      await openOn(other, name).publish({ event: undefined, data: "after open" });
      expect(late.stats().commandsConnected).toBe(false); // the race: published before it asked
      await client.connect();
      await late.ready();
      await openOn(late, name).publish({ event: undefined, data: "own" });
      await waitFor(() => received.length >= 2, { what: "both events after open" });
      await sleep(50);
      expect(received.map((e) => e.data)).toEqual(["after open", "own"]);
    } finally {
      await late.close();
      await client.close();
    }
  });

  test("own publishes come through pub/sub, in the same order in every process", async () => {
    const name = unique("order");
    const [a, b] = [adapterFor(), adapterFor()];
    const [onA, onB] = [openOn(a, name), openOn(b, name)];
    const [gotA, gotB] = [await listening(onA), await listening(onB)];
    await Promise.all([a.ready(), b.ready()]);
    await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        (i % 2 ? onA : onB).publish({ event: undefined, data: String(i), value: i }),
      ),
    );
    await waitFor(() => gotA.length === 100 && gotB.length === 100, { what: "100 events each" });
    expect(gotA.map((e) => e.id)).toEqual(gotB.map((e) => e.id));
    for (let i = 1; i < gotA.length; i++) {
      expect(onA.compare(gotA[i - 1]!.id, gotA[i]!.id)).toBeLessThan(0);
    }
    // Each side knows the values of its own publishes only.
    expect(gotA.filter((e) => "value" in e).map((e) => e.value)).toEqual(
      gotA.filter((e) => Number(e.data) % 2 === 1).map((e) => Number(e.data)),
    );
  });

  test("publishes fired without waiting are stored and delivered in call order, even with the script cache flushed", async () => {
    const adapter = adapterFor();
    const channel = openOn(adapter, unique("pipelined"));
    const received = await listening(channel);
    await adapter.ready();
    await admin.sendCommand(["SCRIPT", "FLUSH"]); // as after a restart, or on a promoted replica
    const ids = await Promise.all(
      Array.from({ length: 2000 }, (_, i) =>
        channel.publish({ event: undefined, data: String(i), value: i }),
      ),
    );
    for (let i = 1; i < ids.length; i++)
      expect(channel.compare(ids[i - 1]!, ids[i]!)).toBeLessThan(0);
    await waitFor(() => received.length === 2000, { timeout: 20_000, what: "2,000 events" });
    expect(received.map((e) => e.data)).toEqual(ids.map((_, i) => String(i)));
    expect(received.map((e) => e.id)).toEqual(ids);
    expect(received.every((e, i) => e.value === i)).toBe(true); // own values, attached in order
  }, 30_000);

  test("an event stored without its announcement is noticed at the next one and read from the stream", async () => {
    const adapter = adapterFor();
    const name = unique("missed");
    const channel = openOn(adapter, name);
    const received = await listening(channel);
    await adapter.ready();
    await channel.publish({ event: undefined, data: "1" });
    await waitFor(() => received.length === 1, { what: "the first event" });
    // Stored as the script would, but never announced (as if the message were lost in transit).
    const id = String(await admin.sendCommand(["XADD", keyOf(name), "*", "d", "2"]));
    await admin.sendCommand(["HSET", `${keyOf(name)}:meta`, "l", id]);
    const gapReads = adapter.stats().gapReads;
    await channel.publish({ event: undefined, data: "3" });
    await waitFor(() => received.length === 3, { what: "all three events" });
    expect(received.map((e) => e.data)).toEqual(["1", "2", "3"]);
    expect(adapter.stats().gapReads).toBe(gapReads + 1);
  });

  test("entries and messages written by something else are skipped and reported once", async () => {
    const adapter = adapterFor();
    const name = unique("foreign");
    const channel = openOn(adapter, name);
    const received = await listening(channel);
    await adapter.ready();
    await eventually(async () => (await subscribedAmong([name])).length === 1, "subscribed");
    await admin.sendCommand(["SPUBLISH", keyOf(name), "not an announcement"]);
    await admin.sendCommand(["SPUBLISH", keyOf(name), "nor this"]);
    await channel.publish({ event: undefined, data: "ours" });
    await waitFor(() => received.length === 1, { what: "our event" });
    expect(received[0]!.data).toBe("ours");
    expect(errors.map((e) => e.message)).toEqual([
      expect.stringContaining("a message that is not an announcement"),
    ]);
  });
});

describe("channel names and keys", () => {
  test("a channel's keys share one hash slot, and braces in a name cannot break out of the tag", () => {
    expect(streamKey("sluice:", "chat")).toBe("sluice:{chat}");
    expect(streamKey("sluice:", "a}b{%")).toBe("sluice:{a%7Db%7B%25}");
    for (const name of ["chat", "}x", "{a}", "user:42", "ünï 👋"]) {
      const key = streamKey("app:", name);
      expect(hashSlot(metaKey(key))).toBe(hashSlot(key));
    }
    expect(hashSlot(streamKey("sluice:", "room:1"))).not.toBe(
      hashSlot(streamKey("sluice:", "room:2")),
    );
  });

  test("a name Redis cannot store exactly is refused at open()", () => {
    const adapter = adapterFor();
    expect(() => openOn(adapter, "bad\uD800name")).toThrow(
      new TypeError(
        'Channel name "bad\\ud800name" has a lone surrogate: Redis keys are UTF-8, so it cannot be stored exactly',
      ),
    );
    expect(() => openOn(adapter, "")).toThrow("A channel name must be a non-empty string");
  });
});

describe("filters across processes", () => {
  test("see the published value on another process, live and on replay; strings stay strings", async () => {
    const name = unique("filters");
    const [a, b] = [adapterFor(), adapterFor()];
    await Promise.all([a.ready(), b.ready()]);
    type Note = { to: string; text: string };
    const publisher = new Channel<{ note: Note; message: string }>(name, { adapter: a });
    const receiver = new Channel<{ note: Note; message: string }>(name, { adapter: b });
    const seen: unknown[] = [];
    const app = express();
    app.use(sse({ heartbeat: 0 }));
    app.get("/c", (_req, res) =>
      receiver.subscribe(res, {
        filter: (e) => {
          seen.push(e.data);
          return e.event === "message" || (e.data as Note).to === "ann";
        },
      }),
    );
    const server = await listen(app);

    const first = await publisher.publish({ to: "ann", text: "1" }, { event: "note" });
    const live = collectEvents(server.url, {
      path: "/c",
      until: (e) => e.data === "plain text",
    });
    await waitFor(() => receiver.size === 1, { what: "the live subscriber" });
    await publisher.publish({ to: "bob", text: "not for ann" }, { event: "note" });
    await publisher.publish({ to: "ann", text: "2" }, { event: "note" });
    await publisher.publish("plain text", { event: "message" });
    // B's feed starts from the newest id or, when Redis answers late (a loaded machine), from the
    // Redis time of the activation less the wait, whichever is older (README, "Never a silent
    // gap"): then `first`, published just before, is delivered too. Never anything else.
    const events = (await live).events.filter((e) => e.id !== first);
    const seenAfterFirst = seen.filter((data) => (data as Note).text !== "1");
    expect(events.map((e) => [e.event, e.data])).toEqual([
      ["note", JSON.stringify({ to: "ann", text: "2" })],
      ["message", "plain text"],
    ]);
    expect(seenAfterFirst).toEqual([
      { to: "bob", text: "not for ann" },
      { to: "ann", text: "2" },
      "plain text",
    ]);

    // Replayed from Redis (history read by B): the filter sees values there too.
    const replayed = await collectEvents(server.url, {
      path: "/c",
      headers: { "Last-Event-ID": first },
      count: 2,
    });
    expect(replayed.events.map((e) => e.data)).toEqual([
      JSON.stringify({ to: "ann", text: "2" }),
      "plain text",
    ]);
    await Promise.all([publisher.close(), receiver.close()]);
  });
});

describe("presence: false", () => {
  test("a channel without presence counts this process only, and Redis holds nothing for it; events still cross", async () => {
    const [a, b] = [adapterFor(), adapterFor()];
    await Promise.all([a.ready(), b.ready()]);
    const quiet = unique("no-presence");
    const counted = unique("presence");
    const channels = {
      quietA: new Channel(quiet, { adapter: a, presence: false }),
      quietB: new Channel(quiet, { adapter: b, presence: false }),
      countedA: new Channel(counted, { adapter: a }),
      countedB: new Channel(counted, { adapter: b }),
    };
    const servers = await Promise.all(
      (["A", "B"] as const).map((side) => {
        const app = express();
        app.use(sse({ heartbeat: 0 }));
        app.get("/quiet", (req, res) =>
          channels[`quiet${side}`].subscribe(res, { member: { user: String(req.query["u"]) } }),
        );
        app.get("/counted", (_req, res) => channels[`counted${side}`].subscribe(res));
        return listen(app);
      }),
    );
    const [urlA, urlB] = servers.map((server) => server.url) as [string, string];
    // Two subscribers on A and one on B, on each channel.
    for (const [url, u] of [
      [urlA, "ann"],
      [urlA, "bob"],
      [urlB, "cid"],
    ] as const) {
      openStream(`${url}/quiet?u=${u}`);
      openStream(`${url}/counted`);
    }
    // With presence, both processes count all three: the presence scripts have run.
    await waitFor(() => channels.countedA.count === 3 && channels.countedB.count === 3, {
      what: "the counted channel at 3 on both processes",
    });
    await waitFor(() => channels.quietA.size === 2 && channels.quietB.size === 1, {
      what: "the subscribers of the channel without presence",
    });
    // Without: each process its own subscribers, and their members.
    expect([channels.quietA.count, channels.quietB.count]).toEqual([2, 1]);
    const members = await channels.quietA.members();
    expect(members.total).toBe(2);
    expect(members.members.map((m) => (m as { user: string }).user).sort()).toEqual(["ann", "bob"]);
    expect(await channels.quietB.members()).toEqual({ total: 1, members: [{ user: "cid" }] });
    // Nothing stored for it in Redis; the counted channel has its hash.
    const presenceHash = (name: string) => `sluice:{${name}}:presence`;
    expect(await admin.exists(presenceHash(counted))).toBe(1);
    expect(await admin.exists(presenceHash(quiet))).toBe(0);
    // Events still reach every process.
    const received = collectEvents(urlB, { path: "/quiet", count: 1 });
    await waitFor(() => channels.quietB.size === 2, { what: "B's second subscriber" });
    await channels.quietA.publish("to everyone");
    expect((await received).events.map((e) => e.data)).toEqual(["to everyone"]);
    await Promise.all(Object.values(channels).map((channel) => channel.close()));
    expect(errors).toEqual([]);
  });
});

describe("a user's client", () => {
  test("carries the commands, is duplicated for pub/sub, and is never closed", async () => {
    const client = createClient({ url: redis.url });
    client.on("error", () => undefined);
    await client.connect();
    const listeners = ["ready", "error"].map((e) => (client as any).listenerCount(e));
    const adapter = createRedisAdapter({ client });
    const name = unique("user");
    const channel = openOn(adapter, name);
    const received = await listening(channel);
    await adapter.ready();
    await waitFor(() => feedStarted(adapter, name), { what: "the feed" });
    await channel.publish({ event: undefined, data: "x" });
    await waitFor(() => received.length === 1, { what: "the event" });
    expect(await subscriberCount()).toBe(1);

    await adapter.close();
    expect(client.isOpen).toBe(true);
    expect(await client.sendCommand(["PING"])).toBe("PONG");
    expect(["ready", "error"].map((e) => (client as any).listenerCount(e))).toEqual(listeners);
    await eventually(async () => (await subscriberCount()) === 0, "the pub/sub connection to go");
    await client.close?.();
  });
});

describe("close()", () => {
  test("right after creation, while connecting, leaves no connection behind", async () => {
    for (const wait of [0, 1, 3, 10]) {
      const adapter = createRedisAdapter({ url: redis.url });
      openOn(adapter, unique("early"));
      if (wait > 0) await sleep(wait);
      await adapter.close();
    }
    await eventually(
      async () => (await subscriberCount()) === 0 && (await connectionCount("sluice")) === 0,
      "no adapter connection left",
    );
  });

  test("while Redis is unreachable, ends at once and leaves nothing running", async () => {
    const before = activeResources();
    const adapter = createRedisAdapter({ url: "redis://127.0.0.1:1" }); // nothing listens there
    const reports: string[] = [];
    adapter.on("error", (err) => reports.push(err.message));
    const channel = openOn(adapter, "nowhere");
    const publish = channel.publish({ event: undefined, data: "x" });
    await sleep(200);
    const started = Date.now();
    await adapter.close();
    expect(Date.now() - started).toBeLessThan(3000);
    await expect(publish).rejects.toThrow('Redis channel "nowhere" is closed');
    expect(reports).toContainEqual(
      expect.stringMatching(/^Lost the Redis pub\/sub connection \(.*ECONNREFUSED.*\)/),
    );
    await waitFor(() => JSON.stringify(activeResources()) === JSON.stringify(before), {
      timeout: 5000,
      what: `active resources back to ${JSON.stringify(before)}`,
    });
  });

  test("releases every connection, timer and listener: active resources back to baseline", async () => {
    await collectGarbage();
    const before = activeResources();
    const adapter = createRedisAdapter({ url: redis.url });
    const channel = new Channel(unique("close"), { adapter });
    const app = express();
    app.use(sse({ heartbeat: 0 }));
    app.get("/c", (_req, res) => void channel.subscribe(res));
    const server = await listen(app);
    await adapter.ready();
    const client = openStream(`${server.url}/c`);
    await waitFor(() => channel.size === 1, { what: "the subscriber" });
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) ids.push(await channel.publish(String(i)));
    await waitFor(() => client.events.length === 50, { what: "50 events" });
    expect(dataOf(client)).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
    const resumed = openStream(`${server.url}/c`, ids[0]!); // history, through the channel
    await waitFor(() => resumed.events.length === 49, { what: "49 resumed events" });

    client.close();
    resumed.close();
    await channel.close();
    await adapter.close();
    await adapter.close(); // safe twice
    await server.close();
    expect(() => adapter.open("x", { history: resolveHistoryOptions(undefined) })).toThrow(
      "The Redis adapter is closed",
    );
    await waitFor(() => JSON.stringify(activeResources()) === JSON.stringify(before), {
      timeout: 5000,
      what: `active resources back to ${JSON.stringify(before)} (now ${JSON.stringify(activeResources())})`,
    });
  });
});
