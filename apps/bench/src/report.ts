/**
 * Turns cells into tables: per scenario, per variant, the median over runs with min–max, and the
 * comparison with `raw` measured in the same run. The same markdown is printed to the terminal
 * and written to RESULTS.md.
 */
import { median, summarize } from "./measure";
import type { CellResult, Machine, Results, ScenarioMeta } from "./results";
import type { Column } from "./scenarios/types";

const BASELINE = "raw";

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

/** The variant against raw, run by run (only runs where both succeeded), then the median. */
function compareWithRaw(
  results: Results,
  meta: ScenarioMeta,
  variant: string,
  col: Column,
): string {
  if (col.compare === "none") return "";
  if (variant === BASELINE) return "—";
  const raw = cellsOf(results, meta.key, BASELINE);
  const values: number[] = [];
  for (const cell of cellsOf(results, meta.key, variant)) {
    const mine = metric(cell, col.key);
    const base = metric(
      raw.find((r) => r.run === cell.run),
      col.key,
    );
    if (mine === undefined || base === undefined) continue;
    values.push(col.compare === "ratio" ? mine / base : mine - base);
  }
  if (values.length === 0) return "n/a";
  const m = median(values);
  if (col.compare === "ratio") return `×${formatNumber(m, 2)}`;
  return `${m >= 0 ? "+" : "−"}${formatNumber(Math.abs(m), col.digits)}`;
}

/** A markdown table for one scenario, padded so that it also reads well in a terminal. */
export function scenarioTable(results: Results, meta: ScenarioMeta): string {
  const header = ["variant"];
  const align: Array<"l" | "r"> = ["l"];
  for (const col of meta.columns) {
    header.push(col.label);
    align.push("r");
    if (col.compare !== "none") {
      header.push(col.compare === "ratio" ? "× raw" : "vs raw");
      align.push("r");
    }
  }
  const rows: string[][] = [];
  for (const variant of meta.variants ?? results.variants) {
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
        row.push(ok.length === 0 ? "" : compareWithRaw(results, meta, variant, col));
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
      "(for speed above 1 is faster; for CPU, time and memory above 1 is more). Every variant " +
      "runs with its library's defaults except heartbeats / keep-alive pings, which are off in all " +
      "of them. Every cell checked that every client received every event exactly once and in " +
      "order; a cell that did not is listed as failed under its table.",
    "",
  );
  if (chartFile !== undefined) out.push(`![Delivered events/s against clients](${chartFile})`, "");
  for (const meta of results.scenarios) {
    out.push(`## ${meta.title}`, "", meta.description, "", scenarioTable(results, meta), "");
    const failures = failureList(results, meta.key);
    if (failures !== "") out.push("Failed cells:", "", failures, "");
  }
  return out.join("\n");
}
