import type { Config } from "../config";
import type { CellContext, Harness } from "../harness";
import { isServerVariantName } from "../protocol";
import { startRedis } from "../redis-server";
import type { Scenario } from "./types";

const n = (value: number): string => value.toLocaleString("en-US");

type Size = Config["crossProcess"];

/**
 * One channel served by several processes through Redis (`sluice-redis`, one fresh Redis per
 * cell), beside the in-memory `sluice` in one process as the reference: clients connect to every
 * process, events are published in the first one only.
 */
export function crossProcess(size: Size): Scenario {
  const total = size.clients * size.processes;
  return {
    key: "crossprocess",
    title:
      `Cross-process: ${size.processes} processes × ${n(size.clients)} clients through Redis, ` +
      `${n(size.events)} events`,
    description:
      `\`sluice-redis\`: ${size.processes} server processes, each with a channel on the Redis ` +
      `adapter (\`@sluice/redis\`, one local \`redis-server\` started for the cell), ` +
      `${n(size.clients)} clients on each (${n(total)} in all); process A publishes ` +
      `${n(size.events)} events (one per turn of its event loop, after ${n(size.warmup)} warm-up ` +
      `ones) and every client of every process must receive every one. \`sluice\`: the in-memory ` +
      `reference, one process with ${n(size.clients)} clients, same events. Events/s: deliveries ` +
      `÷ time from the first publish to the last client receiving the last event; p50/p99: ` +
      `publish-to-receive over every ${size.sampleEvery}th connection, on the machine's one clock, ` +
      `while publishing as fast as the loop turns (so they include the backlog a flood builds). ` +
      `Then a paced run, as in the latency scenario: ${size.hz} events/s for ${size.seconds} s, ` +
      `"paced" p50/p99: what a subscriber waits at a steady rate.`,
    columns: [
      { key: "eventsPerSec", label: "events/s", digits: 0, compare: "none" },
      { key: "p50", label: "p50 ms", digits: 2, compare: "none" },
      { key: "p99", label: "p99 ms", digits: 2, compare: "none" },
      { key: "pacedP50", label: "paced p50 ms", digits: 2, compare: "none" },
      { key: "pacedP99", label: "paced p99 ms", digits: 2, compare: "none" },
      { key: "clientCpuPct", label: "client CPU %", digits: 0, compare: "none" },
    ],
    variants: ["sluice", "sluice-redis"],
    measure: (harness, ctx) => measure(harness, size, ctx, []),
    async cell(harness, variant) {
      if (variant !== "sluice-redis") {
        if (!isServerVariantName(variant)) throw new Error(`unknown variant "${variant}"`);
        return harness.cell(variant, (ctx) => measure(harness, size, ctx, []));
      }
      const redis = await startRedis();
      try {
        const env = { BENCH_REDIS_URL: redis.url };
        return await harness.cell(
          variant,
          async (ctx) => {
            const servers = Array.from({ length: size.processes - 1 }, () =>
              harness.spawnServer(variant, env),
            );
            try {
              const others: CellContext[] = [];
              for (const server of servers) {
                others.push({ ...ctx, server, info: await harness.serverInfo(server) });
              }
              return await measure(harness, size, ctx, others);
            } finally {
              await Promise.all(servers.map((s) => s.kill()));
            }
          },
          env,
        );
      } finally {
        await redis.stop();
      }
    },
  };
}

/** Clients on every process, then events published by `publisher` only. */
async function measure(
  harness: Harness,
  size: Size,
  publisher: CellContext,
  others: CellContext[],
): Promise<Record<string, number>> {
  for (const ctx of [publisher, ...others]) {
    await harness.connect(ctx, size.clients, size.sampleEvery);
  }
  const clients = size.clients * (1 + others.length);
  await harness.deliver(publisher, clients, { cmd: "fanout", events: size.warmup });
  const d = await harness.deliver(
    publisher,
    clients,
    { cmd: "fanout", events: size.events },
    { latency: true },
  );
  const l = d.report.latency;
  if (l === undefined) throw new Error("no latency samples were taken");
  const paced = await harness.deliver(
    publisher,
    clients,
    { cmd: "rate", events: Math.round(size.hz * size.seconds), hz: size.hz },
    { latency: true },
  );
  const p = paced.report.latency;
  if (p === undefined) throw new Error("no latency samples were taken at the paced rate");
  return {
    eventsPerSec: d.deliveries / (d.elapsedMs / 1000),
    p50: l.p50,
    p99: l.p99,
    pacedP50: p.p50,
    pacedP99: p.p99,
    clientCpuPct: (d.report.cpuMs / d.elapsedMs) * 100,
  };
}
