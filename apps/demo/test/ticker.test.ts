import { collectEvents } from "@sluice/express-sse/testing";
import { nextPrice, type PricePoint } from "../src/feeds/ticker";
import { disposeAll, eventSource, listen, makeApp, record, waitFor } from "./harness";

afterEach(disposeAll);

describe("GET /api/ticker", () => {
  test("about ten `price` events a second, {t, price}, times increasing", async () => {
    const app = makeApp(); // the production rate: every 100 ms
    const { events } = await collectEvents(app, { path: "/api/ticker", duration: 1000 });
    // 1 s at 10/s is 10 ticks, plus the current price sent on joining. Generous bounds for CI.
    expect(events.length).toBeGreaterThanOrEqual(6);
    expect(events.length).toBeLessThanOrEqual(13);
    const points = events.map((e) => {
      expect(e.event).toBe("price");
      return JSON.parse(e.data) as PricePoint;
    });
    for (const p of points) {
      expect(Object.keys(p).sort()).toEqual(["price", "t"]);
      expect(Number.isFinite(p.price)).toBe(true);
      expect(p.price).toBeGreaterThan(0);
      expect(Math.abs(p.t - Date.now())).toBeLessThan(5000);
    }
    for (let i = 1; i < points.length; i++) {
      expect(points[i]!.t).toBeGreaterThanOrEqual(points[i - 1]!.t);
    }
  });

  test("one shared timer: started by the first client, stopped when the last one leaves", async () => {
    const app = makeApp({ tickerIntervalMs: 10 });
    const { url } = await listen(app);
    expect(app.feeds.ticker.running).toBe(false); // nobody watching, nothing generated

    const a = eventSource(`${url}/api/ticker`);
    const pricesA = record(a, "price");
    await waitFor(() => pricesA.length >= 3, "prices for A");
    expect(app.feeds.ticker.running).toBe(true);

    const b = eventSource(`${url}/api/ticker`);
    const pricesB = record(b, "price");
    await waitFor(() => pricesB.length >= 3, "prices for B");
    expect(app.feeds.ticker.clients).toBe(2);

    // Both see the same ticks (one generator): B's prices after joining are in A's stream.
    const tail = pricesB.slice(1, 3); // [0] is the snapshot sent on joining
    expect(pricesA.join("\n")).toContain(tail.join("\n"));

    a.close();
    await waitFor(() => app.feeds.ticker.clients === 1, "A to leave");
    expect(app.feeds.ticker.running).toBe(true); // B still watching

    b.close();
    await waitFor(() => !app.feeds.ticker.running, "the timer to stop");
    expect(app.feeds.ticker.clients).toBe(0);

    // And a new client starts it again, from where the walk left off.
    const last = JSON.parse(pricesB.at(-1)!) as PricePoint;
    const { events } = await collectEvents(url, { path: "/api/ticker", count: 2 });
    expect(Math.abs((JSON.parse(events[0]!.data) as PricePoint).price - last.price)).toBeLessThan(
      last.price * 0.2,
    );
    await waitFor(() => !app.feeds.ticker.running, "the timer to stop again");
  });

  test("the walk stays positive and close to its start over a long run", () => {
    let price = 100;
    let seed = 1;
    const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    for (let i = 0; i < 100_000; i++) {
      price = nextPrice(price, random);
      expect(price).toBeGreaterThan(0);
    }
    expect(price).toBeGreaterThan(20);
    expect(price).toBeLessThan(500);
  });
});
