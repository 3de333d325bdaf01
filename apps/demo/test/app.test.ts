import http from "node:http";
import type { AddressInfo } from "node:net";
import request from "supertest";
import { collectEvents } from "@sluice/express-sse/testing";
import { createApp } from "../src/app";

describe("demo app", () => {
  test("GET /api/time streams `time` events carrying an ISO timestamp as a JSON string", async () => {
    const { events, headers } = await collectEvents(createApp({ tickMs: 20 }), {
      path: "/api/time",
      count: 3,
    });
    expect(headers["content-type"]).toBe("text/event-stream; charset=utf-8");
    for (const e of events) {
      expect(e.event).toBe("time");
      const iso = JSON.parse(e.data) as string;
      expect(new Date(iso).toISOString()).toBe(iso);
    }
  });

  test("GET /sse sends demo1..demo10 and ends the stream", async () => {
    const result = await collectEvents(createApp(), { path: "/sse" });
    expect(result.ended).toBe(true);
    expect(result.events.map((e) => e.data)).toEqual(
      Array.from({ length: 10 }, (_, i) => `demo${i + 1}`),
    );
  });

  test("serves the page and its script", async () => {
    const app = createApp();
    const page = await request(app).get("/").expect(200);
    expect(page.text).toContain('<script src="client.js"></script>');
    const script = await request(app).get("/client.js").expect(200);
    expect(script.text).toContain('new EventSource("/api/time")');
    await request(app).get("/healthz").expect(200, { ok: true });
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
      const server = http.createServer(createApp({ tickMs: 10 }));
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
