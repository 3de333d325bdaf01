import type { Config } from "../config";
import type { CellContext } from "../harness";
import type { Scenario } from "./types";

const n = (value: number): string => value.toLocaleString("en-US");

/** Churn: clients that come and go must leave nothing behind. */
export function churn(size: Config["churn"]): Scenario {
  return {
    key: "churn",
    title: `Churn: ${n(size.cycles)} connect/disconnect cycles`,
    description:
      `In a fresh server process (run with --expose-gc): ${n(size.warmup)} warm-up cycles, full ` +
      `GC, baseline; then ${n(size.cycles)} cycles, ${size.concurrency} at a time (connect, wait ` +
      `for the stream to start, hang up), wait until the server has 0 clients, full GC, measure. ` +
      `Retained: heap (and RSS) growth over the baseline; anything that scales with the cycles is ` +
      `a leak. Compared with raw as a difference: both hover around zero.`,
    columns: [
      { key: "retainedKB", label: "retained heap KB", digits: 0, compare: "diff" },
      { key: "rssKB", label: "RSS growth KB", digits: 0, compare: "none" },
      { key: "cyclesPerSec", label: "cycles/s", digits: 0, compare: "ratio" },
    ],
    async measure(_harness, ctx) {
      await cycles(ctx, size.warmup, size.concurrency);
      const base = await ctx.server.call("memory", undefined, 60_000);
      const result = await cycles(ctx, size.cycles, size.concurrency);
      const after = await ctx.server.call("memory", undefined, 60_000);
      return {
        retainedKB: (after.heapUsed - base.heapUsed) / 1024,
        rssKB: (after.rss - base.rss) / 1024,
        cyclesPerSec: result.completed / (result.ms / 1000),
      };
    },
  };
}

async function cycles(ctx: CellContext, count: number, concurrency: number) {
  const timeoutMs = 30_000 + count * 5;
  const result = await ctx.client.call(
    "churn",
    {
      port: ctx.info.port,
      path: ctx.info.path,
      cycles: count,
      preludeFrames: ctx.info.preludeFrames,
      concurrency,
      timeoutMs,
    },
    timeoutMs + 5_000,
  );
  if (result.completed !== count) {
    throw new Error(
      `${count - result.completed} of ${count} cycles failed: ${result.errors.join("; ")}`,
    );
  }
  // The server must notice every hang-up: a client it still holds is a leak, not noise.
  await ctx.server.call("waitClients", { n: 0, timeoutMs: 30_000 }, 35_000);
  return result;
}
