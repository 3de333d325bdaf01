import { collectEvents } from "@sluice/express-sse/testing";
import { disposeAll, eventSource, listen, makeApp, record, waitFor } from "./harness";

afterEach(disposeAll);

const counts = (seen: string[]) =>
  seen.map((data) => (JSON.parse(data) as { count: number }).count);

describe("GET /api/client-count", () => {
  test("a lone client gets `event: client-count` with {count: 1}", async () => {
    const { events } = await collectEvents(makeApp(), { path: "/api/client-count", count: 1 });
    expect(events[0]).toEqual({ event: "client-count", data: '{"count":1}', id: "" });
  });

  test("every client hears joins and leaves, the joining one included", async () => {
    const app = makeApp();
    const { url } = await listen(app);

    const a = eventSource(`${url}/api/client-count`);
    const seenA = record(a, "client-count");
    await waitFor(() => counts(seenA).at(-1) === 1, "A to see itself: 1");

    const b = eventSource(`${url}/api/client-count`);
    const seenB = record(b, "client-count");
    await waitFor(() => counts(seenB).at(-1) === 2, "B (joining) to see 2");
    await waitFor(() => counts(seenA).at(-1) === 2, "A to see 2");

    const c = eventSource(`${url}/api/client-count`);
    const seenC = record(c, "client-count");
    await waitFor(
      () => [seenA, seenB, seenC].every((seen) => counts(seen).at(-1) === 3),
      "everyone to see 3",
    );

    c.close();
    await waitFor(() => counts(seenA).at(-1) === 2 && counts(seenB).at(-1) === 2, "2 after C left");
    b.close();
    await waitFor(() => counts(seenA).at(-1) === 1, "1 after B left");
    expect(app.feeds.clientCount.count).toBe(1);

    // Every count A saw moved by one (no stale or skipped values in between).
    expect(counts(seenA)).toEqual([1, 2, 3, 2, 1]);
    // Other streams do not count: this one has its own sse() instance.
    expect(app.feeds.time.events.stats().open).toBe(0);
  });

  test("a burst of joins is coalesced and still ends with the exact count everywhere", async () => {
    const app = makeApp();
    const { url } = await listen(app);
    const seen = Array.from({ length: 8 }, () =>
      record(eventSource(`${url}/api/client-count`), "client-count"),
    );
    await waitFor(() => seen.every((s) => counts(s).at(-1) === 8), "all eight clients to see 8");
  });
});
