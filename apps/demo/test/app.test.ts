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

  test("the time stream's timer is released when the client leaves", async () => {
    const server = http.createServer(createApp({ tickMs: 10 }));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const before = process.getActiveResourcesInfo().filter((t) => t === "Timeout").length;
      await collectEvents(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, {
        path: "/api/time",
        count: 2,
      });
      await new Promise((r) => setTimeout(r, 50));
      const after = process.getActiveResourcesInfo().filter((t) => t === "Timeout").length;
      expect(after).toBe(before);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
