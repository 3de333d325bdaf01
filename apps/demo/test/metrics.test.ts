import request from "supertest";
import { register as globalRegistry } from "prom-client";
import { collectEvents } from "@sluice/express-sse/testing";
import type { DemoApp } from "../src/app";
import { disposeAll, eventSource, listen, makeApp, waitFor } from "./harness";

afterEach(disposeAll);

const STREAMS = ["time", "client-count", "sse", "chat", "updates", "ticker", "progress", "private"];

interface Scrape {
  text: string;
  types: Map<string, string>;
  /** `name{labels}` -> value */
  values: Map<string, number>;
}

/** Fetches /metrics and parses the Prometheus text format, line by line. */
async function scrape(app: DemoApp): Promise<Scrape> {
  const res = await request(app).get("/metrics").expect(200);
  expect(res.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
  const types = new Map<string, string>();
  const values = new Map<string, number>();
  for (const line of res.text.split("\n")) {
    if (line === "") continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (line.startsWith("# HELP ")) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (!sample) throw new Error(`Unparsable metrics line: ${line}`);
    values.set(sample[1]!, Number(sample[2]));
  }
  return { text: res.text, types, values };
}

const v = (s: Scrape, name: string, label: string, value: string): number | undefined =>
  s.values.get(`${name}{${label}="${value}"}`);

describe("GET /metrics", () => {
  test("every stream has its series from the start, with the right types", async () => {
    const s = await scrape(makeApp());
    expect(s.types.get("sluice_connected_clients")).toBe("gauge");
    for (const name of [
      "sluice_streams_opened_total",
      "sluice_events_sent_total",
      "sluice_bytes_sent_total",
      "sluice_heartbeats_sent_total",
      "sluice_slow_clients_dropped_total",
      "sluice_streams_rejected_total",
    ]) {
      expect(s.types.get(name)).toBe("counter");
      for (const stream of STREAMS) expect(v(s, name, "stream", stream)).toBe(0);
    }
    for (const stream of STREAMS)
      expect(v(s, "sluice_connected_clients", "stream", stream)).toBe(0);
    for (const name of [
      "sluice_channel_events_published_total",
      "sluice_channel_resumes_total",
      "sluice_channel_resets_total",
    ]) {
      expect(s.types.get(name)).toBe("counter");
      for (const channel of ["chat", "updates", "private"]) {
        expect(v(s, name, "channel", channel)).toBe(0);
      }
    }
  });

  test("values follow the traffic, per stream", async () => {
    const app = makeApp({ tickMs: 10, progressStepMs: 1 });
    const { url } = await listen(app);

    await collectEvents(url, { path: "/api/time", count: 3 });
    await collectEvents(url, { path: "/sse" });
    await collectEvents(url, { path: "/api/progress" });
    const chat = collectEvents(url, { path: "/api/chat", count: 2 });
    await waitFor(() => app.feeds.chat.channel.size === 1, "the chat subscriber");
    let id = "";
    for (const text of ["one", "two"]) {
      const res = await request(app).post("/api/chat").send({ user: "ada", text }).expect(202);
      id ||= (res.body as { id: string }).id;
    }
    await chat;
    await collectEvents(url, { path: "/api/chat", headers: { "Last-Event-ID": id }, count: 1 });
    await collectEvents(url, { path: "/api/chat", headers: { "Last-Event-ID": "nope" }, count: 1 });

    // Two clients still connected to the ticker while we scrape.
    const a = eventSource(`${url}/api/ticker`);
    const b = eventSource(`${url}/api/ticker`);
    let prices = 0;
    for (const source of [a, b]) source.addEventListener("price", () => prices++);
    await waitFor(() => prices >= 2, "ticker prices");

    const s = await scrape(app);
    expect(v(s, "sluice_connected_clients", "stream", "ticker")).toBe(2);
    expect(v(s, "sluice_connected_clients", "stream", "time")).toBe(0);
    expect(v(s, "sluice_streams_opened_total", "stream", "time")).toBe(1);
    expect(v(s, "sluice_events_sent_total", "stream", "time")).toBeGreaterThanOrEqual(3);
    expect(v(s, "sluice_events_sent_total", "stream", "sse")).toBe(10);
    expect(v(s, "sluice_events_sent_total", "stream", "progress")).toBe(22); // 21 steps + done
    // chat: 2 live + 1 replayed (the second message after the first id) + 1 reset
    expect(v(s, "sluice_events_sent_total", "stream", "chat")).toBe(4);
    expect(v(s, "sluice_streams_opened_total", "stream", "chat")).toBe(3);
    expect(v(s, "sluice_bytes_sent_total", "stream", "sse")).toBeGreaterThan(
      10 * "data: demoN\n\n".length,
    );
    expect(v(s, "sluice_events_sent_total", "stream", "updates")).toBe(0);
    expect(v(s, "sluice_channel_events_published_total", "channel", "chat")).toBe(2);
    expect(v(s, "sluice_channel_resumes_total", "channel", "chat")).toBe(1);
    expect(v(s, "sluice_channel_resets_total", "channel", "chat")).toBe(1);

    // Scrapes mirror the library's counters: they never go down, and grow with traffic.
    a.close();
    b.close();
    await waitFor(() => app.feeds.ticker.clients === 0, "the ticker clients to leave");
    await collectEvents(url, { path: "/sse" });
    const s2 = await scrape(app);
    expect(v(s2, "sluice_connected_clients", "stream", "ticker")).toBe(0);
    expect(v(s2, "sluice_events_sent_total", "stream", "sse")).toBe(20);
    expect(v(s2, "sluice_streams_opened_total", "stream", "ticker")).toBe(2);
    for (const [key, value] of s.values) {
      if (key.includes("_total")) expect(s2.values.get(key)).toBeGreaterThanOrEqual(value);
    }
  });

  test("each app has its own registry: nothing lands in prom-client's global one", async () => {
    const one = makeApp({ tickMs: 10 });
    const two = makeApp();
    await collectEvents(one, { path: "/api/time", count: 2 });
    expect(v(await scrape(two), "sluice_events_sent_total", "stream", "time")).toBe(0);
    expect(v(await scrape(one), "sluice_events_sent_total", "stream", "time")).toBe(2);
    expect(await globalRegistry.metrics()).not.toContain("sluice_");
  });
});
