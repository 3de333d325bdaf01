import type { Config } from "../config";
import { median } from "../measure";
import { SEQUENCE_SAMPLE } from "./fanout";
import type { Scenario } from "./types";

const n = (value: number): string => value.toLocaleString("en-US");

/** Bursts: many events published in one tick, as after a batch job or a reconnect storm. */
export function burst(size: Config["burst"]): Scenario {
  return {
    key: "burst",
    title: `Burst: ${n(size.clients)} clients, ${size.size} events in one tick, ×${size.bursts}`,
    description:
      `${n(size.clients)} clients; ${size.size} events published in one synchronous loop, then ` +
      `wait until every client has all of them; one warm-up burst, then ${size.bursts} measured. ` +
      `Burst ms: first publish to the last client receiving the last event (median over the ` +
      `bursts of a run). Blocked ms: how long the burst held the server's event loop. Server ` +
      `CPU per 1,000 deliveries over all bursts.`,
    columns: [
      { key: "burstMs", label: "burst ms", digits: 1, compare: "ratio" },
      { key: "eventsPerSec", label: "delivered events/s", digits: 0, compare: "ratio" },
      { key: "blockedMs", label: "blocked ms", digits: 2, compare: "ratio" },
      { key: "cpuPer1k", label: "server CPU ms / 1k", digits: 2, compare: "ratio" },
      { key: "clientCpuPct", label: "client CPU %", digits: 0, compare: "none" },
    ],
    async measure(harness, ctx) {
      await harness.connect(ctx, size.clients, SEQUENCE_SAMPLE);
      const publish = { cmd: "burst", size: size.size } as const;
      await harness.deliver(ctx, size.clients, publish);
      const elapsed: number[] = [];
      const blocked: number[] = [];
      let serverCpu = 0;
      let clientCpu = 0;
      let deliveries = 0;
      for (let i = 0; i < size.bursts; i++) {
        const d = await harness.deliver(ctx, size.clients, publish);
        elapsed.push(d.elapsedMs);
        blocked.push(d.published.publishMs);
        serverCpu += d.serverCpuMs;
        clientCpu += d.report.cpuMs;
        deliveries += d.deliveries;
      }
      const totalMs = elapsed.reduce((a, b) => a + b, 0);
      return {
        burstMs: median(elapsed),
        eventsPerSec: deliveries / (totalMs / 1000),
        blockedMs: median(blocked),
        cpuPer1k: (serverCpu / deliveries) * 1000,
        clientCpuPct: (clientCpu / totalMs) * 100,
      };
    },
  };
}
