import { Counter, Gauge, Registry } from "prom-client";
import type { ChannelStats, SseMiddleware, StreamStats } from "@sluice/express-sse";
import type { Routes, StreamName } from "./feed";

export interface MetricsSources {
  /** Each stream's own `sse()` instance. */
  streams: ReadonlyMap<StreamName, SseMiddleware>;
  /** The channels, by name. */
  channels: ReadonlyMap<string, { stats(): ChannelStats }>;
}

/**
 * `GET /metrics`: Prometheus text format, from the app's own `Registry` (not prom-client's global
 * one, so several apps in one process — the tests — never collide).
 *
 * Nothing is counted twice: every value is read at scrape time from the library's own counters
 * (`sse().stats()` per stream, `channel.stats()` per channel) in the metrics' `collect()`.
 *
 * Counter or gauge? Prometheus' rule is by meaning: a value that only goes up (events sent, bytes,
 * drops, resumes) is a counter, named `…_total`, so that `rate()`/`increase()` apply and tools
 * that check types (OpenMetrics, recording-rule linters) treat it right; a value that goes up and
 * down (clients connected now) is a gauge, never named `_total`. prom-client's `Counter` has no
 * `set()`, but the library already keeps the running totals, so `collect()` mirrors them exactly
 * with `reset()` + `inc(total)`: the exposed value is always the library's, with no drift and no
 * per-label bookkeeping, and it is still exposed with `# TYPE … counter`.
 */
export function mountMetrics(routes: Routes, { streams, channels }: MetricsSources): Registry {
  const registry = new Registry();

  const streamCounter = (name: string, help: string, key: keyof StreamStats) =>
    new Counter({
      name,
      help,
      labelNames: ["stream"],
      registers: [registry],
      collect() {
        this.reset();
        for (const [stream, events] of streams) this.inc({ stream }, events.stats()[key]);
      },
    });
  const channelCounter = (name: string, help: string, key: "events" | "resumes" | "resets") =>
    new Counter({
      name,
      help,
      labelNames: ["channel"],
      registers: [registry],
      collect() {
        this.reset();
        for (const [channel, source] of channels) this.inc({ channel }, source.stats()[key]);
      },
    });

  new Gauge({
    name: "sluice_connected_clients",
    help: "Event streams open now, per stream.",
    labelNames: ["stream"],
    registers: [registry],
    collect() {
      for (const [stream, events] of streams) this.set({ stream }, events.stats().open);
    },
  });
  streamCounter("sluice_streams_opened_total", "Event streams started, per stream.", "opened");
  streamCounter(
    "sluice_events_sent_total",
    "Events written to clients (each copy counted), per stream.",
    "events",
  );
  streamCounter(
    "sluice_bytes_sent_total",
    "Bytes written to clients, heartbeats included, per stream.",
    "bytes",
  );
  streamCounter(
    "sluice_heartbeats_sent_total",
    "Heartbeat comments written, per stream.",
    "heartbeats",
  );
  streamCounter(
    "sluice_slow_clients_dropped_total",
    "Clients disconnected for falling more than maxBufferedBytes behind, per stream.",
    "slowClientsDropped",
  );
  streamCounter(
    "sluice_streams_rejected_total",
    "Streams refused with 503 (maxConnections), per stream.",
    "rejected",
  );
  channelCounter(
    "sluice_channel_events_published_total",
    "Events published, per channel.",
    "events",
  );
  channelCounter(
    "sluice_channel_resumes_total",
    "Subscribers that resumed from history after Last-Event-ID, per channel.",
    "resumes",
  );
  channelCounter(
    "sluice_channel_resets_total",
    "Subscribers sent `event: reset` (Last-Event-ID unknown or too old), per channel.",
    "resets",
  );

  routes.get("/metrics", async (_req, res) => {
    res.set("Content-Type", registry.contentType);
    res.set("Cache-Control", "no-store");
    res.send(await registry.metrics());
  });

  return registry;
}
