/**
 * Turns cells into tables: per scenario, per variant, the median over runs with min–max, and the
 * comparison with `raw` measured in the same run. The same markdown is printed to the terminal
 * and written to RESULTS.md.
 */
import { median, summarize } from "./measure";
import type { CellResult, Machine, Results, ScenarioMeta } from "./results";
import type { Column } from "./scenarios/types";

const BASELINE = "raw";
/**
 * The limit: `raw-socket`, one pre-framed chunk written straight to every socket. Where it ran,
 * the ratio columns are also shown against it ("× limit").
 */
export const LIMIT = "raw-socket";

export function formatNumber(value: number, digits: number): string {
  if (!Number.isFinite(value)) return "n/a";
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function cellsOf(results: Results, scenario: string, variant: string): CellResult[] {
  return results.cells.filter((c) => c.scenario === scenario && c.variant === variant);
}

function metric(cell: CellResult | undefined, key: string): number | undefined {
  return cell?.metrics?.[key];
}

/** The row's figure ÷ (or −) the baseline's of the same run, for every run where both succeeded. */
function perRun(
  results: Results,
  meta: ScenarioMeta,
  row: string,
  key: string,
  compare: "ratio" | "diff",
  against: string = baselineOf(meta),
): number[] {
  const base = cellsOf(results, meta.key, against);
  const values: number[] = [];
  for (const cell of cellsOf(results, meta.key, row)) {
    const mine = metric(cell, key);
    const theirs = metric(
      base.find((r) => r.run === cell.run),
      key,
    );
    if (mine === undefined || theirs === undefined) continue;
    values.push(compare === "ratio" ? mine / theirs : mine - theirs);
  }
  return values;
}

function baselineOf(meta: ScenarioMeta): string {
  return meta.rows?.baseline ?? BASELINE;
}

/** The row against the baseline (raw) or `against`, run by run, then the median. */
function compareWithBaseline(
  results: Results,
  meta: ScenarioMeta,
  row: string,
  col: Column,
  against: string = baselineOf(meta),
): string {
  if (col.compare === "none") return "";
  if (row === against) return "—";
  const values = perRun(results, meta, row, col.key, col.compare, against);
  if (values.length === 0) return "n/a";
  const m = median(values);
  if (col.compare === "ratio") return `×${formatNumber(m, 2)}`;
  return `${m >= 0 ? "+" : "−"}${formatNumber(Math.abs(m), col.digits)}`;
}

/** A markdown table for one scenario, padded so that it also reads well in a terminal. */
export function scenarioTable(results: Results, meta: ScenarioMeta): string {
  const header = [meta.rows?.header ?? "variant"];
  const align: Array<"l" | "r"> = ["l"];
  const baselineLabel = meta.rows?.baselineLabel ?? BASELINE;
  // The distance to the limit, for the ratio columns of variant tables where raw-socket ran.
  const withLimit = meta.rows === undefined && cellsOf(results, meta.key, LIMIT).length > 0;
  for (const col of meta.columns) {
    header.push(col.label);
    align.push("r");
    if (col.compare !== "none") {
      header.push(col.compare === "ratio" ? `× ${baselineLabel}` : `vs ${baselineLabel}`);
      align.push("r");
    }
    if (withLimit && col.compare === "ratio") {
      header.push("× limit");
      align.push("r");
    }
  }
  const rows: string[][] = [];
  for (const variant of meta.rows?.names ?? meta.variants ?? results.variants) {
    const cells = cellsOf(results, meta.key, variant);
    if (cells.length === 0) continue;
    const ok = cells.filter((c) => c.metrics !== undefined);
    const name =
      ok.length === cells.length ? variant : `${variant} (${ok.length}/${cells.length} ok)`;
    const row = [name];
    for (const col of meta.columns) {
      if (ok.length === 0) {
        row.push("FAILED");
      } else {
        const s = summarize(ok.map((c) => metric(c, col.key) ?? NaN));
        const range =
          s.n > 1 ? ` (${formatNumber(s.min, col.digits)}–${formatNumber(s.max, col.digits)})` : "";
        row.push(formatNumber(s.median, col.digits) + range);
      }
      if (col.compare !== "none")
        row.push(ok.length === 0 ? "" : compareWithBaseline(results, meta, variant, col));
      if (withLimit && col.compare === "ratio")
        row.push(ok.length === 0 ? "" : compareWithBaseline(results, meta, variant, col, LIMIT));
    }
    rows.push(row);
  }
  return markdownTable(header, align, rows);
}

function markdownTable(header: string[], align: Array<"l" | "r">, rows: string[][]): string {
  const widths = header.map((h, i) =>
    Math.max(3, h.length, ...rows.map((r) => (r[i] ?? "").length)),
  );
  const pad = (text: string, i: number): string =>
    align[i] === "r" ? text.padStart(widths[i] as number) : text.padEnd(widths[i] as number);
  const line = (cells: string[]): string => `| ${cells.map((c, i) => pad(c, i)).join(" | ")} |`;
  const rule = widths.map((w, i) => (align[i] === "r" ? `${"-".repeat(w - 1)}:` : "-".repeat(w)));
  return [line(header), `| ${rule.join(" | ")} |`, ...rows.map((r) => line(r))].join("\n");
}

/**
 * The scenario's goals, one line each: the figure, the limit, met or not. A `baseline` goal
 * divides by the baseline row run by run, like the × columns.
 */
export function targetList(results: Results, meta: ScenarioMeta): string {
  const lines: string[] = [];
  for (const target of meta.targets ?? []) {
    const col = meta.columns.find((c) => c.key === target.column);
    let figure: number;
    let shown: string;
    if (target.of === "value") {
      const values = cellsOf(results, meta.key, target.row)
        .map((c) => metric(c, target.column))
        .filter((v): v is number => v !== undefined);
      figure = median(values);
      const unit = col === undefined ? "" : ` ${unitOf(col)}`;
      shown =
        `${formatNumber(figure, col?.digits ?? 2)}${unit} ` +
        `(×${formatNumber(figure / target.limit, 2)} the limit)`;
    } else {
      const against = target.against ?? baselineOf(meta);
      figure = median(perRun(results, meta, target.row, target.column, "ratio", against));
      const label = target.against ?? meta.rows?.baselineLabel ?? BASELINE;
      shown = `×${formatNumber(figure, 2)} (the same run's ${label} = ×1)`;
    }
    const verdict = !Number.isFinite(figure)
      ? "not measured"
      : figure <= target.limit
        ? "met"
        : "**NOT met**";
    lines.push(`- ${target.label}: ${shown} — ${verdict}`);
  }
  return lines.join("\n");
}

/** "p99 ms" → "ms": the unit at the end of a column's label. */
function unitOf(col: Column): string {
  const words = col.label.split(" ");
  return words.length > 1 ? (words[words.length - 1] as string) : "";
}

/** Every failed cell with its message: loss and timeouts are reported, never dropped. */
export function failureList(results: Results, scenario: string): string {
  return results.cells
    .filter((c) => c.scenario === scenario && c.error !== undefined)
    .map((c) => `- **${c.variant}**, run ${c.run}: ${c.error}`)
    .join("\n");
}

export function machineLines(machine: Machine): string[] {
  return [
    `- CPU: ${machine.cpu}, ${machine.cores} cores; ${machine.memoryGiB} GiB memory`,
    `- Node ${machine.node} on ${machine.os}; open files (ulimit -n): ${machine.openFiles}`,
    `- Commit: ${machine.commit ?? "unknown"}`,
    `- Date: ${machine.date}; 1-minute load average before / after: ` +
      `${machine.loadBefore.toFixed(2)} / ${machine.loadAfter.toFixed(2)}`,
  ];
}

/** The whole report: machine, method summary, chart and one table per scenario. */
export function resultsMarkdown(
  results: Results,
  chartFile: string | undefined,
  readme: string,
): string {
  const { config } = results;
  const out: string[] = [];
  out.push("# Sluice benchmark results", "");
  if (results.mode === "quick") {
    out.push(
      "> **`--quick` smoke run**: scaled-down sizes, one run. It checks that the harness and every",
      "> variant work; its numbers are not results.",
      "",
    );
  }
  out.push(
    `Written by \`pnpm bench\`${results.mode === "quick" ? " --quick" : ""} in ` +
      `${Math.round(results.seconds)} s. How it measures and how to read it: [README](${readme}).`,
    "",
    ...machineLines(results.machine),
    "",
    `Each figure is the median of ${config.runs} run${config.runs === 1 ? "" : "s"}` +
      (config.runs > 1 ? " (min–max)" : "") +
      "; **× raw** is the median, over runs, of the variant ÷ `raw` measured in the same run " +
      "(for speed above 1 is faster; for CPU, time and memory above 1 is more); **× limit** is " +
      "the same against `raw-socket`, the limit (one pre-framed chunk written straight to every " +
      "socket). Every variant " +
      "runs with its library's defaults except heartbeats / keep-alive pings, which are off in all " +
      "of them. Every cell checked that every client received every event exactly once and in " +
      "order; a cell that did not is listed as failed under its table.",
    "",
  );
  if (chartFile !== undefined) out.push(`![Delivered events/s against clients](${chartFile})`, "");
  for (const meta of results.scenarios) {
    out.push(`## ${meta.title}`, "", meta.description, "", scenarioTable(results, meta), "");
    const targets = targetList(results, meta);
    if (targets !== "") out.push("Targets:", "", targets, "");
    const failures = failureList(results, meta.key);
    if (failures !== "") out.push("Failed cells:", "", failures, "");
  }
  return out.join("\n");
}
