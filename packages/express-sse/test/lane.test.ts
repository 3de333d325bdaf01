import compression from "compression";
import express from "express";
import type { Socket } from "node:net";
import { Channel, sse, type SseStream } from "../src";
import { collectEvents } from "../src/testing";
import { closeAllServers, deferred, listen, rawRequest, waitFor } from "./helpers/server";

afterEach(closeAllServers);

// A channel writes its plain direct-path subscribers from a dense array of their sockets (its
// lane, src/lane.ts) and everyone else from the general path. These tests pin what users rely
// on across the two: every event once and in order, exact counters, heartbeats that neither pad
// a busy stream nor leave a quiet one silent, and subscribers leaving in the middle of a write.

type Internals = { _lane: { size: number } };
const laneSize = (channel: Channel) => (channel as unknown as Internals)._lane.size;

describe("a channel's lane", () => {
  test("holds the plain subscribers; filtered, resuming and compressed ones take the general path, and all get every event once, in order", async () => {
    const channel = new Channel("mixed");
    const plain = express().use(sse({ heartbeat: 0 }));
    const wrapped = express()
      .use(compression())
      .use(sse({ heartbeat: 0 }));
    const subscribe = (req: express.Request, res: express.Response) =>
      void channel.subscribe(
        res,
        req.query["even"] ? { filter: (e) => Number(e.data) % 2 === 0 } : {},
      );
    plain.get("/c", subscribe);
    wrapped.get("/c", subscribe);
    const [a, b] = await Promise.all([listen(plain), listen(wrapped)]);
    const first = await channel.publish("0");

    const readers = [
      collectEvents(a.url, { path: "/c", count: 20 }),
      collectEvents(a.url, { path: "/c", count: 20 }),
      collectEvents(a.url, { path: "/c?even=1", count: 10 }),
      collectEvents(b.url, { path: "/c", count: 20, headers: { "Accept-Encoding": "gzip" } }),
      // Resumes after "0": replayed from history, then live; it joins the lane once live.
      collectEvents(a.url, { path: "/c", count: 20, headers: { "Last-Event-ID": first } }),
    ];
    await waitFor(() => channel.size === 5, { what: "five subscribers" });
    expect(laneSize(channel)).toBe(2); // the plain ones
    for (let i = 1; i <= 20; i++) {
      if (i % 5 === 0) await channel.publish(String(i));
      else void channel.publish(String(i)); // bursts: several events in one write
    }
    // The resumed one joined once a live event had passed its resume boundary.
    expect(laneSize(channel)).toBe(3);
    const [p1, p2, even, gz, resumed] = await Promise.all(readers);
    const all = Array.from({ length: 20 }, (_, i) => String(i + 1));
    expect(p1!.events.map((e) => e.data)).toEqual(all);
    expect(p2!.events.map((e) => e.data)).toEqual(all);
    expect(gz!.events.map((e) => e.data)).toEqual(all);
    expect(resumed!.events.map((e) => e.data)).toEqual(all);
    expect(even!.events.map((e) => e.data)).toEqual(all.filter((d) => Number(d) % 2 === 0));
    await channel.close();
    expect(laneSize(channel)).toBe(0);
  });

  test("counts each sse() instance's events and bytes exactly, and the channel's bytes", async () => {
    const channel = new Channel("counted");
    const [m1, m2] = [sse({ heartbeat: 0 }), sse({ heartbeat: 0 })];
    const apps = [express().use(m1), express().use(m2)];
    for (const app of apps) app.get("/c", (_req, res) => void channel.subscribe(res));
    const [a, b] = await Promise.all(apps.map((app) => listen(app)));
    const readers = [
      collectEvents(a!.url, { path: "/c", count: 7 }),
      collectEvents(a!.url, { path: "/c", count: 7 }),
      collectEvents(b!.url, { path: "/c", count: 7 }),
    ];
    await waitFor(() => laneSize(channel) === 3, { what: "three subscribers in the lane" });
    void channel.publish("a");
    void channel.publish({ b: "ü" }, { event: "e" });
    await channel.publish("c"); // one batch of three
    for (const data of ["d", "e", "f", "g"]) await channel.publish(data);
    const got = await Promise.all(readers);
    const wire = got.map((r) => Buffer.byteLength(r.raw)); // each body, its opening ":\n\n" too
    expect(m1.stats().events).toBe(14);
    expect(m2.stats().events).toBe(7);
    expect(m1.stats().bytes).toBe(wire[0]! + wire[1]!);
    expect(m2.stats().bytes).toBe(wire[2]);
    expect(channel.stats().bytes).toBe(wire[0]! + wire[1]! + wire[2]! - 3 * 3);
    await channel.close();
  });

  test("a stream on two channels is in its first channel's lane and on the second's general path, and gets both", async () => {
    const [news, alerts] = [new Channel("news"), new Channel("alerts")];
    const app = express().use(sse({ heartbeat: 0 }));
    app.get("/both", (_req, res) => {
      void news.subscribe(res);
      void alerts.subscribe(res);
    });
    const { url } = await listen(app);
    const reader = collectEvents(url, { path: "/both", count: 4 });
    await waitFor(() => news.size === 1 && alerts.size === 1, { what: "both subscriptions" });
    expect([laneSize(news), laneSize(alerts)]).toEqual([1, 0]);
    await news.publish("n1");
    await alerts.publish("a1");
    void news.publish("n2");
    await alerts.publish("a2");
    expect((await reader).events.map((e) => e.data)).toEqual(["n1", "a1", "n2", "a2"]);
    await Promise.all([news.close(), alerts.close()]);
  });

  test("a subscriber closed by another's departure in the middle of a write gets nothing more; the others get everything once; counters stay exact", async () => {
    const channel = new Channel("departures");
    const middleware = sse({ heartbeat: 0, maxBufferedBytes: 64 * 1024 });
    const app = express().use(middleware);
    const streams: SseStream[] = [];
    app.get("/c", (_req, res) => {
      streams.push(res.sse);
      void channel.subscribe(res);
    });
    const { port, url } = await listen(app);
    // The lane's order is the order of joining: the slow client, then the victim, then a reader.
    const slow: Socket = await rawRequest(port, "/c");
    slow.pause(); // reads nothing: its socket fills, then passes maxBufferedBytes
    await waitFor(() => laneSize(channel) === 1, { what: "the slow client" });
    const got = { victim: 0, reader: 0 };
    const victim = collectEvents(url, {
      path: "/c",
      until: (_e, events) => ((got.victim = events.length), false),
    });
    await waitFor(() => laneSize(channel) === 2, { what: "the victim" });
    const reader = collectEvents(url, {
      path: "/c",
      until: (e, events) => ((got.reader = events.length), e.data === "last"),
    });
    await waitFor(() => laneSize(channel) === 3, { what: "the reader" });
    const [slowStream, victimStream] = streams as [SseStream, SseStream];
    // When the slow client is dropped (inside the lane's loop), the app closes the victim, whose
    // turn in that same loop has not come yet.
    let closedInBatch = -1;
    channel.on("leave", (stream, reason) => {
      if (stream === slowStream && reason.type === "max-buffered-bytes") {
        closedInBatch = sent;
        victimStream.close();
      }
    });
    const big = "x".repeat(32 * 1024);
    let sent = 0;
    while (!slowStream.closed && sent < 2000) {
      sent++;
      await channel.publish(`${sent} ${big}`);
      // The two readers keep up (only the paused client falls behind).
      await waitFor(() => got.reader === sent && (victimStream.closed || got.victim === sent), {
        what: `event ${sent} at both readers`,
      });
    }
    expect(slowStream.closeReason?.type).toBe("max-buffered-bytes");
    expect(victimStream.closeReason?.type).toBe("closed");
    await channel.publish("last");
    const [v, r] = await Promise.all([victim, reader]);
    const numbers = (events: { data: string }[]) => events.map((e) => e.data.split(" ")[0]);
    const upTo = (n: number) => Array.from({ length: n }, (_, i) => String(i + 1));
    expect(closedInBatch).toBe(sent);
    expect(numbers(r.events)).toEqual([...upTo(sent), "last"]);
    expect(numbers(v.events)).toEqual(upTo(sent - 1)); // closed before its turn in the last one
    // Events counted per stream as written: the slow client's last one counts (it was written
    // and then found past the bound), the victim's last one does not (never written).
    expect(middleware.stats().events).toBe(sent + (sent - 1) + (sent + 1));
    expect(laneSize(channel)).toBe(1);
    expect(channel.size).toBe(1);
    slow.destroy();
    await channel.close();
  });
});

describe("the heartbeat of a lane subscriber (fake clock)", () => {
  // Only the heartbeat's interval and the clock are faked; sockets and helpers run for real.
  beforeEach(() =>
    jest.useFakeTimers({
      now: 0,
      doNotFake: [
        "setTimeout",
        "clearTimeout",
        "setImmediate",
        "clearImmediate",
        "nextTick",
        "queueMicrotask",
        "hrtime",
        "performance",
      ],
    }),
  );
  afterEach(() => jest.useRealTimers());

  /** One channel; `/a` subscribes at once, `/b` only starts its stream (the test subscribes it). */
  async function setup() {
    const channel = new Channel("beat");
    const middleware = sse({ heartbeat: 1000 });
    const app = express().use(middleware);
    const later = deferred<SseStream>();
    app.get("/a", (_req, res) => void channel.subscribe(res));
    app.get("/b", (_req, res) => later.resolve(res.sse.start()));
    const { port } = await listen(app);
    const sockets: Socket[] = [];
    const connect = async (path: string) => {
      const socket = await rawRequest(port, path);
      socket.resume();
      sockets.push(socket);
    };
    const pings = () => middleware.stats().heartbeats;
    const end = async () => {
      for (const socket of sockets) socket.destroy();
      await channel.close();
    };
    return { channel, connect, later: later.promise, pings, end };
  }

  test("a busy lane subscriber is never pinged; once quiet, pinged after 1 to 1.25 intervals", async () => {
    const { channel, connect, pings, end } = await setup();
    await connect("/a");
    await waitFor(() => laneSize(channel) === 1, { what: "the subscriber" });
    // Broadcasts every 100 ms for 5 s: the stream's own writes stop after its opening comment.
    for (let t = 0; t < 5000; t += 100) {
      jest.advanceTimersByTime(100);
      await channel.publish("tick");
    }
    expect(pings()).toBe(0);
    jest.advanceTimersByTime(50);
    await channel.publish("last"); // t = 5050
    // Checks at 5250, 5500, 5750, 6000: the fifth, at 6250, has a whole interval behind it.
    jest.advanceTimersByTime(1199);
    expect(pings()).toBe(0);
    jest.advanceTimersByTime(1);
    expect(pings()).toBe(1);
    jest.advanceTimersByTime(1250);
    expect(pings()).toBe(2); // then every 1.25 intervals, as any idle stream
    await end();
  });

  test("a lane write from before a stream joined does not count as the stream's", async () => {
    const { channel, connect, later, pings, end } = await setup();
    await connect("/a");
    await connect("/b");
    const b = await later;
    await waitFor(() => laneSize(channel) === 1, { what: "the first subscriber" });
    jest.advanceTimersByTime(1000);
    await channel.publish("to a only"); // t = 1000: a lane write, before b joins
    jest.advanceTimersByTime(100);
    await channel.subscribe(b); // t = 1100; no write: b's stream had started at t = 0
    expect(laneSize(channel)).toBe(2);
    // At t = 1250 both have had five checks without a write of their own: a's lane write was
    // 250 ms ago (no ping), b has had nothing since its opening comment at t = 0 (pinged).
    jest.advanceTimersByTime(149);
    expect(pings()).toBe(0);
    jest.advanceTimersByTime(1);
    expect(pings()).toBe(1);
    // a: the fifth check after its lane write at t = 1000 is at t = 2250.
    jest.advanceTimersByTime(999);
    expect(pings()).toBe(1);
    jest.advanceTimersByTime(1);
    expect(pings()).toBe(2);
    await end();
  });
});
