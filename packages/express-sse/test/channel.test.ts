import express from "express";
import http from "node:http";
import { EventSource } from "eventsource";
import {
  Channel,
  MemoryAdapter,
  sse,
  type Adapter,
  type AdapterChannel,
  type AdapterEvent,
  type AdapterReset,
  type SseStream,
  type StreamClosedError,
} from "../src";
import { collectEvents } from "../src/testing";
import { activeResources, collectGarbage, steadyStateHeapGrowth } from "./helpers/gc";
import { closeAllServers, deferred, listen, rawRequest, sleep, waitFor } from "./helpers/server";

afterEach(closeAllServers);

function channelApp(channel: Channel, options: Parameters<typeof sse>[0] = {}) {
  const app = express();
  const middleware = sse({ retry: 20, ...options });
  app.use(middleware);
  app.get("/c", (req, res) => {
    const user = typeof req.query["user"] === "string" ? req.query["user"] : undefined;
    void channel.subscribe(
      res,
      user === undefined
        ? {}
        : { filter: (e) => e.event !== "private" || (e.data as { to?: string }).to === user },
    );
  });
  return { app, middleware };
}

/** An EventSource that records every message event's data and id. */
function recorder(url: string, events: string[] = ["message"]) {
  const es = new EventSource(url);
  const received: Array<{ event: string; data: string; id: string }> = [];
  let opens = 0;
  es.addEventListener("open", () => opens++);
  for (const name of events) {
    es.addEventListener(name, (e) =>
      received.push({ event: name, data: e.data, id: e.lastEventId }),
    );
  }
  return { es, received, opens: () => opens };
}

describe("Channel", () => {
  describe("#publish()", () => {
    test("three eventsource clients each get every event once, in order", async () => {
      const channel = new Channel("news");
      const { app } = channelApp(channel);
      const { url } = await listen(app);
      const clients = [recorder(`${url}/c`), recorder(`${url}/c`), recorder(`${url}/c`)];
      try {
        await waitFor(() => channel.size === 3, { what: "three subscribers" });
        const ids: string[] = [];
        for (let i = 0; i < 200; i++) {
          ids.push(await channel.publish({ n: i }));
          if (i % 20 === 0) await new Promise((r) => setImmediate(r));
        }
        for (const c of clients) {
          await waitFor(() => c.received.length >= 200, { what: "200 events" });
        }
        await sleep(20);
        for (const c of clients) {
          expect(c.received.map((e) => JSON.parse(e.data).n)).toEqual(ids.map((_, i) => i));
          expect(c.received.map((e) => e.id)).toEqual(ids);
        }
      } finally {
        for (const c of clients) c.es.close();
      }
    });

    test("ids are strictly increasing and the payload is serialized once per event, whatever the number of subscribers", async () => {
      const serialize = jest.fn((d: unknown) => JSON.stringify(d));
      const channel = new Channel("once", { serialize });
      const { app } = channelApp(channel);
      const { url } = await listen(app);
      const live = [1, 2, 3, 4, 5].map(() => collectEvents(url, { path: "/c", count: 3 }));
      await waitFor(() => channel.size === 5, { what: "five subscribers" });
      serialize.mockClear();
      const ids = [
        await channel.publish({ a: 1 }),
        await channel.publish({ a: 2 }),
        await channel.publish("text"),
      ];
      expect(serialize).toHaveBeenCalledTimes(2); // strings are not serialized
      const results = await Promise.all(live);
      for (const r of results) expect(r.events.map((e) => e.id)).toEqual(ids);
      const seqs = ids.map((id) => Number(id.split("-")[1]));
      expect(seqs).toEqual([seqs[0], seqs[0]! + 1, seqs[0]! + 2]);
    });

    test("invalid input is rejected at the call and nothing is published", async () => {
      const channel = new Channel<Record<string, unknown>>("bad");
      const events: string[] = [];
      const { app } = channelApp(channel);
      const collected = collectEvents(app, { path: "/c", count: 1 });
      await waitFor(() => channel.size === 1, { what: "subscriber" });
      expect(() => channel.publish("x", { event: "a\nb" })).toThrow(
        new TypeError('The "event" field must not contain CR, LF or NUL characters'),
      );
      expect(() => channel.publish(undefined)).toThrow(
        new TypeError(
          "The serializer must return a string, got undefined (JSON.stringify returns undefined for undefined and functions)",
        ),
      );
      const circular: Record<string, unknown> = {};
      circular["self"] = circular;
      // (A message string: the TypeError carries V8's error as its cause.)
      expect(() => channel.publish(circular)).toThrow(
        "Cannot serialize the event data: it is circular, .self refers back to the data " +
          "itself (send a copy without the cycle, or pass a serialize option)",
      );
      expect(() => channel.publish([1, 2n])).toThrow(
        "Cannot serialize the event data: JSON has no BigInt, and [1] is 2n (convert it to a " +
          "string or a number first, or pass a serialize option)",
      );
      expect(() => channel.publish("x", null as never)).toThrow(
        new TypeError("publish() options must be an object, got null"),
      );
      await channel.publish("good", { event: "ok" });
      const { raw } = await collected;
      events.push(raw);
      expect(raw).toMatch(/^retry: 20\n\nevent: ok\nid: [0-9a-f]{8}-1\ndata: good\n\n$/);
      expect(channel.stats().events).toBe(1);
    });

    test("data cannot inject frames: a hostile payload arrives as one event", async () => {
      const channel = new Channel("inject");
      const { app } = channelApp(channel);
      const collected = collectEvents(app, { path: "/c", count: 1, timeout: 2000 });
      await waitFor(() => channel.size === 1, { what: "subscriber" });
      await channel.publish("hi\n\nevent: admin\ndata: x");
      const { events } = await collected;
      expect(events).toEqual([
        { event: "message", data: "hi\n\nevent: admin\ndata: x", id: expect.any(String) },
      ]);
    });
  });

  describe("filters", () => {
    test("a filter keeps a private event from every other subscriber, without a second serialization", async () => {
      const serialize = jest.fn((d: unknown) => JSON.stringify(d));
      const channel = new Channel("dm", { serialize });
      const { app } = channelApp(channel);
      const { url } = await listen(app);
      const names = ["alice", "bob", "carol"];
      const clients = names.map((u) => recorder(`${url}/c?user=${u}`, ["message", "private"]));
      try {
        await waitFor(() => channel.size === 3, { what: "three subscribers" });
        serialize.mockClear();
        await channel.publish({ text: "for everyone" });
        await channel.publish({ to: "bob", text: "secret" }, { event: "private" });
        await channel.publish({ text: "bye" });
        expect(serialize).toHaveBeenCalledTimes(3);
        for (const c of clients)
          await waitFor(() => c.received.some((e) => e.data.includes("bye")), { what: "bye" });
        const [alice, bob, carol] = clients.map((c) =>
          c.received.map((e) => `${e.event}:${JSON.parse(e.data).text}`),
        );
        expect(bob).toEqual(["message:for everyone", "private:secret", "message:bye"]);
        expect(alice).toEqual(["message:for everyone", "message:bye"]);
        expect(carol).toEqual(alice);
      } finally {
        for (const c of clients) c.es.close();
      }
    });

    test("events from other processes reach filters deserialized once per event, with the deserialize option", async () => {
      // A distributed adapter's events carry text, not values: strip `value` as one would.
      const remote: Adapter = {
        open(name, options) {
          const inner: AdapterChannel = new MemoryAdapter().open(name, options);
          const strip = ({ id, event, data, value }: AdapterEvent): AdapterEvent =>
            typeof value !== "string" ? { id, event, data, serialized: true } : { id, event, data };
          return {
            publish: (e) => inner.publish(e),
            listen: (fn) => inner.listen((e) => fn(strip(e))),
            compare: (a, b) => inner.compare(a, b),
            close: () => inner.close(),
            history: (afterId) => inner.history(afterId),
          };
        },
      };
      const deserialize = jest.fn((text: string) => ({ ...JSON.parse(text), revived: true }));
      const channel = new Channel("remote", { adapter: remote, deserialize });
      const errors: Error[] = [];
      channel.on("error", (e) => errors.push(e));
      const seen: unknown[] = [];
      const app = express();
      app.use(sse());
      app.get("/c", (_req, res) => {
        void channel.subscribe(res, { filter: (e) => (seen.push(e.data), true) });
      });
      const { url } = await listen(app);
      const clients = [collectEvents(url, { path: "/c", count: 2 })];
      clients.push(collectEvents(url, { path: "/c", count: 2 }));
      await waitFor(() => channel.size === 2, { what: "two subscribers" });
      await channel.publish({ n: 1 });
      await channel.publish("a string");
      for (const c of clients)
        expect((await c).events.map((e) => e.data)).toEqual(['{"n":1}', "a string"]);
      expect(seen).toEqual([
        { n: 1, revived: true },
        { n: 1, revived: true },
        "a string",
        "a string",
      ]);
      expect(deserialize).toHaveBeenCalledTimes(1); // once for the event, not per subscriber

      // A deserializer that throws withholds that event and reports, like a throwing filter.
      deserialize.mockImplementation(() => {
        throw new Error("not JSON");
      });
      const after = collectEvents(url, { path: "/c", count: 1 });
      await waitFor(() => channel.size === 1, { what: "a new subscriber" });
      await channel.publish({ n: 2 });
      await channel.publish("still fine");
      expect((await after).events.map((e) => e.data)).toEqual(["still fine"]);
      expect(errors).toEqual([new Error("not JSON")]);
    });

    test("an id the adapter issued that a client could not send back is reported and the event withheld, live and on replay", async () => {
      // An adapter that issues ids with a trailing space for odd sequence numbers.
      const padded: Adapter = {
        open(name, options) {
          const inner: AdapterChannel = new MemoryAdapter().open(name, options);
          // Memory ids end in a sequence number: "<epoch>-1", "<epoch>-2", ...
          const pad = (id: string) => (Number(id.split("-")[1]) % 2 === 1 ? `${id} ` : id);
          const issued = (e: AdapterEvent): AdapterEvent => ({ ...e, id: pad(e.id) });
          return {
            publish: async (e) => pad(await inner.publish(e)),
            listen: (fn) => inner.listen((e) => fn(issued(e))),
            compare: (a, b) => inner.compare(a.trim(), b.trim()),
            close: () => inner.close(),
            history: (afterId) => {
              const result = inner.history(afterId.trim()) as ReturnType<AdapterChannel["history"]>;
              return "kind" in result && result.kind === "events"
                ? { kind: "events", events: result.events.map(issued) }
                : result;
            },
          };
        },
      };
      const channel = new Channel("padded", { adapter: padded });
      const errors: Error[] = [];
      channel.on("error", (e) => errors.push(e));
      const { app } = channelApp(channel);
      const { url } = await listen(app);
      const live = collectEvents(url, { path: "/c", count: 2 });
      await waitFor(() => channel.size === 1, { what: "a subscriber" });
      const ids: string[] = [];
      for (const data of ["one", "two", "three", "four"]) ids.push(await channel.publish(data));
      expect((await live).events).toEqual([
        { event: "message", data: "two", id: ids[1] },
        { event: "message", data: "four", id: ids[3] },
      ]);
      const message = (id: string) =>
        `Channel "padded": the adapter issued the id ${JSON.stringify(id)}, which cannot be ` +
        "sent: an id must not begin or end with a space or tab: HTTP strips them from the " +
        `Last-Event-ID header, so the id would come back as ${JSON.stringify(id.trim())} and ` +
        "resume from another id. The event was withheld.";
      expect(errors).toEqual([new TypeError(message(ids[0]!)), new TypeError(message(ids[2]!))]);
      // Replay: the same two are withheld and reported again, the others arrive.
      const replayed = await collectEvents(url, {
        path: "/c",
        count: 2,
        headers: { "Last-Event-ID": ids[0]!.trim() },
      });
      expect(replayed.events.map((e) => e.data)).toEqual(["two", "four"]);
      expect(errors.slice(2)).toEqual([new TypeError(message(ids[2]!))]);
    });

    test("a filter that throws withholds the event from that subscriber only and reports the error", async () => {
      const channel = new Channel("throwing");
      const errors: Error[] = [];
      channel.on("error", (e) => errors.push(e));
      const app = express();
      app.use(sse());
      app.get(
        "/bad",
        (_req, res) =>
          void channel.subscribe(res, {
            filter: () => {
              throw new Error("filter bug");
            },
          }),
      );
      app.get("/good", (_req, res) => void channel.subscribe(res));
      const { url } = await listen(app);
      const bad = collectEvents(url, { path: "/bad", duration: 300 });
      const good = collectEvents(url, { path: "/good", count: 1 });
      await waitFor(() => channel.size === 2, { what: "two subscribers" });
      await channel.publish("hello");
      expect((await good).events.map((e) => e.data)).toEqual(["hello"]);
      expect((await bad).events).toEqual([]);
      expect(errors).toEqual([new Error("filter bug")]);
    });
  });

  describe("#subscribe()", () => {
    test("without the sse() middleware it is a TypeError that says what to add", async () => {
      const channel = new Channel("nomw");
      const thrown = deferred<unknown>();
      const app = express();
      app.get("/c", (_req, res) => {
        try {
          void channel.subscribe(res);
        } catch (err) {
          thrown.resolve(err);
        }
        res.end();
      });
      const { url } = await listen(app);
      await fetch(`${url}/c`);
      expect(await thrown.promise).toEqual(
        new TypeError(
          "subscribe() needs res.sse: add the sse() middleware (app.use(sse())) before this route",
        ),
      );
    });

    test.each([null, undefined, {}])(
      "subscribe(%p) is the same TypeError that says what to add",
      (target) => {
        const channel = new Channel("not-a-response");
        expect(() => channel.subscribe(target as never)).toThrow(
          new TypeError(
            "subscribe() needs res.sse: add the sse() middleware (app.use(sse())) before this route",
          ),
        );
      },
    );

    test("subscribing one stream twice to a channel throws; the stream still gets each event once", async () => {
      const channel = new Channel("twice");
      const thrown = deferred<unknown>();
      const app = express();
      app.use(sse());
      app.get("/c", (_req, res) => {
        void channel.subscribe(res);
        try {
          void channel.subscribe(res);
        } catch (err) {
          thrown.resolve(err);
        }
      });
      const { url } = await listen(app);
      const client = recorder(`${url}/c`);
      try {
        expect(await thrown.promise).toEqual(
          new Error('This stream is already subscribed to channel "twice"'),
        );
        await waitFor(() => channel.size === 1, { what: "one subscriber" });
        await channel.publish("a");
        await channel.publish("b");
        await waitFor(() => client.received.length >= 2, { what: "two events" });
        await sleep(20);
        expect(client.received.map((e) => e.data)).toEqual(["a", "b"]);
      } finally {
        client.es.close();
      }
    });

    test("join and leave fire once per subscriber; size and stats follow", async () => {
      const channel = new Channel("presence");
      const joins: SseStream[] = [];
      const leaves: string[] = [];
      channel.on("join", (s) => joins.push(s));
      channel.on("leave", (_s, reason) => leaves.push(reason.type));
      const { app } = channelApp(channel);
      const { port } = await listen(app);
      const a = await rawRequest(port, "/c");
      const b = await rawRequest(port, "/c");
      await waitFor(() => channel.size === 2, { what: "two subscribers" });
      expect(joins).toHaveLength(2);
      a.destroy();
      await waitFor(() => channel.size === 1, { what: "one left" });
      expect(leaves).toEqual(["client-disconnected"]);
      const id = await channel.publish("x");
      expect(channel.stats()).toEqual({
        subscribers: 1,
        events: 1,
        bytes: Buffer.byteLength(`id: ${id}\ndata: x\n\n`),
        slowClientsDropped: 0,
        resumes: 0,
        resets: 0,
      });
      b.destroy();
      await waitFor(() => channel.size === 0, { what: "all left" });
      expect(leaves).toEqual(["client-disconnected", "client-disconnected"]);
    });

    test("one stream can subscribe to several channels; leaving fires on each", async () => {
      const chat = new Channel("multi-a");
      const news = new Channel("multi-b");
      const left: string[] = [];
      chat.on("leave", () => left.push("chat"));
      news.on("leave", () => left.push("news"));
      const app = express();
      app.use(sse());
      app.get("/both", (_req, res) => {
        void chat.subscribe(res);
        void news.subscribe(res);
      });
      const collected = collectEvents(app, { path: "/both", count: 2 });
      await waitFor(() => chat.size === 1 && news.size === 1, { what: "both subscribed" });
      await chat.publish("from chat");
      await news.publish("from news");
      expect((await collected).events.map((e) => e.data)).toEqual(["from chat", "from news"]);
      await waitFor(() => chat.size === 0 && news.size === 0, { what: "both left" });
      expect(left.sort()).toEqual(["chat", "news"]);
    });

    test("counts the bytes of every copy written", async () => {
      const channel = new Channel("bytes");
      const { app } = channelApp(channel);
      const { url } = await listen(app);
      const collectors = [1, 2].map(() => collectEvents(url, { path: "/c", count: 1 }));
      await waitFor(() => channel.size === 2, { what: "two subscribers" });
      const id = await channel.publish("hello");
      await Promise.all(collectors);
      expect(channel.stats().bytes).toBe(2 * Buffer.byteLength(`id: ${id}\ndata: hello\n\n`));
    });

    test("a slow subscriber is dropped and counted; the others keep receiving", async () => {
      const channel = new Channel("slow", { history: { max: 10 } });
      const { app } = channelApp(channel, { maxBufferedBytes: 64 * 1024, heartbeat: 0 });
      const { port, url } = await listen(app);
      const slow = await rawRequest(port, "/c", { paused: true });
      const healthy = recorder(`${url}/c`);
      try {
        await waitFor(() => channel.size === 2, { what: "two subscribers" });
        const payload = "p".repeat(16 * 1024);
        let published = 0;
        for (let i = 0; i < 2000 && channel.stats().slowClientsDropped === 0; i++) {
          await channel.publish(payload);
          published++;
          await new Promise((r) => setImmediate(r));
        }
        expect(channel.stats().slowClientsDropped).toBe(1);
        expect(channel.size).toBe(1);
        await waitFor(() => healthy.received.length === published, {
          what: "healthy client caught up",
        });
      } finally {
        healthy.es.close();
        slow.destroy();
      }
    });
  });

  describe("the adapter's setActive() and onReset", () => {
    /** A MemoryAdapter channel that records setActive() calls and lets the test fire a reset. */
    function spyAdapter() {
      const calls: Array<boolean | "history"> = [];
      let fireReset: ((reset: AdapterReset) => void) | undefined;
      const adapter: Adapter = {
        open(name, options) {
          const inner = new MemoryAdapter().open(name, options);
          return {
            publish: (e) => inner.publish(e),
            listen: (fn, onReset) => {
              inner.listen(fn);
              fireReset = onReset;
            },
            setActive: (active) => void calls.push(active),
            compare: (a, b) => inner.compare(a, b),
            close: () => inner.close(),
            history: (afterId) => {
              calls.push("history");
              return inner.history(afterId);
            },
          };
        },
      };
      return { adapter, calls, reset: (r: AdapterReset) => fireReset!(r) };
    }

    test("active with the first subscriber, inactive after the last one left, before any history read", async () => {
      const { adapter, calls } = spyAdapter();
      const channel = new Channel("active", { adapter });
      const { app } = channelApp(channel);
      const { url } = await listen(app);
      expect(calls).toEqual([]);
      const one = collectEvents(url, { path: "/c", count: 1 });
      await waitFor(() => channel.size === 1, { what: "the first subscriber" });
      const two = collectEvents(url, { path: "/c", count: 2 });
      await waitFor(() => channel.size === 2, { what: "the second subscriber" });
      expect(calls).toEqual([true]);
      await channel.publish("1"); // the first client leaves after it
      await one;
      await waitFor(() => channel.size === 1, { what: "one to leave" });
      expect(calls).toEqual([true]);
      await channel.publish("2");
      await two;
      await waitFor(() => channel.size === 0, { what: "both to leave" });
      expect(calls).toEqual([true, false]);
      // A resuming first subscriber: active before its history is read, so nothing falls between.
      const resumed = collectEvents(url, {
        path: "/c",
        headers: { "Last-Event-ID": "x" },
        count: 1,
      });
      expect((await resumed).events[0]!.event).toBe("reset");
      await waitFor(() => channel.size === 0, { what: "the resumed client to leave" });
      expect(calls).toEqual([true, false, true, "history", false]);
      await channel.close();
      expect(calls).toEqual([true, false, true, "history", false]); // close() adds nothing
    });

    test("a reset from the adapter reaches every live subscriber as event: reset, and live events go on", async () => {
      const { adapter, reset } = spyAdapter();
      const channel = new Channel("reset", { adapter });
      const { app } = channelApp(channel);
      const { url } = await listen(app);
      const clients = [1, 2].map(() => collectEvents(url, { path: "/c", count: 3 }));
      await waitFor(() => channel.size === 2, { what: "two subscribers" });
      const before = await channel.publish("before");
      reset({ reason: "unknown", oldestId: undefined, newestId: "newest-1" });
      const after = await channel.publish("after");
      for (const client of clients) {
        expect((await client).events).toEqual([
          { event: "message", id: before, data: "before" },
          {
            event: "reset",
            id: "newest-1",
            data: JSON.stringify({ reason: "unknown", oldestId: null, newestId: "newest-1" }),
          },
          { event: "message", id: after, data: "after" },
        ]);
      }
      expect(channel.stats().resets).toBe(2);
      await channel.close();
    });
  });

  describe("#close()", () => {
    test("ends every subscriber's stream and rejects later publishes", async () => {
      const channel = new Channel("closing");
      const { app } = channelApp(channel);
      const { url } = await listen(app);
      const collectors = [1, 2].map(() => collectEvents(url, { path: "/c" }));
      await waitFor(() => channel.size === 2, { what: "two subscribers" });
      await channel.close();
      await channel.close();
      const results = await Promise.all(collectors);
      for (const r of results) expect(r.ended).toBe(true);
      expect(channel.size).toBe(0);
      expect(channel.closed).toBe(true);
      await expect(channel.publish("late")).rejects.toEqual(
        new Error('Channel "closing" is closed'),
      );
    });
  });

  describe("options", () => {
    test.each([
      [["", {}], new TypeError("A channel name must be a non-empty string, got a string")],
      [
        ["x", { history: { max: -1 } }],
        new RangeError('The history "max" option must be a non-negative safe integer, got -1'),
      ],
      [["x", { history: { size: 3 } }], new TypeError('Unknown history option "size"')],
      [["x", { maxLifetime: 0 }], new RangeError('The "maxLifetime" option must be at least 1 ms')],
      [
        ["x", { maxLifetime: -5 }],
        new RangeError('The "maxLifetime" option must be a non-negative safe integer, got -5'),
      ],
      [
        ["x", { adapter: {} }],
        new TypeError('The "adapter" option must be an Adapter (with open()), got an object'),
      ],
      [
        ["x", { lastEventIdQuery: "" }],
        new TypeError('The "lastEventIdQuery" option must be a non-empty string'),
      ],
      [
        ["x", { presence: "off" }],
        new TypeError('The "presence" option must be true or false, got a string'),
      ],
      [["x", { presense: false }], new TypeError('Unknown Channel option "presense"')],
    ])("new Channel(...%j) throws", (args, error) => {
      expect(() => new Channel(...(args as [string, object]))).toThrow(error);
    });
  });

  describe("maxLifetime", () => {
    test("closes each stream after 80-100% of maxLifetime with a retry hint; clients resume with no loss", async () => {
      const channel = new Channel("lifetime", { maxLifetime: 200, lifetimeRetry: 10 });
      const closes: StreamClosedError[] = [];
      const joined = new Map<SseStream, number>();
      const lifetimes: number[] = [];
      channel.on("join", (s) => joined.set(s, Date.now()));
      channel.on("leave", (s, r) => {
        closes.push(r);
        lifetimes.push(Date.now() - (joined.get(s) ?? NaN));
      });
      const { app } = channelApp(channel);
      const { url } = await listen(app);
      const client = recorder(`${url}/c`);
      try {
        await waitFor(() => channel.size === 1, { what: "subscriber" });
        const ids: string[] = [];
        const started = Date.now();
        while (Date.now() - started < 900) {
          ids.push(await channel.publish(String(ids.length)));
          await sleep(5);
        }
        await waitFor(() => client.received.length >= ids.length, {
          what: "every event",
          timeout: 5000,
        });
        await sleep(30);
        expect(client.received.map((e) => e.data)).toEqual(ids.map((_, i) => String(i)));
        expect(closes.length).toBeGreaterThanOrEqual(3);
        expect(closes.every((r) => r.type === "max-lifetime")).toBe(true);
        expect(channel.stats().resumes).toBeGreaterThanOrEqual(3);
        // Each stream lived 80-100% of maxLifetime (160-200 ms): never less; at most the sweep's
        // period (maxLifetime / 20 = 10 ms) more, plus what a loaded machine delays a timer.
        for (const ms of lifetimes) {
          expect(ms).toBeGreaterThanOrEqual(159);
          expect(ms).toBeLessThanOrEqual(200 + 10 + 90);
        }
      } finally {
        client.es.close();
      }
    });

    test("sends the retry hint just before closing", async () => {
      const channel = new Channel("lifetime-raw", { maxLifetime: 100, lifetimeRetry: 250 });
      const { app } = channelApp(channel);
      const result = await collectEvents(app, { path: "/c", timeout: 2000 });
      expect(result.ended).toBe(true);
      expect(result.raw).toBe("retry: 20\n\nretry: 250\n\n");
    });
  });

  describe("churn", () => {
    test("5,000 subscribe/disconnect cycles leave no subscriber, listener, timer or heap behind", async () => {
      const channel = new Channel("churn", { maxLifetime: 60_000 });
      const app = express();
      const middleware = sse({ heartbeat: 1000 });
      app.use(middleware);
      const refs: Array<WeakRef<SseStream>> = [];
      app.get("/c", (_req, res) => {
        refs.push(new WeakRef(res.sse));
        void channel.subscribe(res, { filter: () => true });
      });
      const { url } = await listen(app);
      const agent = new http.Agent({ keepAlive: false, maxSockets: 50 });
      const cycle = () =>
        new Promise<void>((resolve, reject) => {
          const req = http.get(
            `${url}/c`,
            { agent, headers: { "Last-Event-ID": "junk" } },
            (res) => {
              res.once("data", () => {
                req.destroy();
                resolve();
              });
            },
          );
          req.on("error", reject);
        });
      const churn = async (n: number) => {
        for (let i = 0; i < n; i += 50) await Promise.all(Array.from({ length: 50 }, cycle));
        await waitFor(() => channel.size === 0 && middleware.streams.size === 0, {
          what: "all gone",
        });
      };
      await channel.publish("seed");
      await churn(200);
      await collectGarbage();
      const resources = activeResources();
      const first = refs.length;
      const growth = await steadyStateHeapGrowth(churn, { warmup: 1000, cycles: 2000 });
      agent.destroy();
      expect(channel.size).toBe(0);
      expect(channel.listenerCount("join") + channel.listenerCount("leave")).toBe(0);
      await waitFor(() => JSON.stringify(activeResources()) === JSON.stringify(resources), {
        what: `active resources back to ${JSON.stringify(resources)}`,
      });
      expect(refs.slice(first).filter((r) => r.deref() !== undefined)).toHaveLength(0);
      expect(growth).toBeLessThan(1024 * 1024);
      expect(channel.stats().resets).toBe(5200);
      await channel.close();
    }, 60_000);
  });
});
