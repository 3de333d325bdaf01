/**
 * The channel-count sweep: what one more open channel costs a process on the Redis adapter. One
 * reader process holds N channels open and listening, another process publishes to random ones
 * among them at a steady rate, through one fresh `redis-server` per cell; each row is one N.
 */
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "redis";
import type { Config } from "../config";
import { now } from "../payload";
import type { ChannelsCommands, ChannelsReport, PublishRun } from "../protocol";
import { startRedis } from "../redis-server";
import { Worker } from "../rpc";
import type { Scenario } from "./types";

type Size = Config["redisChannels"];
type ChannelsWorker = Worker<ChannelsCommands>;

const n = (value: number): string => value.toLocaleString("en-US");

const ROOT = path.resolve(__dirname, "..", "..");
const SHORT_TIMEOUT = 20_000;
/**
 * Fail a round when no event at all arrived for this long; plus 1 ms per channel for the first
 * round, which may start while the reader is still starting the channels' feeds.
 */
const STALL_MS = 15_000;
/** Keep counting this long after the last expected event, so duplicates show up too. */
const GRACE_MS = 50;
/** How often the harness asks Redis how many channels the reader is subscribed to. */
const POLL_MS = 10;

/** p99 publish-to-receive at the largest size, at most (ms). */
const P99_TARGET_MS = 10;
/** Reader CPU per event at the largest size, at most this many times the smallest size's. */
const CPU_TARGET_RATIO = 1.25;

export function redisChannels(size: Size): Scenario {
  const names = size.channels.map(n);
  const smallest = names[0] ?? "";
  const largest = names[names.length - 1] ?? "";
  const events = Math.round(size.hz * size.seconds);
  return {
    key: "redis-channels",
    title:
      `Channel-count sweep: ${names.join(", ")} open channels in one process through Redis, ` +
      `${n(size.hz)} events/s`,
    description:
      `One reader process with N channels open on one Redis adapter (\`@sluice/redis\`), each ` +
      `listening and active as a \`Channel\` with one subscriber makes it (\`listen()\` and ` +
      `\`setActive(true)\` on its adapter channel, all N in one tick: N HTTP subscribers would ` +
      `need N sockets); a publisher process with its own adapter; one fresh \`redis-server\` per ` +
      `cell. Subscribe s: from opening the first channel until Redis counts N shard ` +
      `subscriptions for the reader (\`CLIENT LIST\`, ssub). Then one event per channel, all of ` +
      `which must arrive; live s: from the first open until the last of them arrived. Then ` +
      `${size.warmupSeconds} s of warm-up and the measured ${size.seconds} s at ` +
      `${n(size.hz)} events/s (what is due every ${size.tickMs} ms), each to a channel picked at ` +
      `random: ${n(events)} events, after full garbage collections in both processes. Delivered: events the reader received, each once and in ` +
      `order on its channel (anything else fails the cell). p50/p99: publish-to-receive on the ` +
      `machine's one clock. Reader CPU: the reader process's user + system CPU from just before ` +
      `the first publish until the last event arrived, per event. Redis CPU: \`used_cpu_user\` ` +
      `+ \`used_cpu_sys\` (\`INFO cpu\`) over the same round, per event, publishing included. ` +
      `Reader heap: V8 heap used after full collections, once the round is over. Longest GC: ` +
      `the longest garbage collection pause in the reader or the publisher during the round ` +
      `(every event that arrives meanwhile waits for it). Gap reads: stream reads the reader's ` +
      `live feed made during the round (0: it missed nothing). × ${smallest} ch: the row ÷ the ` +
      `${smallest}-channel row of the same run, median over runs.`,
    columns: [
      { key: "delivered", label: "delivered", digits: 0, compare: "none" },
      { key: "p50", label: "p50 ms", digits: 2, compare: "ratio" },
      { key: "p99", label: "p99 ms", digits: 2, compare: "ratio" },
      { key: "readerCpuUs", label: "reader CPU µs/event", digits: 1, compare: "ratio" },
      { key: "redisCpuUs", label: "Redis CPU µs/event", digits: 1, compare: "ratio" },
      { key: "subscribeS", label: "subscribe s", digits: 2, compare: "none" },
      { key: "liveS", label: "live s", digits: 2, compare: "none" },
      { key: "readerHeapMB", label: "reader heap MB", digits: 0, compare: "none" },
      { key: "gcMaxMs", label: "longest GC ms", digits: 1, compare: "none" },
      { key: "gapReads", label: "gap reads", digits: 0, compare: "none" },
    ],
    rows: { header: "channels", names, baseline: smallest, baselineLabel: `${smallest} ch` },
    targets: [
      {
        label: `p99 at ${largest} channels ≤ ${P99_TARGET_MS} ms`,
        row: largest,
        column: "p99",
        of: "value",
        limit: P99_TARGET_MS,
      },
      {
        label:
          `reader CPU per event at ${largest} channels ≤ ×${CPU_TARGET_RATIO} the ` +
          `${smallest}-channel figure`,
        row: largest,
        column: "readerCpuUs",
        of: "baseline",
        limit: CPU_TARGET_RATIO,
      },
    ],
    cell(_harness, row) {
      const channels = size.channels[names.indexOf(row)];
      if (channels === undefined) throw new Error(`unknown row "${row}"`);
      return measure(size, channels);
    },
  };
}

function spawn(role: string): ChannelsWorker {
  return Worker.spawn<ChannelsCommands>(
    `channels ${role}`,
    path.join(__dirname, "..", "channels-worker.ts"),
    [role],
    // --expose-gc: full collections before the measured round, and the heap after it.
    { cwd: ROOT, execArgv: ["--expose-gc"] },
  );
}

async function measure(size: Size, channels: number): Promise<Record<string, number>> {
  const redis = await startRedis();
  const probe = createClient({ url: redis.url });
  probe.on("error", () => undefined); // a failure shows as a failed command
  const reader = spawn("reader");
  const publisher = spawn("publisher");
  try {
    await probe.connect();
    const openTimeout = SHORT_TIMEOUT + channels;
    const open = { url: redis.url, channels };
    const opened = await reader.call("open", { ...open, listen: true }, openTimeout + 5_000);
    const subscribedAt = await waitSubscribed(probe, channels, openTimeout);
    await publisher.call("open", { ...open, listen: false }, openTimeout + 5_000);

    // Every channel live: one event each, all delivered. Then warm-up at the measured rate.
    const each = { cmd: "each", events: channels, concurrency: size.concurrency } as const;
    const first = await round(reader, publisher, 0, each, false, STALL_MS + channels);
    const rate = { cmd: "rate", hz: size.hz, tickMs: size.tickMs } as const;
    const warmup = { ...rate, seconds: size.warmupSeconds };
    const last = await round(reader, publisher, first.run.lastSeq, warmup);

    // Full collections first, in both processes: opening N channels at once leaves garbage that
    // would otherwise be collected during the measured round, which measures the steady state.
    const [readerSettled, publisherSettled] = await Promise.all([
      reader.call("heap", undefined, SHORT_TIMEOUT),
      publisher.call("heap", undefined, SHORT_TIMEOUT),
    ]);
    const reset = { reset: true };
    await Promise.all([
      reader.call("gcStats", reset, SHORT_TIMEOUT),
      publisher.call("gcStats", reset, SHORT_TIMEOUT),
    ]);
    const cpuBefore = await redisCpuMs(probe);
    const measuredRate = { ...rate, seconds: size.seconds };
    const measured = await round(reader, publisher, last.run.lastSeq, measuredRate, true);
    const cpuAfter = await redisCpuMs(probe);
    const [readerGc, publisherGc] = await Promise.all([
      reader.call("gcStats", reset, SHORT_TIMEOUT),
      publisher.call("gcStats", reset, SHORT_TIMEOUT),
    ]);
    const [readerHeap, publisherHeap] = await Promise.all([
      reader.call("heap", undefined, SHORT_TIMEOUT),
      publisher.call("heap", undefined, SHORT_TIMEOUT),
    ]);
    const { report, run } = measured;
    const latency = report.latency;
    if (latency === undefined) throw new Error("no latency samples were taken");
    return {
      delivered: report.received,
      p50: latency.p50,
      p99: latency.p99,
      max: latency.max,
      readerCpuUs: (report.cpuMs * 1000) / report.received,
      redisCpuUs: ((cpuAfter - cpuBefore) * 1000) / report.received,
      subscribeS: (subscribedAt - opened.startedAt) / 1000,
      openS: opened.openMs / 1000,
      liveS: (first.report.doneAt - opened.startedAt) / 1000,
      readerHeapMB: readerHeap.afterMB,
      readerHeapBeforeRoundMB: readerSettled.beforeMB,
      gcMaxMs: Math.max(readerGc.maxMs, publisherGc.maxMs),
      readerGcMs: readerGc.totalMs,
      readerGcMaxMs: readerGc.maxMs,
      publisherHeapMB: publisherHeap.afterMB,
      publisherHeapBeforeRoundMB: publisherSettled.beforeMB,
      publisherGcMs: publisherGc.totalMs,
      publisherGcMaxMs: publisherGc.maxMs,
      gapReads: report.gapReads,
      resets: report.resets,
      publishedPerSec: run.published / ((run.endedAt - run.startedAt) / 1000),
    };
  } finally {
    await Promise.all([reader.kill(), publisher.kill()]);
    probe.destroy();
    await redis.stop();
  }
}

type Publish =
  | { cmd: "each"; events: number; concurrency: number }
  | { cmd: "rate"; hz: number; seconds: number; tickMs: number };

/**
 * The publisher publishes, the reader counts: every event published must arrive once, in order
 * on its channel. Throws, with the counts, otherwise.
 */
async function round(
  reader: ChannelsWorker,
  publisher: ChannelsWorker,
  afterSeq: number,
  publish: Publish,
  latency = false,
  stallMs = STALL_MS,
): Promise<{ run: PublishRun; report: ChannelsReport }> {
  const events = publish.cmd === "each" ? publish.events : Math.round(publish.hz * publish.seconds);
  // Generous: the stall detector catches a stuck reader long before this.
  const timeoutMs = 60_000 + events + (publish.cmd === "rate" ? publish.seconds * 1000 : 0);
  await reader.call("expect", { events, afterSeq, latency }, SHORT_TIMEOUT);
  const sent =
    publish.cmd === "each"
      ? publisher.call("publishEach", { concurrency: publish.concurrency }, timeoutMs)
      : publisher.call(
          "publishRate",
          { hz: publish.hz, seconds: publish.seconds, tickMs: publish.tickMs },
          timeoutMs,
        );
  const waited = reader.call("wait", { timeoutMs, stallMs, graceMs: GRACE_MS }, timeoutMs + 10_000);
  const [run, report] = await Promise.all([sent, waited]);
  const what =
    publish.cmd === "each" ? "one event per channel" : `${publish.seconds} s at the rate`;
  if (run.failed > 0 || run.published !== events) {
    throw new Error(
      `${what}: ${n(run.failed)} of ${n(run.published)} publishes failed: ${run.errors.join("; ")}`,
    );
  }
  const ok =
    report.done &&
    report.received === events &&
    report.stale === 0 &&
    report.outOfOrder === 0 &&
    report.malformed === 0;
  if (!ok) {
    throw new Error(
      `${what}: ${n(report.received)} of ${n(events)} events delivered ` +
        `(${report.stale} stale, ${report.outOfOrder} out of order or repeated, ` +
        `${report.malformed} malformed; ${report.gapReads} gap reads, ${report.resets} resets)` +
        (report.reason === undefined ? "" : `: ${report.reason}`) +
        (report.errors.length === 0 ? "" : `; adapter errors: ${report.errors.join("; ")}`),
    );
  }
  return { run, report };
}

/** What the harness asks Redis (a node-redis client). */
interface Probe {
  sendCommand(args: string[]): Promise<unknown>;
}

/** Waits until Redis counts `channels` shard subscriptions (all clients); resolves with `now()`. */
async function waitSubscribed(probe: Probe, channels: number, timeoutMs: number): Promise<number> {
  const deadline = now() + timeoutMs;
  for (;;) {
    const list = String(await probe.sendCommand(["CLIENT", "LIST"]));
    let subscribed = 0;
    for (const match of list.matchAll(/\bssub=(\d+)/g)) subscribed += Number(match[1]);
    if (subscribed >= channels) return now();
    if (now() > deadline) {
      throw new Error(
        `Redis counts ${n(subscribed)} of ${n(channels)} shard subscriptions after ${timeoutMs} ms`,
      );
    }
    await sleep(POLL_MS);
  }
}

/** Redis's CPU time so far (user + system), in ms. */
async function redisCpuMs(probe: Probe): Promise<number> {
  const info = String(await probe.sendCommand(["INFO", "cpu"]));
  const field = (name: string): number => {
    const value = new RegExp(`^${name}:([0-9.]+)`, "m").exec(info)?.[1];
    if (value === undefined) throw new Error(`INFO cpu has no ${name}`);
    return Number(value);
  };
  return (field("used_cpu_user") + field("used_cpu_sys")) * 1000;
}
