import express from "express";
import { StreamRegistry, type Pingable } from "../src/registry";
import { sse } from "../src";
import { collectEvents } from "../src/testing";
import { closeAllServers } from "./helpers/server";

/** A stream as the heartbeat sees it; `write()` is what every real write does to `_idle`. */
function fakeStream(): Pingable & { pings: number[]; write(): void } {
  const stream = {
    _idle: 0,
    pings: [] as number[],
    ping() {
      stream.pings.push(Date.now());
      stream._idle = 0;
    },
    write() {
      stream._idle = 0;
    },
  };
  return stream;
}

describe("the heartbeat of a StreamRegistry (one sse() instance's open streams)", () => {
  beforeEach(() => jest.useFakeTimers({ now: 0 }));
  afterEach(() => jest.useRealTimers());

  test("pings a stream once it has been idle for a whole interval (checks every quarter)", () => {
    const hb = new StreamRegistry(1000);
    const s = fakeStream();
    hb.add(s);
    // Opened at t=0, the fifth check (t=1250) is the first with a whole interval of silence
    // behind it whatever the write's position between two checks; the ping is a write.
    jest.advanceTimersByTime(1249);
    expect(s.pings).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(s.pings).toEqual([1250]);
    jest.advanceTimersByTime(3750);
    expect(s.pings).toEqual([1250, 2500, 3750, 5000]);
    hb.delete(s);
  });

  test.each([0, 1, 100, 249])(
    "a stream last written %i ms after a check is pinged after 1 to 1.25 intervals of silence",
    (offset) => {
      const hb = new StreamRegistry(1000);
      const s = fakeStream();
      hb.add(s);
      jest.advanceTimersByTime(offset);
      s.write();
      jest.advanceTimersByTime(2000);
      const silence = (s.pings[0] as number) - offset;
      expect(silence).toBeGreaterThanOrEqual(1000);
      expect(silence).toBeLessThanOrEqual(1250);
      hb.delete(s);
    },
  );

  test("never pings a stream that keeps writing, and stays silent at most 1.25 x interval", () => {
    const hb = new StreamRegistry(1000);
    const busy = fakeStream();
    const idleAfterWrite = fakeStream();
    hb.add(busy);
    hb.add(idleAfterWrite);
    for (let t = 0; t < 5000; t += 100) {
      jest.advanceTimersByTime(100);
      busy.write();
      if (t === 0) idleAfterWrite.write(); // its last write, at t=100
    }
    expect(busy.pings).toEqual([]);
    // written at t=100: checks at 250, 500, 750, 1000, then the ping at 1250: 1150 ms of silence
    expect(idleAfterWrite.pings[0]).toBe(1250);
    hb.delete(busy);
    hb.delete(idleAfterWrite);
  });

  test("runs one unref'd timer for all streams, only while there are streams", () => {
    const hb = new StreamRegistry(1000);
    expect(hb.heartbeatRunning).toBe(false);
    const streams = Array.from({ length: 100 }, () => fakeStream());
    for (const s of streams) hb.add(s);
    expect(hb.heartbeatRunning).toBe(true);
    expect(jest.getTimerCount()).toBe(1);
    expect((hb as unknown as { _timer: NodeJS.Timeout })._timer.hasRef()).toBe(false);
    for (const s of streams) hb.delete(s);
    expect(hb.heartbeatRunning).toBe(false);
    expect(jest.getTimerCount()).toBe(0);
  });

  test("heartbeat 0 tracks streams but never starts a timer", () => {
    const hb = new StreamRegistry(0);
    const s = fakeStream();
    hb.add(s);
    expect(hb.size).toBe(1);
    expect(hb.heartbeatRunning).toBe(false);
    jest.advanceTimersByTime(60_000);
    expect(s.pings).toEqual([]);
    hb.delete(s);
  });

  test("a stream closed by its own ping is removed without disturbing the others", () => {
    const hb = new StreamRegistry(1000);
    const others = [fakeStream(), fakeStream()];
    const dying: Pingable = { _idle: 0, ping: () => hb.delete(dying) };
    hb.add(others[0]!);
    hb.add(dying);
    hb.add(others[1]!);
    jest.advanceTimersByTime(1250);
    expect(hb.size).toBe(2);
    expect(others.map((s) => s.pings.length)).toEqual([1, 1]);
    for (const s of others) hb.delete(s);
  });
});

describe("heartbeat on real streams", () => {
  afterEach(closeAllServers);

  test("an idle stream gets ': ping' comments; a busy one gets none", async () => {
    const app = express();
    app.use(sse({ heartbeat: 100 }));
    app.get("/idle", (_req, res) => res.sse.start());
    app.get("/busy", (_req, res) => {
      const t = setInterval(() => res.sse.send("tick"), 20);
      res.sse.onClose(() => clearInterval(t));
    });
    const [idle, busy] = await Promise.all([
      collectEvents(app, { path: "/idle", duration: 450 }),
      collectEvents(app, { path: "/busy", duration: 450 }),
    ]);
    // 450 ms at 100 ms: at least 2 pings even on a loaded machine, at most one per 100 ms
    const pings = idle.comments.filter((c) => c === "ping").length;
    expect(pings).toBeGreaterThanOrEqual(2);
    expect(pings).toBeLessThanOrEqual(4);
    expect(new Set(idle.comments)).toEqual(new Set(["", "ping"]));
    expect(idle.raw).toMatch(/^:\n\n(: ping\n\n)+$/);
    expect(busy.comments).toEqual([""]); // only the opening comment
    expect(busy.events.length).toBeGreaterThan(5);
  });
});
