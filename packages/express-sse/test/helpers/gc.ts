/** Runs a full garbage collection; fails, naming the fix, when node runs without --expose-gc. */
export async function collectGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== "function") {
    throw new Error(
      "Leak tests need global.gc(): run jest through `node --expose-gc` (pnpm test does)",
    );
  }
  // Several rounds with turns of the event loop in between, so that FinalizationRegistry and
  // WeakRef bookkeeping, and objects held by just-finished callbacks, are all released.
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
}

/** Counts of `process.getActiveResourcesInfo()` by resource type. */
export function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

/**
 * Runs `churn(cycles)` after a warm-up and returns the heap growth over a second window of the
 * same size. The first thousands of cycles grow the heap by design (JIT code, socket and agent
 * pools, jest's own bookkeeping); a leak keeps growing in every window, so only the steady-state
 * window is measured. Noise there is about +-350 KB, so a 1 MB bound catches any leak of
 * more than ~500 bytes per cycle over 2,000 cycles.
 */
export async function steadyStateHeapGrowth(
  churn: (cycles: number) => Promise<void>,
  { warmup, cycles }: { warmup: number; cycles: number },
): Promise<number> {
  await churn(warmup);
  await churn(cycles);
  await collectGarbage();
  const before = process.memoryUsage().heapUsed;
  await churn(cycles);
  await collectGarbage();
  return process.memoryUsage().heapUsed - before;
}
