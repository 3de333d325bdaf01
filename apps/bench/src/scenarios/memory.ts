import type { Config } from "../config";
import type { CellContext, Harness } from "../harness";
import type { Scenario } from "./types";

const n = (value: number): string => value.toLocaleString("en-US");

/** Memory per idle client: what holding a connection open costs the server. */
export function memory(size: Config["memory"]): Scenario {
  return {
    key: "memory",
    title: `Memory: ${n(size.clients)} idle clients`,
    description:
      `In a fresh server process (run with --expose-gc): ${size.warmup} clients connect and ` +
      `leave (so lazily loaded code is loaded), full GC, baseline; then ${n(size.clients)} clients ` +
      `connect and stay idle (no events), full GC, measure. Per client: (measured − baseline) ÷ ` +
      `clients, for the V8 heap (heapUsed) and the process RSS. Kernel socket buffers are not in ` +
      `either.`,
    columns: [
      { key: "heapPerClient", label: "heap bytes/client", digits: 0, compare: "ratio" },
      { key: "rssPerClient", label: "RSS bytes/client", digits: 0, compare: "ratio" },
    ],
    targets: [
      {
        label: "Sluice's heap per idle stream ≤ the Express loop's (express-raw)",
        row: "sluice",
        column: "heapPerClient",
        of: "baseline",
        against: "express-raw",
        limit: 1,
      },
    ],
    measure: (harness, ctx) => memoryPerClient(harness, ctx, size.clients, size.warmup),
  };
}

/**
 * Heap and RSS per idle client: `warmup` clients connect and leave, full GC, baseline; `clients`
 * connect and stay, full GC, measure; the difference ÷ `clients`.
 */
export async function memoryPerClient(
  harness: Harness,
  ctx: CellContext,
  clients: number,
  warmup: number,
): Promise<{ heapPerClient: number; rssPerClient: number }> {
  await harness.connect(ctx, warmup);
  await harness.disconnect(ctx);
  const base = await ctx.server.call("memory", undefined, 60_000);
  await harness.connect(ctx, clients);
  const full = await ctx.server.call("memory", undefined, 60_000);
  if (full.clients !== clients) {
    throw new Error(`${full.clients} of ${clients} clients registered at measurement`);
  }
  return {
    heapPerClient: (full.heapUsed - base.heapUsed) / clients,
    rssPerClient: (full.rss - base.rss) / clients,
  };
}
