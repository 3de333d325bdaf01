/**
 * Child process of the channel-count sweep (scenarios/redis-channels.ts): one Redis adapter
 * (`@sluice/redis`, as an app creates it), used either as the reader — N channels open, each with
 * a listener and active, as a `Channel` with one subscriber makes it — or as the publisher, which
 * publishes the bench payload (its publish time and a sequence number) to those channels.
 *
 * The reader works at the adapter level, not through `Channel`s with HTTP subscribers: 100,000
 * channels with one subscriber each would need 100,000 sockets. What a `Channel` does for its first
 * subscriber is exactly `listen()` + `setActive(true)` on its adapter channel, which this does.
 */
import type { AdapterChannel, AdapterEvent, AdapterChannelOptions } from "@sluice/express-sse";
import { createRedisAdapter } from "@sluice/redis";
import { PerformanceObserver } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { percentile } from "./measure";
import { makePayload, now } from "./payload";
import type { ChannelsCommands, ChannelsReport, GcStats, PublishRun } from "./protocol";
import { serve } from "./rpc";

/** A channel's default history (`Channel` resolves `{}` to this). */
const HISTORY: AdapterChannelOptions["history"] = {
  max: 1000,
  maxBytes: 4 * 1024 * 1024,
  maxAge: Infinity,
};
const MAX_ERRORS = 10;

function channelName(i: number): string {
  return `bench-${i}`;
}

type Adapter = ReturnType<typeof createRedisAdapter>;

let adapter: Adapter | undefined;
let channels: AdapterChannel[] = [];
/** Adapter errors since the last `expect` (reader) or publish command (publisher). */
let errors: string[] = [];
let errorsPrinted = 0;

// GC pauses (every kind): what a large heap of open channels costs in latency.
const gc = { pauses: 0, totalMs: 0, maxMs: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gc.pauses++;
    gc.totalMs += entry.duration;
    gc.maxMs = Math.max(gc.maxMs, entry.duration);
  }
}).observe({ entryTypes: ["gc"] });

// --- reader ---------------------------------------------------------------------------------------

interface Round {
  expected: number;
  afterSeq: number;
  received: number;
  stale: number;
  outOfOrder: number;
  malformed: number;
  latencies: Float64Array | undefined;
  cpuStart: NodeJS.CpuUsage;
  cpuMs: number;
  doneAt: number;
  lastEventAt: number;
  gapReads: number;
  resets: number;
  onDone: (() => void) | undefined;
}

let round: Round | undefined;
/** Events that arrived while no round was open: counted as stale in the next one. */
let strays = 0;
/** The highest `seq` delivered on each channel: it must only go up. */
let lastSeq = new Float64Array(0);

function onEvent(index: number, event: AdapterEvent): void {
  const r = round;
  if (r === undefined) {
    strays++;
    return;
  }
  r.lastEventAt = now();
  // The payload is `{"t":<publish time>,"seq":<n>,"msg":…}` (payload.ts): read both numbers
  // without parsing the whole of it, so the reader's CPU is the adapter's.
  const data = event.data;
  const comma = data.indexOf(",");
  const seqEnd = data.indexOf(",", comma + 1);
  const t = Number(data.slice(5, comma));
  const seq = Number(data.slice(comma + 7, seqEnd));
  if (!data.startsWith('{"t":') || !Number.isFinite(t) || !Number.isInteger(seq)) {
    r.malformed++;
    return;
  }
  if (seq <= (lastSeq[index] as number)) {
    r.outOfOrder++;
    return;
  }
  lastSeq[index] = seq;
  if (seq <= r.afterSeq) {
    r.stale++;
    return;
  }
  if (r.latencies !== undefined && r.received < r.latencies.length) {
    r.latencies[r.received] = r.lastEventAt - t;
  }
  r.received++;
  if (r.received === r.expected) {
    r.doneAt = r.lastEventAt;
    const cpu = process.cpuUsage(r.cpuStart);
    r.cpuMs = (cpu.user + cpu.system) / 1000;
    r.onDone?.();
  }
}

function counter(name: "gapReads" | "resets"): number {
  const value = (adapter?.stats() as Partial<Record<string, unknown>> | undefined)?.[name];
  return typeof value === "number" ? value : NaN;
}

function report(r: Round, done: boolean, reason: string | undefined): ChannelsReport {
  let latency: ChannelsReport["latency"];
  if (r.latencies !== undefined && r.received > 0) {
    const taken = r.latencies.subarray(0, Math.min(r.received, r.latencies.length));
    const sorted = Array.from(taken).sort((a, b) => a - b);
    latency = {
      samples: sorted.length,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      max: sorted[sorted.length - 1] as number,
    };
  }
  return {
    done,
    reason,
    expected: r.expected,
    received: r.received,
    stale: r.stale,
    outOfOrder: r.outOfOrder,
    malformed: r.malformed,
    doneAt: r.doneAt,
    cpuMs: r.cpuMs,
    latency,
    gapReads: counter("gapReads") - r.gapReads,
    resets: counter("resets") - r.resets,
    errors: [...errors],
  };
}

// --- publisher ------------------------------------------------------------------------------------

let seq = 0;

function newRun(): PublishRun {
  return {
    published: 0,
    failed: 0,
    firstSeq: seq + 1,
    lastSeq: seq,
    startedAt: now(),
    endedAt: 0,
    errors: [],
  };
}

/** Publishes the next payload on `channel`, as `Channel#publish(object)` hands it to its adapter. */
function publishOne(channel: AdapterChannel, run: PublishRun): Promise<void> {
  const payload = makePayload(++seq);
  run.lastSeq = seq;
  run.published++;
  return channel
    .publish({ event: undefined, data: JSON.stringify(payload), value: payload, serialized: true })
    .then(
      () => undefined,
      (err: unknown) => {
        run.failed++;
        if (run.errors.length < MAX_ERRORS) {
          run.errors.push(err instanceof Error ? err.message : String(err));
        }
      },
    );
}

function pick(): AdapterChannel {
  return channels[Math.floor(Math.random() * channels.length)] as AdapterChannel;
}

function finish(run: PublishRun): PublishRun {
  run.endedAt = now();
  for (const message of errors) {
    if (run.errors.length < MAX_ERRORS) run.errors.push(`adapter: ${message}`);
  }
  errors = [];
  return run;
}

// --- commands -------------------------------------------------------------------------------------

serve<ChannelsCommands>({
  async open({ url, channels: n, listen }) {
    if (adapter !== undefined) throw new Error("already open");
    const created = createRedisAdapter({ url });
    adapter = created;
    created.on("error", (err: Error) => {
      if (errors.length < MAX_ERRORS) errors.push(err.message);
      if (errorsPrinted++ < MAX_ERRORS) console.error(`channels-worker: redis: ${err.message}`);
    });
    await created.ready();
    lastSeq = new Float64Array(n);
    const startedAt = now();
    const opened: AdapterChannel[] = new Array<AdapterChannel>(n);
    for (let i = 0; i < n; i++) {
      const channel = created.open(channelName(i), { history: HISTORY });
      if (listen) {
        channel.listen((event) => onEvent(i, event));
        channel.setActive?.(true);
      }
      opened[i] = channel;
    }
    channels = opened;
    return { startedAt, openMs: now() - startedAt };
  },

  expect({ events, afterSeq, latency }) {
    if (round !== undefined && round.onDone !== undefined) throw new Error("a round is running");
    errors = [];
    round = {
      expected: events,
      afterSeq,
      received: 0,
      stale: strays,
      outOfOrder: 0,
      malformed: 0,
      latencies: latency ? new Float64Array(events) : undefined,
      cpuStart: process.cpuUsage(),
      cpuMs: 0,
      doneAt: 0,
      lastEventAt: now(),
      gapReads: counter("gapReads"),
      resets: counter("resets"),
      onDone: undefined,
    };
    strays = 0;
    return undefined;
  },

  async wait({ timeoutMs, stallMs, graceMs }) {
    const r = round;
    if (r === undefined) throw new Error("wait without expect");
    const deadline = now() + timeoutMs;
    let reason: string | undefined;
    if (r.received < r.expected) {
      reason = await new Promise<string | undefined>((resolve) => {
        const check = setInterval(() => {
          const t = now();
          if (t > deadline) end(`not all events arrived within ${timeoutMs} ms`);
          else if (t - r.lastEventAt > stallMs) end(`no event for ${stallMs} ms`);
        }, 100);
        const end = (why: string | undefined): void => {
          clearInterval(check);
          r.onDone = undefined;
          resolve(why);
        };
        r.onDone = () => end(undefined);
      });
    }
    // Keep counting a little: duplicates and extra events show up too.
    await sleep(graceMs);
    const done = reason === undefined && r.received === r.expected;
    const result = report(r, done, reason);
    round = undefined;
    return result;
  },

  async publishEach({ concurrency }) {
    const run = newRun();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < channels.length) {
        await publishOne(channels[next++] as AdapterChannel, run);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, channels.length) }, worker));
    return finish(run);
  },

  gcStats({ reset }) {
    const stats: GcStats = { ...gc };
    if (reset) Object.assign(gc, { pauses: 0, totalMs: 0, maxMs: 0 });
    return stats;
  },

  async heap() {
    const collect = globalThis.gc;
    if (collect === undefined) throw new Error("the channels worker must run with --expose-gc");
    const beforeMB = process.memoryUsage().heapUsed / 2 ** 20;
    for (let i = 0; i < 2; i++) {
      collect();
      await new Promise((resolve) => setImmediate(resolve));
    }
    return { beforeMB, afterMB: process.memoryUsage().heapUsed / 2 ** 20 };
  },

  async publishRate({ hz, seconds, tickMs }) {
    const total = Math.round(hz * seconds);
    const run = newRun();
    // Publishes in flight are counted, not kept: holding every promise of the run would make this
    // process's young-generation collections (and so the delay of the events they hold up) grow
    // with the run, which is the harness's cost, not the adapter's.
    let inFlight = 0;
    let allSettled: (() => void) | undefined;
    const settle = (): void => {
      if (--inFlight === 0) allSettled?.();
    };
    const start = run.startedAt;
    let sent = 0;
    while (sent < total) {
      // Everything due by now: the first event at once, then `hz` per second.
      const due = Math.min(total, Math.floor(((now() - start) * hz) / 1000) + 1);
      for (; sent < due; sent++) {
        inFlight++;
        void publishOne(pick(), run).then(settle);
      }
      if (sent < total) await sleep(tickMs);
    }
    if (inFlight > 0) await new Promise<void>((resolve) => (allSettled = resolve));
    return finish(run);
  },
});
