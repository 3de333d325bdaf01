/**
 * Each case records one row; the table reporter (src/table-reporter.js) prints every row at the
 * end of the run. Rows go through a file because jest's reporters run outside the test's module
 * registry (and, with workers, outside its process).
 */
import fs from "node:fs";
import { SCALE } from "./scale";

export interface SoakRow {
  /** The case, e.g. "chaos resume (memory)". */
  case: string;
  /** The load held, in words: "200 clients x 10,000 events". */
  load: string;
  /**
   * Faults injected (sockets destroyed, pub/sub connections killed, a Redis primary killed, ...);
   * 0 if none.
   */
  faults: number;
  /** Bad inputs tried; 0 if none. */
  badInputs: number;
  /** Events lost: expected deliveries that never arrived (must be 0). */
  lost: number;
  /** Heap used after a full GC before the case, bytes. */
  heapBefore: number;
  /** Heap used after a full GC after the case and its cleanup, bytes. */
  heapAfter: number;
  /** Anything else worth a column: a latency, a bound held. Short. */
  notes?: string;
}

/** Appends `row` to this run's results file (set up by the global setup). */
export function record(row: SoakRow): void {
  const file = process.env["SOAK_RESULTS_FILE"];
  if (file === undefined || file === "") {
    throw new Error("SOAK_RESULTS_FILE is not set: run the soak suite through soak/jest.config.js");
  }
  fs.appendFileSync(file, `${JSON.stringify({ ...row, scale: SCALE })}\n`);
}
