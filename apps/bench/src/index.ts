/**
 * The benchmark's entry point: `pnpm bench [--quick] [--runs N] [--only ...] [--variants ...]`.
 * Runs every scenario, run by run, every variant within a run (so each is compared with `raw`
 * measured minutes apart, not hours), prints a table per scenario as soon as it is done, and
 * writes the report.
 */
import { execSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { throughputSvg } from "./chart";
import { FULL, QUICK, type Config } from "./config";
import { Harness } from "./harness";
import { VARIANTS, isServerVariantName, isVariantName, type VariantName } from "./protocol";
import { failureList, formatNumber, resultsMarkdown, scenarioTable, targetList } from "./report";
import type { CellResult, Machine, Results } from "./results";
import { burst } from "./scenarios/burst";
import { churn } from "./scenarios/churn";
import { crossProcess } from "./scenarios/crossprocess";
import { fanout } from "./scenarios/fanout";
import { latency } from "./scenarios/latency";
import { memory } from "./scenarios/memory";
import { redisChannels } from "./scenarios/redis-channels";
import { scaleCluster, scaleOne } from "./scenarios/scale";
import type { Scenario } from "./scenarios/types";

const ROOT = path.resolve(__dirname, "..");
const FAMILIES = [
  "fanout",
  "burst",
  "memory",
  "latency",
  "churn",
  "crossprocess",
  "redis-channels",
  "scale",
] as const;

const USAGE = `Usage: pnpm bench [options]        (from the repository root; builds first)

  --quick             everything scaled down, one run (a smoke test, under a minute)
  --runs N            runs per scenario (default: 3, or 1 with --quick)
  --only LIST         scenarios to run, comma-separated: ${FAMILIES.join(", ")}
  --variants LIST     variants to run, comma-separated: ${VARIANTS.join(", ")}
                      (raw is always included: everything is compared with it)
  --help              this text

A full run (no --quick or --only, at least 3 runs; --variants allowed) writes RESULTS.md and
throughput.svg in apps/bench; any other run writes to apps/bench/results/ (git-ignored), as does
the raw JSON of every run.`;

interface Options {
  config: Config;
  only: Set<string> | undefined;
  variants: VariantName[];
  partial: boolean;
}

function fail(message: string): never {
  console.error(`bench: ${message}\n\n${USAGE}`);
  process.exit(2);
}

function parseArgs(argv: string[]): Options {
  let quick = false;
  let runs: number | undefined;
  let only: Set<string> | undefined;
  let variants: VariantName[] = [...VARIANTS];
  let partial = false;
  const list = (i: number): string[] => {
    const value = argv[i];
    if (value === undefined || value.startsWith("--")) fail(`${argv[i - 1]} needs a value`);
    return value
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") continue; // npm-style separator, if someone passes one
    if (arg === "--help" || arg === "-h") {
      console.log(USAGE);
      process.exit(0);
    } else if (arg === "--quick") {
      quick = true;
    } else if (arg === "--runs") {
      runs = Number(argv[++i]);
      if (!Number.isInteger(runs) || runs < 1) fail("--runs needs a positive integer");
    } else if (arg === "--only") {
      const names = list(++i);
      for (const name of names) {
        if (!(FAMILIES as readonly string[]).includes(name)) fail(`unknown scenario "${name}"`);
      }
      only = new Set(names);
      partial = true;
    } else if (arg === "--variants") {
      const names = list(++i);
      for (const name of names) if (!isVariantName(name)) fail(`unknown variant "${name}"`);
      variants = VARIANTS.filter((v) => v === "raw" || names.includes(v));
    } else {
      fail(`unknown argument "${arg}"`);
    }
  }
  const base = quick ? QUICK : FULL;
  if (runs !== undefined && runs < base.runs) partial = true;
  return { config: { ...base, runs: runs ?? base.runs }, only, variants, partial };
}

function scenariosOf(config: Config, only: Set<string> | undefined): Scenario[] {
  const all: Array<[string, Scenario]> = [
    ...config.fanout.map((size): [string, Scenario] => ["fanout", fanout(size)]),
    ["burst", burst(config.burst)],
    ["memory", memory(config.memory)],
    ["latency", latency(config.latency)],
    ["churn", churn(config.churn)],
    ["crossprocess", crossProcess(config.crossProcess)],
    ["redis-channels", redisChannels(config.redisChannels)],
    ["scale", scaleOne(config.scaleOne)],
    ["scale", scaleCluster(config.scaleCluster)],
  ];
  return all.filter(([family]) => only === undefined || only.has(family)).map(([, s]) => s);
}

function shell(command: string): string {
  try {
    return execSync(command, { shell: "/bin/sh", encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

function machine(): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.versions.node,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
    openFiles: shell("ulimit -n"),
    commit:
      shell("git rev-parse --short HEAD") +
      (shell("git status --porcelain --untracked-files=no") === "" ? "" : " + uncommitted changes"),
    loadBefore: os.loadavg()[0] ?? 0,
    loadAfter: 0,
  };
}

/**
 * Every process holds one descriptor per connection: check before opening thousands. Node raises
 * its soft limit to the hard one when it starts (and children inherit that), so the hard limit
 * is the one that counts.
 */
function checkOpenFiles(config: Config): void {
  const need =
    Math.max(
      config.memory.clients,
      config.burst.clients,
      config.latency.clients,
      config.crossProcess.clients * config.crossProcess.processes,
      config.scaleOne.clients,
      // The cluster scenario's processes each hold a share: a worker or a client.
      Math.ceil(config.scaleCluster.clients / config.scaleCluster.workers),
      Math.ceil(config.scaleCluster.clients / config.scaleCluster.clientProcesses),
      ...config.fanout.map((f) => f.clients),
    ) + 200;
  const hard = shell("ulimit -Hn");
  if (hard === "unlimited" || Number(hard) >= need) return;
  console.error(
    `bench: open files are limited to ${hard} per process (\`ulimit -Hn\`; Node raises its soft ` +
      `limit to that); the largest scenario needs ${need}: one descriptor per connection, in the ` +
      `server and in the client. Raise the hard limit (as root: \`ulimit -n 20000\` before ` +
      `starting, or limits.conf), or run with --quick.`,
  );
  process.exit(1);
}

/**
 * The variants run the packages' built `dist/`, as users get them. `pnpm bench` builds first, but
 * `pnpm --filter @sluice/bench start` does not, and measuring a stale build is easy to miss (it
 * happened: a memory change "did nothing" because the build predated it). Refuse to measure one.
 */
function assertFreshBuilds(): void {
  for (const pkg of ["express-sse", "redis"]) {
    const dir = path.resolve(ROOT, "..", "..", "packages", pkg);
    const built = path.join(dir, "dist", "index.js");
    if (!existsSync(built)) fail(`packages/${pkg} is not built: run pnpm bench from the root`);
    const builtAt = statSync(built).mtimeMs;
    const newest = newestMtime(path.join(dir, "src"));
    if (newest > builtAt) {
      fail(`packages/${pkg}/dist is older than its src/: run \`pnpm build\` (pnpm bench builds)`);
    }
  }
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(file) : statSync(file).mtimeMs);
  }
  return newest;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  assertFreshBuilds();
  const { config } = options;
  checkOpenFiles(config);
  const scenarios = scenariosOf(config, options.only);
  const results: Results = {
    mode: config.mode,
    config,
    variants: options.variants,
    scenarios: scenarios.map(({ key, title, description, columns, variants, rows, targets }) => ({
      key,
      title,
      description,
      columns,
      ...(variants === undefined ? {} : { variants }),
      ...(rows === undefined ? {} : { rows }),
      ...(targets === undefined ? {} : { targets }),
    })),
    machine: machine(),
    cells: [],
    seconds: 0,
  };
  const started = Date.now();
  const cells = scenarios.reduce(
    (sum, s) => sum + (s.rows?.names ?? s.variants ?? options.variants).length,
    0,
  );
  console.log(
    `Sluice benchmark (${config.mode === "quick" ? "--quick smoke run" : "full run"}): ` +
      `${scenarios.length} scenario${scenarios.length === 1 ? "" : "s"}, ${cells} cells × ` +
      `${config.runs} run${config.runs === 1 ? "" : "s"}`,
  );
  console.log(
    `${results.machine.cpu}, ${results.machine.cores} cores, Node ${results.machine.node}, ` +
      `ulimit -n ${results.machine.openFiles}, load ${results.machine.loadBefore.toFixed(2)}\n`,
  );

  const harness = new Harness(config.connectConcurrency);
  try {
    for (const scenario of scenarios) {
      const scenarioStart = Date.now();
      console.log(`## ${scenario.title}`);
      const runs = Math.min(config.runs, scenario.runs ?? config.runs);
      for (let run = 1; run <= runs; run++) {
        for (const row of scenario.rows?.names ?? scenario.variants ?? options.variants) {
          results.cells.push(await runCell(harness, scenario, row, run, runs));
        }
      }
      const meta = results.scenarios.find((s) => s.key === scenario.key);
      if (meta !== undefined) {
        console.log(`\n${scenarioTable(results, meta)}\n`);
        const targets = targetList(results, meta);
        if (targets !== "") console.log(`Targets:\n${targets}\n`);
        const failures = failureList(results, scenario.key);
        if (failures !== "") console.log(`Failed cells:\n${failures}\n`);
      }
      console.log(
        `(${Math.round((Date.now() - scenarioStart) / 1000)} s; ` +
          `${Math.round((Date.now() - started) / 1000)} s so far)\n`,
      );
    }
  } finally {
    await harness.close();
  }
  results.seconds = (Date.now() - started) / 1000;
  results.machine.loadAfter = os.loadavg()[0] ?? 0;
  writeReport(results, options.partial);
  const failed = results.cells.filter((c) => c.error !== undefined).length;
  console.log(
    `Done in ${Math.round(results.seconds)} s; ` +
      (failed === 0 ? "every cell passed without loss." : `${failed} cell(s) FAILED (see above).`),
  );
  process.exitCode = failed === 0 ? 0 : 1;
}

async function runCell(
  harness: Harness,
  scenario: Scenario,
  variant: string,
  run: number,
  runs: number,
): Promise<CellResult> {
  const label = `  run ${run}/${runs} ${variant.padEnd(12)}`;
  const t0 = Date.now();
  try {
    let metrics: Record<string, number>;
    if (scenario.cell !== undefined) {
      metrics = await scenario.cell(harness, variant);
    } else {
      const measure = scenario.measure?.bind(scenario);
      if (measure === undefined || !isServerVariantName(variant)) {
        throw new Error(`scenario ${scenario.key} cannot measure "${variant}"`);
      }
      metrics = await harness.cell(variant, (ctx) => measure(harness, ctx));
    }
    const seconds = (Date.now() - t0) / 1000;
    const first = scenario.columns[0];
    const shown =
      first === undefined
        ? ""
        : `${first.label} ${formatNumber(metrics[first.key] ?? NaN, first.digits)}`;
    console.log(`${label} ${shown}  (${seconds.toFixed(1)} s)`);
    return { scenario: scenario.key, variant, run, metrics, error: undefined, seconds };
  } catch (err) {
    const seconds = (Date.now() - t0) / 1000;
    const error = err instanceof Error ? err.message : String(err);
    console.log(`${label} FAILED: ${error}  (${seconds.toFixed(1)} s)`);
    return { scenario: scenario.key, variant, run, metrics: undefined, error, seconds };
  }
}

function writeReport(results: Results, partial: boolean): void {
  const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
  const resultsDir = path.join(ROOT, "results");
  mkdirSync(resultsDir, { recursive: true });
  const official = results.mode === "full" && !partial;
  const name = official ? `full-${stamp}` : results.mode === "quick" ? "quick" : `partial-${stamp}`;
  writeFileSync(path.join(resultsDir, `${name}.json`), JSON.stringify(results, null, 2) + "\n");
  const svg = throughputSvg(results);
  const svgPath = official
    ? path.join(ROOT, "throughput.svg")
    : path.join(resultsDir, `${name}-throughput.svg`);
  if (svg !== undefined) writeFileSync(svgPath, svg);
  const mdPath = official ? path.join(ROOT, "RESULTS.md") : path.join(resultsDir, `${name}.md`);
  const chartLink = svg === undefined ? undefined : path.relative(path.dirname(mdPath), svgPath);
  const readme = path.relative(path.dirname(mdPath), path.join(ROOT, "README.md"));
  writeFileSync(mdPath, resultsMarkdown(results, chartLink, readme));
  const shown = [mdPath, ...(svg === undefined ? [] : [svgPath])].map(
    (p) => path.relative(process.cwd(), p) || p,
  );
  console.log(`Wrote ${shown.join(" and ")}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
