import { collectEvents } from "@sluice/express-sse/testing";
import type { DataUpdate } from "../src/feeds/updates";
import { disposeAll, listen, makeApp, waitFor } from "./harness";

afterEach(disposeAll);

const refTimeouts = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

describe("GET /api/updates", () => {
  test("`event: dataUpdate` at random intervals within the configured range", async () => {
    const app = makeApp({ updateIntervalMs: [20, 60] });
    const started = Date.now();
    const { events, headers } = await collectEvents(app, { path: "/api/updates", count: 3 });
    const elapsed = Date.now() - started;
    expect(headers["content-type"]).toBe("text/event-stream; charset=utf-8");
    expect(events.map((e) => e.event)).toEqual(["dataUpdate", "dataUpdate", "dataUpdate"]);
    for (const e of events) expect(e.id).not.toBe("");
    const updates = events.map((e) => JSON.parse(e.data) as DataUpdate);
    const versions = updates.map((u) => u.version);
    expect(versions[1]).toBe(versions[0]! + 1);
    expect(versions[2]).toBe(versions[0]! + 2);
    for (const u of updates) {
      expect(u.added).toBeGreaterThanOrEqual(1);
      expect(new Date(u.at).toISOString()).toBe(u.at);
    }
    expect(updates[2]!.orders).toBe(updates[1]!.orders + updates[2]!.added);
    // Three updates take at least 2 x 20 ms (after the first), and not minutes.
    expect(elapsed).toBeGreaterThanOrEqual(35);
    expect(elapsed).toBeLessThan(2000);
  });

  test("one publisher for the app: every client sees the same updates", async () => {
    const app = makeApp({ updateIntervalMs: [15, 30] });
    const { url } = await listen(app);
    const a = collectEvents(url, { path: "/api/updates", count: 3 });
    const b = collectEvents(url, { path: "/api/updates", count: 3 });
    await waitFor(() => app.feeds.updates.channel.size === 2, "both subscribers");
    const [ra, rb] = await Promise.all([a, b]);
    // Both joined before any of their updates, so both got the same ones (same ids).
    expect(ra.events.map((e) => e.id)).toEqual(rb.events.map((e) => e.id));
  });

  test("a reconnecting client resumes from Last-Event-ID", async () => {
    const app = makeApp({ updateIntervalMs: [5, 15] });
    const first = await collectEvents(app, { path: "/api/updates", count: 2 });
    const lastId = first.events[1]!.id;
    const second = await collectEvents(app, {
      path: "/api/updates",
      headers: { "Last-Event-ID": lastId },
      count: 2,
    });
    const versions = [...first.events, ...second.events].map(
      (e) => (JSON.parse(e.data) as DataUpdate).version,
    );
    expect(versions).toEqual([versions[0], versions[0]! + 1, versions[0]! + 2, versions[0]! + 3]);
  });

  test("the publisher timer is unref'd, one per app, and stopped by close()", async () => {
    const before = refTimeouts();
    const app = makeApp({ updateIntervalMs: [60_000, 60_000] });
    expect(app.feeds.updates.scheduled).toBe(true);
    // unref'd: it does not count as a handle keeping the process alive.
    expect(refTimeouts()).toBe(before);

    const spy = jest.spyOn(global, "setTimeout");
    try {
      const { url } = await listen(app);
      await Promise.all([
        collectEvents(url, { path: "/api/updates", duration: 50 }),
        collectEvents(url, { path: "/api/updates", duration: 50 }),
      ]);
      // Clients never start timers of their own (collectEvents' own duration timers aside).
      const perClient = spy.mock.calls.filter(([, ms]) => ms === 60_000);
      expect(perClient).toHaveLength(0);
    } finally {
      spy.mockRestore();
    }

    await app.close();
    expect(app.feeds.updates.scheduled).toBe(false);
  });

  test("no update is published after close()", async () => {
    const app = makeApp({ updateIntervalMs: [5, 10] });
    await collectEvents(app, { path: "/api/updates", count: 1 });
    await app.close();
    const published = app.feeds.updates.channel.stats().events;
    await new Promise((r) => setTimeout(r, 60));
    expect(app.feeds.updates.channel.stats().events).toBe(published);
  });
});
