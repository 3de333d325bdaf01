import type { Config } from "../config";
import { median } from "../measure";
import { isServerVariantName } from "../protocol";
import { memoryPerClient } from "./memory";
import type { Scenario } from "./types";

const n = (value: number): string => value.toLocaleString("en-US");

/** Sluice's default heartbeat, on in the scale scenarios (the other variants have none). */
export const SCALE_HEARTBEAT_MS = 15_000;

/**
 * As many idle streams as one process may hold here (a hard limit of 20,000 open files), every
 * variant side by side: what each stream costs, what the heartbeat costs while nothing happens,
 * and how long one broadcast takes to reach everyone.
 */
export function scaleOne(size: Config["scaleOne"]): Scenario {
  return {
    key: "scale-one",
    // Three runs, as the fan-out: its broadcast is a target, and one run of it moved by ×1.7
    // between two sittings of the same code here (the whole run slow or not, every broadcast in it).
    runs: 3,
    title: `Scale: ${n(size.clients)} idle streams in one process`,
    description:
      `In a fresh server process: ${size.warmup} clients connect and leave, full GC, baseline; ` +
      `then ${n(size.clients)} clients connect and stay (one process may hold at most 20,000 ` +
      `open files here). Heap and RSS per stream: (after full GC − baseline) ÷ streams. Idle ` +
      `CPU: the server's CPU ms per second over ${size.idleSeconds} s with no event, with ` +
      `Sluice's heartbeat on at its default (${SCALE_HEARTBEAT_MS / 1000} s: every stream gets a ` +
      `\`: ping\` once in the window, and the sweep runs); the other variants have no heartbeat. ` +
      `Broadcast: one event published, ms until the last of the ${n(size.clients)} clients has ` +
      `it (median of ${size.broadcasts}, after one warm-up), median of the runs.`,
    columns: [
      { key: "heapPerClient", label: "heap bytes/stream", digits: 0, compare: "ratio" },
      { key: "rssPerClient", label: "RSS bytes/stream", digits: 0, compare: "ratio" },
      { key: "idleCpuMsPerSec", label: "idle CPU ms/s", digits: 2, compare: "none" },
      { key: "broadcastMs", label: "broadcast ms", digits: 1, compare: "ratio" },
    ],
    targets: [
      {
        label: "Sluice's heap per stream ≤ the Express loop's (express-raw)",
        row: "sluice",
        column: "heapPerClient",
        of: "baseline",
        against: "express-raw",
        limit: 1,
      },
      {
        label: "Sluice's broadcast to all within ×1.10 the limit (raw-socket)",
        row: "sluice",
        column: "broadcastMs",
        of: "baseline",
        against: "raw-socket",
        limit: 1.1,
      },
    ],
    async cell(harness, variant) {
      if (!isServerVariantName(variant)) throw new Error(`unknown variant "${variant}"`);
      return harness.cell(variant, (ctx) => this.measure!(harness, ctx), {
        BENCH_HEARTBEAT_MS: String(SCALE_HEARTBEAT_MS),
      });
    },
    async measure(harness, ctx) {
      const memory = await memoryPerClient(harness, ctx, size.clients, size.warmup);
      const idleMs = size.idleSeconds * 1000;
      const idleCpu = await ctx.server.call("idle", { ms: idleMs }, idleMs + 30_000);
      await harness.deliver(ctx, size.clients, { cmd: "fanout", events: 1 });
      const times: number[] = [];
      for (let i = 0; i < size.broadcasts; i++) {
        const d = await harness.deliver(ctx, size.clients, { cmd: "fanout", events: 1 });
        times.push(d.elapsedMs);
      }
      return {
        ...memory,
        idleCpuMsPerSec: idleCpu / size.idleSeconds,
        broadcastMs: median(times),
      };
    },
  };
}

/**
 * 100,000 streams on one machine: `node:cluster` workers behind one port (each below the
 * 20,000-file limit), their channel on the Redis adapter, load clients in several processes.
 */
export function scaleCluster(size: Config["scaleCluster"]): Scenario {
  const row = `${n(size.clients)} streams, ${size.workers} workers`;
  return {
    key: "scale-cluster",
    runs: 1,
    title: `Scale: ${n(size.clients)} streams over ${size.workers} cluster workers on Redis`,
    description:
      `\`sluice-redis\` in ${size.workers} \`node:cluster\` workers sharing one port (about ` +
      `${n(Math.round(size.clients / size.workers))} streams each, under the 20,000 open files ` +
      `one process may hold here), heartbeat on (${SCALE_HEARTBEAT_MS / 1000} s), one local ` +
      `\`redis-server\`; ${size.clientProcesses} load-client processes open ` +
      `${n(size.clients)} connections spread over source addresses 127.0.x.y. Heap and RSS per ` +
      `stream: summed over the workers, after full GC, minus the same before connecting. Idle ` +
      `CPU: all workers' CPU ms per second over ${size.idleSeconds} s with no event (the ` +
      `heartbeat). Publish to all: one event published in the first worker, ms until every ` +
      `client of every worker has it (through Redis for the others; median of ` +
      `${size.broadcasts}, after one warm-up). One run.`,
    columns: [
      { key: "heapPerClient", label: "heap bytes/stream", digits: 0, compare: "none" },
      { key: "rssPerClient", label: "RSS bytes/stream", digits: 0, compare: "none" },
      { key: "idleCpuMsPerSec", label: "idle CPU ms/s", digits: 2, compare: "none" },
      { key: "broadcastMs", label: "publish to all ms", digits: 1, compare: "none" },
      { key: "connectSeconds", label: "connect s", digits: 1, compare: "none" },
    ],
    rows: { header: "set-up", names: [row], baseline: row, baselineLabel: row },
    async cell(harness) {
      return harness.clusterCell(size.workers, size.clientProcesses, async (cluster) => {
        const base = await cluster.server.call("memory", undefined, 120_000);
        const started = Date.now();
        await cluster.connect(size.clients);
        const connectSeconds = (Date.now() - started) / 1000;
        const full = await cluster.server.call("memory", undefined, 120_000);
        if (full.clients !== size.clients) {
          throw new Error(`${full.clients} of ${size.clients} clients registered at measurement`);
        }
        const idleMs = size.idleSeconds * 1000;
        const idleCpu = await cluster.server.call("idle", { ms: idleMs }, idleMs + 60_000);
        await cluster.broadcast();
        const times: number[] = [];
        for (let i = 0; i < size.broadcasts; i++) times.push(await cluster.broadcast());
        return {
          heapPerClient: (full.heapUsed - base.heapUsed) / size.clients,
          rssPerClient: (full.rss - base.rss) / size.clients,
          idleCpuMsPerSec: idleCpu / size.idleSeconds,
          broadcastMs: median(times),
          connectSeconds,
        };
      });
    },
  };
}
