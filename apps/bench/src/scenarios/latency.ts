import type { Config } from "../config";
import type { Scenario } from "./types";

const n = (value: number): string => value.toLocaleString("en-US");

/** Latency at a steady rate: publish to receive, on the machine's one clock. */
export function latency(size: Config["latency"]): Scenario {
  const events = Math.round(size.hz * size.seconds);
  return {
    key: "latency",
    title: `Latency: ${n(size.clients)} clients, ${size.hz} events/s for ${size.seconds} s`,
    description:
      `${n(size.clients)} clients; ${size.warmupSeconds} s of warm-up at the same rate, then ` +
      `${n(events)} events at ${size.hz}/s. Each payload carries its publish time ` +
      `(performance.timeOrigin + performance.now() in the server process); every ` +
      `${size.sampleEvery}th connection reads it on arrival with the same clock. p50/p99/max over ` +
      `all samples of a run.`,
    columns: [
      { key: "p50", label: "p50 ms", digits: 2, compare: "ratio" },
      { key: "p99", label: "p99 ms", digits: 2, compare: "ratio" },
      { key: "max", label: "max ms", digits: 1, compare: "none" },
      { key: "clientCpuPct", label: "client CPU %", digits: 0, compare: "none" },
    ],
    async measure(harness, ctx) {
      await harness.connect(ctx, size.clients, size.sampleEvery);
      const warmup = Math.max(1, Math.round(size.hz * size.warmupSeconds));
      await harness.deliver(ctx, size.clients, { cmd: "rate", events: warmup, hz: size.hz });
      const d = await harness.deliver(
        ctx,
        size.clients,
        { cmd: "rate", events, hz: size.hz },
        { latency: true },
      );
      const l = d.report.latency;
      if (l === undefined) throw new Error("no latency samples were taken");
      return {
        p50: l.p50,
        p99: l.p99,
        max: l.max,
        clientCpuPct: (d.report.cpuMs / d.elapsedMs) * 100,
      };
    },
  };
}
