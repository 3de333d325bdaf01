/** Heap measurements after full collections (the suite runs under `node --expose-gc`). */

/** Runs a full garbage collection; fails, naming the fix, when node runs without --expose-gc. */
export async function collectGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== "function") {
    throw new Error("The soak suite needs global.gc(): run it through `pnpm test:soak`");
  }
  // Rounds with turns of the event loop in between, so objects held by just-finished callbacks
  // and WeakRef bookkeeping are released too.
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** `heapUsed` after a full collection. */
export async function heapUsed(): Promise<number> {
  await collectGarbage();
  return process.memoryUsage().heapUsed;
}

/** Counts of `process.getActiveResourcesInfo()` by resource type (timers, sockets, ...). */
export function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}
