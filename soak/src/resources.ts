/**
 * Active-resource baselines that ignore the moment they are taken at: jest's own file reads and
 * a pending `setImmediate` come and go, so a baseline is taken once the loop has settled, and
 * the check after a case waits for the counts to come back, naming what is still open if not.
 */
import { activeResources, collectGarbage } from "./memory";
import { sleep } from "../../packages/express-sse/test/helpers/server";

/** `activeResources()` after a few quiet turns of the event loop. */
export async function settledResources(): Promise<Record<string, number>> {
  await sleep(20);
  await collectGarbage();
  return activeResources();
}

/**
 * Waits until `activeResources()` equals `baseline` and resolves `""`, or, after `timeout` ms,
 * resolves what is still open ("Timeout 2 -> 3"), for the case's row and its assertion.
 */
export async function resourcesLeftOpen(
  baseline: Record<string, number>,
  timeout = 10_000,
): Promise<string> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const now = activeResources();
    const types = new Set([...Object.keys(baseline), ...Object.keys(now)]);
    const diff = [...types]
      .filter((type) => (now[type] ?? 0) !== (baseline[type] ?? 0))
      .map((type) => `${type} ${baseline[type] ?? 0} -> ${now[type] ?? 0}`);
    if (diff.length === 0) return "";
    if (Date.now() > deadline) {
      return `Active resources not back to the baseline after ${timeout} ms: ${diff}`;
    }
    await sleep(20);
  }
}
