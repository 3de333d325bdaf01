/**
 * Slow consumers: clients that never read share a Channel with healthy ones. Every slow one must
 * be cut off at `maxBufferedBytes` (reason `max-buffered-bytes`), the process must not hold more
 * than that per slow client, the healthy clients must get every event, and their latency must
 * stay close to a control run of the same load with no slow client at all.
 */
import express from "express";
import net, { type AddressInfo, type Socket } from "node:net";
import { Channel, sse, type CloseReason } from "@sluice/express-sse";
import { LatencyHistogram, LoadClient, eventData } from "../src/load-client";
import { collectGarbage, heapUsed } from "../src/memory";
import { record } from "../src/record";
import { resourcesLeftOpen, settledResources } from "../src/resources";
import { scaled } from "../src/scale";
import {
  closeAllServers,
  listen,
  rawRequest,
  sleep,
  waitFor,
} from "../../packages/express-sse/test/helpers/server";

// Short: a tenth of the clients, so that the ~4 MB each never-reading one must be sent before it
// can pass maxBufferedBytes (below) fits in 3 s without saturating the machine.
const HEALTHY = scaled({ full: 900, short: 90 });
const SLOW = scaled({ full: 100, short: 10 });
const SECONDS = scaled({ full: 20, short: 3 });
const EVENT_BYTES = 1024;
const MAX_BUFFERED = 256 * 1024;
const TICK_MS = 50;
/**
 * A client that never reads first fills the kernel's socket buffers; only then does anything
 * queue in the process, where maxBufferedBytes counts. On Linux loopback the kernel takes ~4 MB
 * per connection (the send buffer grows to tcp_wmem's maximum), so a never-reading client is cut
 * off only once ~4 MB + maxBufferedBytes were sent to it. The publish rate is derived from that,
 * measured on this machine at the start of the case (`kernelBuffering`), so that slow clients
 * pass the bound at DROP_AT of the run: full, ~350 KB/s per client (x 1,000 clients), dropped
 * after ~12 s of 20; short, ~2.3 MB/s with a tenth of the clients, dropped after ~1.8 s of 3.
 */
const DROP_AT = 0.6;

afterAll(closeAllServers);

interface RunResult {
  latency: LatencyHistogram;
  /** Peak of heapUsed + arrayBuffers while publishing, minus the same after GC just before. */
  growth: number;
  lost: number;
  duplicates: number;
  resets: number;
  /** Healthy clients whose connection the server closed. */
  healthyCutOff: number;
  reasons: Record<string, Partial<Record<CloseReason, number>>>;
  dropTimes: number[];
  droppedByMiddleware: number;
  droppedByChannel: number;
}

/**
 * Bytes the kernel accepts on a loopback connection whose peer never reads, before a write has
 * to wait in the process (a probe connection to a throwaway server).
 */
async function kernelBuffering(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const accepted = new Promise<Socket>((resolve) => server.once("connection", resolve));
  const peer = net.connect((server.address() as AddressInfo).port, "127.0.0.1");
  peer.pause(); // never reads
  const socket = await accepted;
  const chunk = Buffer.alloc(64 * 1024, 120);
  let written = 0;
  try {
    // Bounded: 2,000 x 64 KiB = 128 MiB, far above any kernel's per-socket buffers.
    for (let i = 0; i < 2000; i++) {
      socket.write(chunk);
      written += chunk.length;
      await new Promise((resolve) => setImmediate(resolve));
      if (socket.writableLength === 0) continue;
      await sleep(20); // the kernel may still take some: wait until it has stopped
      if (socket.writableLength > 0) return written - socket.writableLength;
    }
    throw new Error(`the kernel took all of ${written} bytes for a peer that never reads`);
  } finally {
    socket.destroy();
    peer.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** JS memory the process holds: the heap plus Buffers (queued frames are Buffers). */
function jsMemory(): number {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

test(`${HEALTHY} healthy + ${SLOW} never-reading clients: slow ones dropped at maxBufferedBytes, healthy ones unaffected`, async () => {
  await collectGarbage();
  const kernelBytes = await kernelBuffering();
  const bytesPerSecond = (kernelBytes + MAX_BUFFERED) / (DROP_AT * SECONDS);
  const perTick = Math.ceil((bytesPerSecond * TICK_MS) / 1000 / EVENT_BYTES);
  const ticks = (SECONDS * 1000) / TICK_MS;
  const total = ticks * perTick;
  /** Bytes of one tick's write to one client: the batch of perTick events, framed. */
  const tickBytes = perTick * (EVENT_BYTES + 16);

  const resourcesBefore = await settledResources();

  const middleware = sse({ maxBufferedBytes: MAX_BUFFERED });
  const channel = new Channel("slow-consumers", { history: { max: 100 } });
  let reasons: Record<string, Partial<Record<CloseReason, number>>> = {};
  /** Seconds from the first publish to each slow client's drop. */
  let dropTimes: number[] = [];
  let started = 0;
  const app = express();
  app.use(middleware);
  app.get("/s/:kind", (req, res) => {
    const kind = String(req.params["kind"]);
    res.sse.onClose((reason) => {
      const counts = (reasons[kind] ??= {});
      counts[reason.type] = (counts[reason.type] ?? 0) + 1;
      if (reason.type === "max-buffered-bytes")
        dropTimes.push((performance.now() - started) / 1000);
    });
    void channel.subscribe(res);
  });
  const { port, close } = await listen(app);

  /** Opens the clients, publishes total events at a steady pace, then closes everything. */
  const run = async (slowCount: number, runTicks = ticks): Promise<RunResult> => {
    reasons = {};
    dropTimes = [];
    const expected = runTicks * perTick;
    const middlewareDropsBefore = middleware.stats().slowClientsDropped;
    const channelDropsBefore = channel.stats().slowClientsDropped;
    const latency = new LatencyHistogram();
    const healthy: LoadClient[] = [];
    const slow: Socket[] = [];
    let sampler: NodeJS.Timeout | undefined;
    try {
      for (let i = 0; i < HEALTHY; i++) {
        healthy.push(new LoadClient(port, "/s/healthy", { latency }));
      }
      for (let i = 0; i < slowCount; i++) {
        slow.push(await rawRequest(port, "/s/slow", { paused: true }));
      }
      await Promise.all(healthy.map((client) => client.opened));
      await waitFor(() => channel.size === HEALTHY + slowCount, {
        what: `${HEALTHY + slowCount} subscribers`,
        timeout: 30_000,
      });

      await collectGarbage();
      const base = jsMemory();
      let peak = base;
      sampler = setInterval(() => (peak = Math.max(peak, jsMemory())), 50);
      started = performance.now();
      let seq = 0;
      for (let tick = 0; tick < runTicks; tick++) {
        // Steady: tick k at k x TICK_MS; a late one runs at once, but always in a task of its
        // own, so that a late loop never merges ticks into one bigger write.
        await sleep(Math.max(0, started + tick * TICK_MS - performance.now()));
        // One synchronous run: the channel writes the tick's events to each client in one write.
        for (let i = 0; i < perTick; i++) void channel.publish(eventData(seq++, EVENT_BYTES));
      }
      await waitFor(() => healthy.every((client) => client.events >= expected || client.ended), {
        what: "every healthy client to receive every event",
        timeout: 60_000,
      }).catch(() => undefined); // counted as lost below
      clearInterval(sampler);
      peak = Math.max(peak, jsMemory());
      await sleep(50); // a duplicate would arrive now

      return {
        latency,
        growth: peak - base,
        lost: healthy.reduce((sum, c) => sum + expected - (c.events - c.duplicates), 0),
        duplicates: healthy.reduce((sum, client) => sum + client.duplicates, 0),
        resets: healthy.reduce((sum, client) => sum + client.resets, 0),
        healthyCutOff: healthy.filter((client) => client.ended).length,
        reasons,
        dropTimes,
        droppedByMiddleware: middleware.stats().slowClientsDropped - middlewareDropsBefore,
        droppedByChannel: channel.stats().slowClientsDropped - channelDropsBefore,
      };
    } finally {
      clearInterval(sampler);
      for (const client of healthy) client.close();
      for (const socket of slow) socket.destroy();
      await waitFor(() => channel.size === 0 && middleware.streams.size === 0, {
        what: "every stream to close",
        timeout: 10_000,
      });
    }
  };

  // A warm-up of a fifth of the run, not measured: the control runs first, and would otherwise
  // pay for the JIT and first-use allocations alone, in the slow run's favour (heapBefore, too,
  // is taken after it).
  await run(0, Math.ceil(ticks / 5));
  const heapBefore = await heapUsed();
  // Control first: the same load with no slow client, for the latency and memory baselines.
  const control = await run(0);
  const withSlow = await run(SLOW);

  await channel.close();
  await close();
  const heapAfter = await heapUsed();
  const leftOpen = await resourcesLeftOpen(resourcesBefore);

  const controlP99 = control.latency.percentile(99);
  const slowP99 = withSlow.latency.percentile(99);
  // Healthy clients' p99 with slow ones beside them may be at most twice the control's. Server
  // and clients share this process's one event loop on 2 cores, so latency is mostly the time
  // to write a tick to every client and then read it back in every client (tens of ms at full
  // scale, measured). Should a control p99 come out tiny (a faster machine), doubling 2 ms is
  // scheduling noise, not a finding: below 5 ms the bound is control + 5 ms instead. The short
  // setting (CI) runs 3 s: its p99 is a handful of samples, which one GC pause or a neighbour
  // process moves by tens of ms (a clean run here: 41.7 ms control, 73.8 ms with slow clients),
  // so there the slack is 50 ms; the full run judges the 2x. What the check is for still fails
  // it by far: a channel that let a slow client hold up the others would delay healthy clients
  // until the slow ones were cut off, 1.8 s into the run.
  const latencyBound = Math.max(2 * controlP99, controlP99 + scaled({ full: 5, short: 50 }));
  // Memory: each slow client may hold at most maxBufferedBytes plus the write that passed it
  // (the documented bound, counted as if nothing were shared; the channel actually writes one
  // shared frame to all clients, so the real cost is lower). On top of that, whatever the same
  // load costs without slow clients (the control's own growth: frames in flight, socket reads,
  // parsing garbage), and a margin because the samples are taken without forcing a collection:
  // how much garbage a sample catches depends on when the last one ran (the young generation
  // alone holds up to 16 MiB of it, and old-space garbage waits for the next full collection).
  // 16 MiB at full scale; 32 MiB in the short run, whose 3 s catch fewer collections (a clean
  // run here: +61.2 MB with slow clients, +47.8 MB control). The full run is where this bound
  // judges: a slow client never cut off would queue what the kernel does not take of its share
  // of the run (about 3 MB each, hundreds of MB for a hundred), and a queue copied per client
  // would multiply the frames. In the short run, ten such clients are within the noise; there
  // the drop counts asserted below catch a client never cut off.
  const slack = scaled({ full: 2 ** 24, short: 2 ** 25 });
  const memoryBound = SLOW * (MAX_BUFFERED + tickBytes) + Math.max(0, control.growth) + slack;
  const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
  const dropSpan =
    withSlow.dropTimes.length === 0
      ? "-"
      : `${Math.min(...withSlow.dropTimes).toFixed(1)}-${Math.max(...withSlow.dropTimes).toFixed(1)} s`;

  record({
    case: "slow consumers",
    load: `${HEALTHY} healthy + ${SLOW} never-reading clients x ${total.toLocaleString("en-US")} 1 KB events over ${SECONDS} s (${mb(bytesPerSecond)}/s each)`,
    faults: SLOW,
    badInputs: 0,
    lost: control.lost + withSlow.lost,
    heapBefore,
    heapAfter,
    notes:
      `${withSlow.droppedByChannel}/${SLOW} slow dropped after ${dropSpan} (the kernel took ${mb(kernelBytes)} of each first); ` +
      `p99 ${controlP99} ms control vs ` +
      `${slowP99} ms with slow; peak memory +${mb(withSlow.growth)} (control +${mb(control.growth)}, bound ${mb(memoryBound)})`,
  });

  for (const result of [control, withSlow]) {
    expect(result.healthyCutOff).toBe(0);
    expect(result.lost).toBe(0);
    expect(result.duplicates).toBe(0);
    expect(result.resets).toBe(0);
    // Healthy streams were only ever closed by their own client.
    expect(result.reasons["healthy"]).toEqual({ "client-disconnected": HEALTHY });
  }
  expect(control.droppedByMiddleware).toBe(0);
  expect(withSlow.reasons["slow"]).toEqual({ "max-buffered-bytes": SLOW });
  expect(withSlow.droppedByMiddleware).toBe(SLOW);
  expect(withSlow.droppedByChannel).toBe(SLOW);
  expect(slowP99).toBeLessThanOrEqual(latencyBound);
  expect(withSlow.growth).toBeLessThan(memoryBound);
  expect(channel.size).toBe(0);
  expect(middleware.streams.size).toBe(0);
  expect(leftOpen).toBe("");
});
