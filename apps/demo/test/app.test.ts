import http from "node:http";
import type { AddressInfo } from "node:net";
import request from "supertest";
import { collectEvents } from "@sluice/express-sse/testing";
import { createApp } from "../src/app";
import { disposeAll, makeApp, waitFor } from "./harness";

afterEach(disposeAll);

describe("demo app", () => {
  test("GET /api/time streams `time` events carrying an ISO timestamp as a JSON string", async () => {
    const { events, headers } = await collectEvents(makeApp({ tickMs: 20 }), {
      path: "/api/time",
      count: 3,
    });
    expect(headers["content-type"]).toBe("text/event-stream; charset=utf-8");
    expect(events).toHaveLength(3);
    for (const e of events) {
      expect(e.event).toBe("time");
      expect(e.data.startsWith('"')).toBe(true); // a JSON string, quotes included
      const iso = JSON.parse(e.data) as string;
      expect(new Date(iso).toISOString()).toBe(iso);
    }
  });

  test("every stream sends retry: 3000 and the SSE headers", async () => {
    const { retries, headers } = await collectEvents(makeApp({ tickMs: 20 }), {
      path: "/api/time",
      count: 1,
    });
    expect(retries).toEqual([3000]);
    expect(headers["cache-control"]).toBe("no-cache, no-transform");
    expect(headers["x-accel-buffering"]).toBe("no");
  });

  test("GET /sse sends demo1..demo10 as unnamed events and ends the stream", async () => {
    const result = await collectEvents(makeApp(), { path: "/sse" });
    expect(result.ended).toBe(true);
    expect(result.events.map((e) => e.event)).toEqual(Array(10).fill("message"));
    expect(result.events.map((e) => e.data)).toEqual(
      Array.from({ length: 10 }, (_, i) => `demo${i + 1}`),
    );
  });

  test("GET /healthz answers {ok:true}", async () => {
    const res = await request(makeApp()).get("/healthz").expect(200);
    expect(res.body).toEqual({ ok: true });
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
  });

  test("serves the page, with the element ids the browser test relies on, and its script", async () => {
    const app = makeApp();
    const page = await request(app).get("/").expect(200);
    expect(page.headers["content-type"]).toMatch(/^text\/html/);
    expect(page.text).toContain('<script src="client.js"></script>');
    const ids = [
      "clock",
      "client-count",
      "chat-form",
      "chat-user",
      "chat-text",
      "chat-messages",
      "chat-error",
      "chat-members",
      "chat-here-count",
      "chat-anonymous",
      "ticker-chart",
      "progress-bar",
      "progress-start",
      "updates",
      "demo",
      "log",
      "private-login-form",
      "private-user",
      "private-whoami",
      "private-logout",
      "private-notify-form",
      "private-to",
      "private-text",
      "private-send",
      "private-error",
      "private-notifications",
    ];
    for (const name of [
      "time",
      "client-count",
      "sse",
      "chat",
      "updates",
      "ticker",
      "progress",
      "private",
    ]) {
      ids.push(`state-${name}`, `reconnects-${name}`, `last-id-${name}`);
    }
    for (const id of ids) expect(page.text).toContain(`id="${id}"`);
    const script = await request(app).get("/client.js").expect(200);
    expect(script.headers["content-type"]).toMatch(/javascript/);
    for (const path of ["/api/time", "/api/client-count", "/sse", "/api/updates"]) {
      expect(script.text).toContain(`new EventSource("${path}")`);
    }
    expect(script.text).toContain('new EventSource("/api/ticker")');
    expect(script.text).toContain('new EventSource("/api/progress")');
    expect(script.text).toContain('new EventSource(`/api/chat${query ? `?${query}` : ""}`)');
    // The private stream alone uses @sluice/client, from the bundle the global setup made.
    expect(script.text).toContain('import("./vendor/sluice-client.js")');
    expect(script.text).toContain('new SseClient("/api/me/events", {');
    const bundle = await request(app).get("/vendor/sluice-client.js").expect(200);
    expect(bundle.headers["content-type"]).toMatch(/javascript/);
    expect(bundle.text).toMatch(/export\s*\{[^}]*\bas SseClient\b/);
    expect(bundle.text).not.toMatch(/\brequire\(|from\s*"/); // self-contained: the parser inside
  });

  test("close() ends open streams, stops the timers, and later stream requests get 503", async () => {
    const app = makeApp({ tickMs: 10 });
    const pending = collectEvents(app, { path: "/api/time", timeout: 3000, until: () => false });
    await waitFor(() => app.feeds.time.events.streams.size === 1, "the time stream to open");
    await app.close();
    await app.close(); // safe twice
    const result = await pending;
    expect(result.ended).toBe(true);
    expect(app.feeds.updates.scheduled).toBe(false);
    expect(app.feeds.chat.channel.closed).toBe(true);
    const res = await request(app).get("/api/time").expect(503);
    expect(res.body).toEqual({ error: "the server is shutting down" });
    await request(app).get("/healthz").expect(200);
  });

  test("createApp refuses nonsensical options", () => {
    expect(() => createApp({ tickMs: 0 })).toThrow(RangeError);
    expect(() => createApp({ progressStep: -5 })).toThrow(RangeError);
    expect(() => createApp({ updateIntervalMs: [20, 10] })).toThrow(RangeError);
    expect(() => createApp({ streamSecret: "too short" })).toThrow(RangeError);
    expect(() => createApp({ streamTokenTtlMs: 0 })).toThrow(RangeError);
    expect(() => createApp({ maxUserChannels: 0.5 })).toThrow(RangeError);
    expect(() => createApp({ privateStreamLifetimeMs: 1.5 })).toThrow(RangeError);
  });

  test("the time stream's interval is cleared when the client leaves", async () => {
    const created: unknown[] = [];
    const cleared: unknown[] = [];
    const realSetInterval = global.setInterval;
    const realClearInterval = global.clearInterval;
    const setSpy = jest.spyOn(global, "setInterval").mockImplementation(((
      fn: () => void,
      ms: number,
    ) => {
      const t = realSetInterval(fn, ms);
      created.push(t);
      return t;
    }) as typeof setInterval);
    const clearSpy = jest.spyOn(global, "clearInterval").mockImplementation((t) => {
      cleared.push(t);
      realClearInterval(t);
    });
    try {
      const server = http.createServer(makeApp({ tickMs: 10 }));
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      await collectEvents(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, {
        path: "/api/time",
        count: 2,
      });
      server.close();
      // The interval of the handler (10 ms) and the heartbeat's must both be cleared.
      expect(created.length).toBe(2);
      for (let i = 0; i < 200 && cleared.length < created.length; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(new Set(cleared)).toEqual(new Set(created));
    } finally {
      setSpy.mockRestore();
      clearSpy.mockRestore();
    }
  });
});
