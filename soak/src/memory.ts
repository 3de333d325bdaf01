/** Heap measurements after full collections (the suite runs under `node --expose-gc`). */
import { collectGarbage } from "../../packages/express-sse/test/helpers/gc";

export { activeResources, collectGarbage } from "../../packages/express-sse/test/helpers/gc";

/** `heapUsed` after a full collection. */
export async function heapUsed(): Promise<number> {
  await collectGarbage();
  return process.memoryUsage().heapUsed;
}
