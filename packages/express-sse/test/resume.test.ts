import express from "express";
import http from "node:http";
import { EventSource } from "eventsource";
import {
  Channel,
  MemoryAdapter,
  sse,
  type Adapter,
  type AdapterChannel,
  type HistoryResult,
  type SseStream,
} from "../src";
import { collectEvents, NotAnEventStreamError } from "../src/testing";
import { closeAllServers, deferred, listen, rawRequest, waitFor } from "./helpers/server";

afterEach(closeAllServers);

function channelApp(channel: Channel) {
  const app = express();
  app.use(sse({ retry: 10, heartbeat: 0 }));
  const streams: SseStream[] = [];
  app.get("/c", (_req, res) => {
    streams.push(res.sse);
    void channel.subscribe(res);
  });
  return { app, streams };
}

/** Publishes `data` and returns the ids, in order. */
async function publishAll(channel: Channel, items: readonly string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const item of items) ids.push(await channel.publish(item));
  return ids;
}

const range = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => String(from + i));

describe("Last-Event-ID resume", () => {
  test("a client dropped mid-stream reconnects by itself and ends with all 1,000 events exactly once, in order", async () => {
    const channel = new Channel("resume", { history: { max: 2000 } });
    const { app, streams } = channelApp(channel);
    const { url } = await listen(app);
    const es = new EventSource(`${url}/c`);
    const received: string[] = [];
    let opens = 0;
    es.addEventListener("open", () => opens++);
    es.addEventListener("message", (e) => received.push(e.data));
    try {
      await waitFor(() => channel.size === 1, { what: "subscriber" });
      let drops = 0;
      for (let i = 0; i < 1000; i++) {
        await channel.publish(String(i));
        if (i % 150 === 75) {
          // The server side drops the connection, as a crashing proxy or a network blip would.
          streams.at(-1)?.request.socket.destroy();
          drops++;
        }
        if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      await waitFor(() => received.length >= 1000, { timeout: 10_000, what: "1,000 events" });
      await new Promise((r) => setTimeout(r, 50));
      expect(received).toEqual(range(0, 1000));
      expect(drops).toBe(7);
      expect(opens).toBeGreaterThanOrEqual(drops + 1);
      expect(channel.stats().resumes).toBeGreaterThanOrEqual(drops);
      expect(channel.stats().resets).toBe(0);
    } finally {
      es.close();
    }
  });

  test("replays exactly the events after the given id, then live ones", async () => {
    const channel = new Channel("replay");
    const { app } = channelApp(channel);
    const ids = await publishAll(channel, range(0, 10));
    const collected = collectEvents(app, {
      path: "/c",
      count: 7,
      headers: { "Last-Event-ID": ids[4]! },
    });
    await waitFor(() => channel.size === 1, { what: "subscriber" });
    await publishAll(channel, ["live-1", "live-2"]);
    const { events } = await collected;
    expect(events.map((e) => e.data)).toEqual([...range(5, 10), "live-1", "live-2"]);
    expect(events.slice(0, 5).map((e) => e.id)).toEqual(ids.slice(5));
    expect(channel.stats().resumes).toBe(1);
  });

  test("an up-to-date client gets nothing replayed", async () => {
    const channel = new Channel("uptodate");
    const { app } = channelApp(channel);
    const ids = await publishAll(channel, range(0, 3));
    const { events, comments } = await collectEvents(app, {
      path: "/c",
      duration: 150,
      headers: { "Last-Event-ID": ids[2]! },
    });
    expect(events).toEqual([]);
    expect(comments).toEqual([]);
  });

  describe("publishing during the replay", () => {
    /**
     * An adapter whose history() answers only when the test says so, so events can be published
     * between the subscriber joining and its replay being written. `snapshot` decides whether
     * history is read when asked (events published during the wait are then only live) or when
     * released (they are then both in the replay and live: the overlap must be dropped).
     */
    function gatedAdapter(snapshot: "on-request" | "on-release") {
      const gate = deferred<void>();
      const asked = deferred<void>();
      const adapter: Adapter = {
        open(name, options) {
          const inner: AdapterChannel = new MemoryAdapter().open(name, options);
          return {
            publish: (e) => inner.publish(e),
            listen: (fn) => inner.listen(fn),
            compare: (a, b) => inner.compare(a, b),
            close: () => inner.close(),
            history: async (afterId): Promise<HistoryResult> => {
              const early = snapshot === "on-request" ? await inner.history(afterId) : undefined;
              asked.resolve();
              await gate.promise;
              return early ?? inner.history(afterId);
            },
          };
        },
      };
      return { adapter, release: gate.resolve, asked: asked.promise };
    }

    test.each(["on-request", "on-release"] as const)(
      "no gap and no duplicate when history is read %s",
      async (snapshot) => {
        const { adapter, release, asked } = gatedAdapter(snapshot);
        const channel = new Channel("gated", { adapter });
        const { app } = channelApp(channel);
        const ids = await publishAll(channel, range(0, 5));
        const collected = collectEvents(app, {
          path: "/c",
          until: (e) => e.data === "end",
          headers: { "Last-Event-ID": ids[1]! },
        });
        await asked;
        await publishAll(channel, range(5, 8)); // during the replay
        release();
        await waitFor(() => channel.stats().resumes === 1, { what: "replay written" });
        await channel.publish("end");
        const { events } = await collected;
        expect(events.map((e) => e.data)).toEqual([...range(2, 8), "end"]);
        // and the stream is live afterwards
        const more = collectEvents(app, {
          path: "/c",
          count: 1,
          headers: { "Last-Event-ID": events.at(-1)!.id },
        });
        await waitFor(() => channel.size === 1, { what: "second subscriber" });
        release();
        await channel.publish("after");
        expect((await more).events.map((e) => e.data)).toEqual(["after"]);
      },
    );

    test("resuming from the newest id while the live feed lags behind history: no duplicate", async () => {
      // Another process's adapter: history is read from the store at once, but the live feed
      // delivers the events later (its reader is behind), the client's own last event included.
      const held: Array<() => void> = [];
      const adapter: Adapter = {
        open(name, options) {
          const inner: AdapterChannel = new MemoryAdapter().open(name, options);
          return {
            publish: (e) => inner.publish(e),
            listen: (fn) => inner.listen((event) => held.push(() => fn(event))),
            compare: (a, b) => inner.compare(a, b),
            close: () => inner.close(),
            history: (afterId) => inner.history(afterId),
          };
        },
      };
      const channel = new Channel("lagging", { adapter });
      const { app } = channelApp(channel);
      const ids = await publishAll(channel, ["a", "b"]);
      const collected = collectEvents(app, {
        path: "/c",
        until: (e) => e.data === "c",
        headers: { "Last-Event-ID": ids[1]! }, // up to date: nothing to replay
      });
      await waitFor(() => channel.stats().resumes === 1, { what: "the (empty) replay" });
      await channel.publish("c");
      for (const deliver of held.splice(0)) deliver(); // the lagging feed catches up: a, b, c
      const { events } = await collected;
      expect(events.map((e) => e.data)).toEqual(["c"]);
    });

    test("a replay slowed by backpressure still ends with every event once, in order", async () => {
      const channel = new Channel("backpressure", {
        history: { max: 5000, maxBytes: 64 * 1024 * 1024 },
      });
      const app = express();
      app.use(sse({ heartbeat: 0, maxBufferedBytes: 64 * 1024 * 1024 }));
      app.get("/c", (_req, res) => void channel.subscribe(res));
      const { port } = await listen(app);
      const big = (i: number) => `${i}:${"b".repeat(16 * 1024)}`;
      const ids: string[] = [];
      for (let i = 0; i < 600; i++) ids.push(await channel.publish(big(i))); // ~10 MB to replay
      // A client that does not read yet: the replay fills the buffers and waits for drain.
      const socket = await rawRequest(port, "/c", {
        paused: true,
        headers: { "Last-Event-ID": ids[0]! },
      });
      await waitFor(() => channel.size === 1, { what: "subscriber" });
      for (let i = 600; i < 700; i++) await channel.publish(big(i)); // published during the replay
      let text = "";
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => (text += chunk));
      socket.resume();
      await waitFor(() => (text.match(/\ndata: 699:/g) ?? []).length === 1, {
        timeout: 10_000,
        what: "event 699",
      });
      const seen = [...text.matchAll(/\ndata: (\d+):/g)].map((m) => Number(m[1]));
      expect(seen).toEqual(Array.from({ length: 699 }, (_, i) => i + 1));
      socket.destroy();
    });
  });

  describe("reset", () => {
    test.each([
      ["unknown", "not-an-id"],
      ["malformed", "zzzzzzzz-"],
      ["from another run of the server", "0123abcd-3"],
      ["from the future", "__EPOCH__-999"],
    ])("an id that is %s gets event: reset, then live events", async (_what, lastId) => {
      const channel = new Channel("reset");
      const { app } = channelApp(channel);
      const ids = await publishAll(channel, ["a", "b"]);
      const epoch = ids[0]!.split("-")[0]!;
      const collected = collectEvents(app, {
        path: "/c",
        count: 2,
        headers: { "Last-Event-ID": lastId.replace("__EPOCH__", epoch) },
      });
      await waitFor(() => channel.size === 1, { what: "subscriber" });
      await channel.publish("live");
      const { events } = await collected;
      expect(events[0]).toEqual({
        event: "reset",
        id: ids[1],
        data: JSON.stringify({ reason: "unknown", oldestId: ids[0], newestId: ids[1] }),
      });
      expect(events[1]).toMatchObject({ event: "message", data: "live" });
      expect(channel.stats().resets).toBe(1);
    });

    test("an id older than the retained history gets reset with reason too-old and the oldest id held", async () => {
      const channel = new Channel("trimmed", { history: { max: 3 } });
      const { app } = channelApp(channel);
      const ids = await publishAll(channel, range(0, 6));
      const { events } = await collectEvents(app, {
        path: "/c",
        count: 1,
        headers: { "Last-Event-ID": ids[0]! },
      });
      expect(events[0]).toEqual({
        event: "reset",
        id: ids[5],
        data: JSON.stringify({ reason: "too-old", oldestId: ids[3], newestId: ids[5] }),
      });
      // The one just before the oldest retained is not too old: nothing was lost.
      const exact = await collectEvents(app, {
        path: "/c",
        count: 3,
        headers: { "Last-Event-ID": ids[2]! },
      });
      expect(exact.events.map((e) => e.data)).toEqual(range(3, 6));
    });

    test("an id on an empty channel resets with null ids", async () => {
      const channel = new Channel("empty");
      const { app } = channelApp(channel);
      const { events } = await collectEvents(app, {
        path: "/c",
        count: 1,
        headers: { "Last-Event-ID": "x" },
      });
      expect(events[0]).toEqual({
        event: "reset",
        id: "",
        data: JSON.stringify({ reason: "unknown", oldestId: null, newestId: null }),
      });
    });

    test("a 100 KB Last-Event-ID is treated as unknown, with no crash, on a server that accepts such headers", async () => {
      const channel = new Channel("huge");
      const { app } = channelApp(channel);
      const first = await channel.publish("a");
      const newest = await channel.publish("b");
      const server = http.createServer({ maxHeaderSize: 256 * 1024 }, app);
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      try {
        const { events } = await collectEvents(server, {
          path: "/c",
          count: 1,
          headers: { "Last-Event-ID": "9".repeat(100 * 1024) },
        });
        // The reset carries the newest id, as for any unknown id: an empty id would clear the
        // client's last id and its next reconnect would miss what was published meanwhile.
        expect(events[0]).toEqual({
          event: "reset",
          id: newest,
          data: JSON.stringify({ reason: "unknown", oldestId: first, newestId: newest }),
        });
      } finally {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      }
    });

    test("with Node's default header limit a 100 KB Last-Event-ID never reaches the app (431)", async () => {
      const channel = new Channel("huge-default");
      const { app } = channelApp(channel);
      const error = await collectEvents(app, {
        path: "/c",
        headers: { "Last-Event-ID": "9".repeat(100 * 1024) },
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NotAnEventStreamError);
      expect((error as NotAnEventStreamError).result.status).toBe(431);
      expect(channel.size).toBe(0);
    });

    test("a client that reconnects with the reset's id resumes cleanly", async () => {
      const channel = new Channel("after-reset");
      const { app } = channelApp(channel);
      await publishAll(channel, ["a", "b"]);
      const first = await collectEvents(app, {
        path: "/c",
        count: 1,
        headers: { "Last-Event-ID": "bogus" },
      });
      const resetId = first.events[0]!.id;
      await channel.publish("c");
      const second = await collectEvents(app, {
        path: "/c",
        count: 1,
        headers: { "Last-Event-ID": resetId },
      });
      expect(second.events.map((e) => e.data)).toEqual(["c"]);
    });
  });

  describe("the lastEventIdQuery option", () => {
    test("reads the last id from the query string when there is no header; the header wins", async () => {
      const channel = new Channel("query", { lastEventIdQuery: "lastEventId" });
      const { app } = channelApp(channel);
      const ids = await publishAll(channel, range(0, 5));
      const fromQuery = await collectEvents(app, { path: `/c?lastEventId=${ids[2]}`, count: 2 });
      expect(fromQuery.events.map((e) => e.data)).toEqual(["3", "4"]);
      const both = await collectEvents(app, {
        path: `/c?lastEventId=${ids[0]}`,
        count: 1,
        headers: { "Last-Event-ID": ids[3]! },
      });
      expect(both.events.map((e) => e.data)).toEqual(["4"]);
    });

    test("is off by default", async () => {
      const channel = new Channel("no-query");
      const { app } = channelApp(channel);
      const ids = await publishAll(channel, range(0, 3));
      const { events } = await collectEvents(app, {
        path: `/c?lastEventId=${ids[0]}`,
        duration: 100,
      });
      expect(events).toEqual([]);
    });
  });

  test("filters apply to the replay too", async () => {
    const channel = new Channel("private-replay");
    const app = express();
    app.use(sse());
    app.get("/c", (req, res) => {
      const user = String(req.query["user"]);
      void channel.subscribe(res, { filter: (e) => (e.data as { to: string }).to === user });
    });
    const first = await channel.publish({ to: "bob", n: 0 });
    await channel.publish({ to: "alice", n: 1 });
    await channel.publish({ to: "bob", n: 2 });
    const alice = await collectEvents(app, {
      path: "/c?user=alice",
      duration: 150,
      headers: { "Last-Event-ID": first },
    });
    expect(alice.events.map((e) => JSON.parse(e.data).n)).toEqual([1]);
    const bob = await collectEvents(app, {
      path: "/c?user=bob",
      duration: 150,
      headers: { "Last-Event-ID": first },
    });
    expect(bob.events.map((e) => JSON.parse(e.data).n)).toEqual([2]);
  });
});
