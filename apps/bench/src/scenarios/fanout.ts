import type { FanoutSize } from "../config";
import type { Scenario } from "./types";

const n = (value: number): string => value.toLocaleString("en-US");

/** Every 100th connection also checks that sequence numbers arrive in order, without gaps. */
export const SEQUENCE_SAMPLE = 100;

/**
 * Fan-out throughput: every event goes to every client; the publisher yields to the event loop
 * (setImmediate) after each broadcast, as a real one would.
 */
export function fanout(size: FanoutSize): Scenario {
  return {
    key: `fanout-${size.clients}`,
    title: `Fan-out: ${n(size.clients)} clients × ${n(size.events)} events`,
    description:
      `${n(size.clients)} clients connected, ${n(size.warmup)} warm-up events, then ` +
      `${n(size.events)} events published one per event-loop turn. Delivered events/s: ` +
      `deliveries ÷ time from the first publish to the last client receiving the last event. ` +
      `Server CPU: user + system ms per 1,000 deliveries over the same interval. Client CPU: the ` +
      `load client's share of one core (near 100 %: the client, not the server, was the limit). ` +
      `Bytes/event: what one client receives per event, as the variant frames it.`,
    columns: [
      { key: "eventsPerSec", label: "delivered events/s", digits: 0, compare: "ratio" },
      { key: "cpuPer1k", label: "server CPU ms / 1k", digits: 2, compare: "ratio" },
      { key: "clientCpuPct", label: "client CPU %", digits: 0, compare: "none" },
      { key: "bytesPerEvent", label: "bytes/event", digits: 0, compare: "none" },
    ],
    targets: [
      {
        label: "Sluice's server CPU per delivery ≤ ×1.10 the limit (raw-socket)",
        row: "sluice",
        column: "cpuPer1k",
        of: "baseline",
        against: "raw-socket",
        limit: 1.1,
      },
    ],
    async measure(harness, ctx) {
      await harness.connect(ctx, size.clients, SEQUENCE_SAMPLE);
      await harness.deliver(ctx, size.clients, { cmd: "fanout", events: size.warmup });
      const d = await harness.deliver(ctx, size.clients, { cmd: "fanout", events: size.events });
      return {
        eventsPerSec: d.deliveries / (d.elapsedMs / 1000),
        cpuPer1k: (d.serverCpuMs / d.deliveries) * 1000,
        clientCpuPct: (d.report.cpuMs / d.elapsedMs) * 100,
        bytesPerEvent: d.report.bytes / d.deliveries,
      };
    },
  };
}
