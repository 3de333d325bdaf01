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

/** One scenario at one size: its table and how to measure one cell of it. */
export interface Scenario {
  key: string;
  title: string;
  /** One paragraph: what is measured and how, printed above the table. */
  description: string;
  columns: Column[];
  /** The metrics of one cell, keyed as the columns. Throws when the cell fails (loss included). */
  measure(harness: Harness, ctx: CellContext): Promise<Record<string, number>>;
  /** Its own variants instead of the run's (`--variants` does not apply), e.g. `sluice-redis`. */
  variants?: ServerVariantName[];
  /** One whole cell, when it needs more than one server process (default: `measure` in one). */
  cell?(harness: Harness, variant: ServerVariantName): Promise<Record<string, number>>;
}
