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
