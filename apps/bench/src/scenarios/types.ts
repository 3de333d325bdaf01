import type { CellContext, Harness } from "../harness";
import type { ServerVariantName } from "../protocol";

/** How a column of a scenario's table is compared with `raw` measured in the same run. */
export type Compare =
  /** variant / raw: ×1.00 is as fast (or as cheap) as the hand-written loop. */
  | "ratio"
  /** variant − raw, for quantities that hover around zero (a ratio of two noises is noise). */
  | "diff"
  | "none";

export interface Column {
  key: string;
  label: string;
  digits: number;
  compare: Compare;
}

/**
 * The rows of a sweep: one set-up at several sizes instead of one row per variant. The "ratio"
 * and "diff" columns then compare each row with `baseline` measured in the same run.
 */
export interface Rows {
  /** Header of the first column, e.g. "channels". */
  header: string;
  names: string[];
  baseline: string;
  /** How the comparison columns name the baseline: "× <label>". */
  baselineLabel: string;
}

/** A goal a scenario is checked against, printed under its table. */
export interface Target {
  /** What the goal is, e.g. "p99 at 100,000 channels ≤ 10 ms". */
  label: string;
  row: string;
  column: string;
  /**
   * `value`: the row's median against `limit` (in the column's unit); `baseline`: the row ÷ the
   * baseline row of the same run (or the row `against`), median over runs, against `limit`.
   */
  of: "value" | "baseline";
  /** With `of: "baseline"`: the row to divide by instead of the scenario's baseline. */
  against?: string;
  /** The most the figure may be. */
  limit: number;
}

/** One scenario at one size: its table and how to measure one cell of it. */
export interface Scenario {
  key: string;
  title: string;
  /** One paragraph: what is measured and how, printed above the table. */
  description: string;
  columns: Column[];
  /**
   * The metrics of one cell, keyed as the columns, in one fresh server process of the variant.
   * Throws when the cell fails (loss included). Not needed when `cell` is given.
   */
  measure?(harness: Harness, ctx: CellContext): Promise<Record<string, number>>;
  /** Its own variants instead of the run's (`--variants` does not apply), e.g. `sluice-redis`. */
  variants?: ServerVariantName[];
  /** Rows of a sweep instead of variants; each cell is `cell(harness, row)`. */
  rows?: Rows;
  targets?: Target[];
  /**
   * At most this many runs, whatever `--runs` says: for the scale scenarios, capacity figures that
   * take minutes a cell (their tables then show one run's figures, no min–max).
   */
  runs?: number;
  /**
   * One whole cell, when it needs more than one server process (default: `measure` in one);
   * called with a variant, or with a row of `rows`.
   */
  cell?(harness: Harness, row: string): Promise<Record<string, number>>;
}
