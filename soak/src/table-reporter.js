// Prints the soak run's one table after jest's own summary: a row per case with the load held,
// faults injected, bad inputs tried, events lost and heap before/after. The same table is written
// as Markdown to soak/results/last-run.md (git-ignored) for notes and issues.
const fs = require("node:fs");
const path = require("node:path");

const COLUMNS = [
  ["case", "case"],
  ["load", "load held"],
  ["faults", "faults injected"],
  ["badInputs", "bad inputs tried"],
  ["lost", "events lost"],
  ["heapBefore", "heap before"],
  ["heapAfter", "heap after"],
  ["notes", "notes"],
];

const mb = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
const count = (n) => n.toLocaleString("en-US");

function cells(row) {
  return COLUMNS.map(([key]) => {
    const value = row[key];
    if (key === "heapBefore" || key === "heapAfter") return mb(value);
    if (typeof value === "number") return count(value);
    return value === undefined ? "" : String(value);
  });
}

class SoakTableReporter {
  onRunComplete(_contexts, results) {
    const file = process.env.SOAK_RESULTS_FILE;
    const rows =
      file && fs.existsSync(file)
        ? fs
            .readFileSync(file, "utf8")
            .split("\n")
            .filter((line) => line !== "")
            .map((line) => JSON.parse(line))
        : [];
    const header = COLUMNS.map(([, label]) => label);
    const body = rows.map(cells);
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
    const line = (r) => r.map((c, i) => c.padEnd(widths[i])).join(" | ");
    const scale = rows[0]?.scale ?? process.env.SOAK_SCALE ?? "full";
    const totals = rows.reduce(
      (t, r) => ({ faults: t.faults + r.faults, bad: t.bad + r.badInputs, lost: t.lost + r.lost }),
      { faults: 0, bad: 0, lost: 0 },
    );
    const summary =
      `${rows.length} cases, ${count(totals.faults)} faults injected, ` +
      `${count(totals.bad)} bad inputs tried, ${count(totals.lost)} events lost` +
      (results.numFailedTests > 0 ? `; ${results.numFailedTests} checks FAILED` : "");
    const text = [
      "",
      `Soak (${scale} setting)`,
      line(header),
      widths.map((w) => "-".repeat(w)).join("-|-"),
      ...body.map(line),
      summary,
      "",
    ].join("\n");
    process.stderr.write(text);

    const md = [
      `Soak run, ${scale} setting, ${new Date().toISOString()}, Node ${process.version}`,
      "",
      `| ${header.join(" | ")} |`,
      `|${header.map(() => " --- ").join("|")}|`,
      ...body.map((r) => `| ${r.map((c) => c.replace(/\|/g, "\\|")).join(" | ")} |`),
      "",
      summary,
      "",
    ].join("\n");
    const out = path.join(__dirname, "..", "results");
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, "last-run.md"), md);
  }
}

module.exports = SoakTableReporter;
