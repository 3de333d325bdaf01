/** What a benchmark run produced: written as JSON next to the tables, read by the report. */
import type { Config } from "./config";
import type { ServerVariantName, VariantName } from "./protocol";
import type { Column, Rows, Target } from "./scenarios/types";

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  os: string;
  date: string;
  /** `ulimit -n` the processes ran with (Node raises its soft limit to the hard one). */
  openFiles: string;
  /** The commit measured (`git rev-parse --short HEAD`), with "+ changes" if the tree was dirty. */
  commit: string;
  /** 1-minute load average before and after: others using the machine show up here. */
  loadBefore: number;
  loadAfter: number;
}

export interface ScenarioMeta {
  key: string;
  title: string;
  description: string;
  columns: Column[];
  /** The variants this scenario's table shows, when not the run's (`cross-process`). */
  variants?: ServerVariantName[];
  /** A sweep's rows, shown instead of variants. */
  rows?: Rows;
  targets?: Target[];
}

export interface CellResult {
  scenario: string;
  /** The variant, or the row of a sweep. */
  variant: string;
  run: number;
  metrics: Record<string, number> | undefined;
  error: string | undefined;
  seconds: number;
}

export interface Results {
  mode: Config["mode"];
  config: Config;
  variants: VariantName[];
  scenarios: ScenarioMeta[];
  machine: Machine;
  cells: CellResult[];
  seconds: number;
}
