/**
 * Disconnects the polite way never tests: clients that reset the connection (RST) in the middle
 * of a frame, and clients that vanish without a FIN at all.
 *
 * (a) Abrupt: thousands of clients subscribed to one Channel reset their connection while a
 *     512 KB burst (two 256 KB events) is being written to them, or at a random byte of a stream
 *     of events. The server never throws, every stream closes with `client-disconnected`, the
 *     middleware and the channel go back to their witnesses only, and the witnesses (healthy
 *     clients on the same channel) receive every event.
 * (b) Half-open: a client behind a TCP proxy that "vanishes" (the proxy drops its client side and
 *     stops forwarding, leaving the server's socket open and silent: no FIN). The server only
 *     learns of it by writing: the heartbeat's write reaches the proxy, which answers with RST as
 *     a peer host that lost the connection does. The stream must be released within about one
 *     heartbeat interval; with heartbeats off (the negative control) it stays open.
 */
import express from "express";
import net from "node:net";
import vm from "node:vm";
import { Channel, Frame, sse, type SseStream } from "@sluice/express-sse";
import { heapUsed } from "../src/memory";
import { record } from "../src/record";
import { scaled } from "../src/scale";
import {
  closeAllServers,
  listen,
  sleep,
  waitFor,
} from "../../packages/express-sse/test/helpers/server";
import { WireClient, requestHead, within } from "../src/sse-wire";

const VICTIMS = scaled({ full: 2_000, short: 200 });
const PARALLEL = 25;
const WITNESSES = 3;
const VANISHED = scaled({ full: 500, short: 50 });
const VANISH_PARALLEL = 25;
const HEARTBEAT = 200;
/** Streams of the negative control (heartbeat off). */
const CONTROLS = 5;

const BIG = Frame.event("x".repeat(256 * 1024), { event: "big" });

/** What a test started, released after it whether it passed or not (each step idempotent). */
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const step of cleanups.splice(0).reverse()) await step();
});
afterAll(closeAllServers);

/**
 * Uncaught exceptions and unhandled rejections, from the real process: jest gives the test file
 * a copy of `process` whose listeners never fire, so the watcher is installed on the real one
 * (jest also fails the running test on them; this makes the count explicit).
 */
function watchProcess(): { errors: string[]; stop(): void } {
  const real = vm.runInThisContext("process") as NodeJS.Process;
  const errors: string[] = [];
  const onError = (err: unknown) =>
    errors.push(err instanceof Error ? (err.stack ?? "") : String(err));
  real.on("uncaughtException", onError);
  real.on("unhandledRejection", onError);
  return {
    errors,
    stop() {
      real.off("uncaughtException", onError);
      real.off("unhandledRejection", onError);
    },
  };
}

const random = (min: number, max: number) => min + Math.floor(Math.random() * (max - min));

test(`(a) ${VICTIMS.toLocaleString("en-US")} clients reset mid-frame: no throw, all released, witnesses get every event`, async () => {
  const watcher = watchProcess();
  cleanups.push(() => watcher.stop());
  // Raised from 1 MiB so that a stalled victim is reset mid-burst, not cut as too slow first
  // (that path has its own case).
  const middleware = sse({ heartbeat: 1000, maxBufferedBytes: 16 * 2 ** 20 });
  const channel = new Channel("disconnects", { history: { max: 100 } });
  cleanups.push(() => channel.close());
  const app = express();
  const waiting = new Map<string, (stream: SseStream) => void>();
  const reasons = new Map<string, string>();
  app.get("/s", middleware, (req, res) => {
    const who = new URL(req.url ?? "/", "http://x").searchParams.get("who") ?? "";
    res.sse.onClose((reason) => reasons.set(who, reason.type));
    void channel.subscribe(res).then(() => waiting.get(who)?.(res.sse));
  });
  const { port } = await listen(app);
  const open = async (who: string) => {
    const handed = new Promise<SseStream>((resolve) => waiting.set(who, resolve));
    const client = await WireClient.open(port, requestHead(port, `/s?who=${who}`));
    const stream = await within(handed, 5_000, `${who}'s stream`);
    waiting.delete(who);
    return { client, stream };
  };

  // Witnesses: healthy subscribers for the whole run. A publisher keeps the channel busy, so
  // fan-out writes keep hitting the sockets that are being reset.
  const witnesses = await Promise.all(
    Array.from({ length: WITNESSES }, (_, i) => open(`witness-${i}`)),
  );
  cleanups.push(() => Promise.all(witnesses.map((w) => w.client.close())));
  const published: Array<{ id: string; data: string }> = [];
  let publishing = true;
  const publisher = (async () => {
    for (let seq = 0; publishing; seq++) {
      const data = JSON.stringify({ seq, pad: "p".repeat(seq % 300) });
      published.push({ id: await channel.publish(data), data });
      await sleep(2);
    }
  })();
  const stopPublishing = async () => {
    publishing = false;
    await publisher;
  };
  cleanups.push(stopPublishing);

  let queuedAtReset = 0;
  let sendThrew = 0;
  let fallbacks = 0;
  let bigVictims = 0;
  /** One client: opens, receives, resets (RST) at a random point, and is released. */
  const victim = async (n: number) => {
    const who = `v${n}`;
    const big = n % 2 === 0;
    // Half of the burst victims stop reading at their point and reset a moment later, as a
    // stalled client would, in a 6 MB burst: loopback's kernel buffers take about 4 MB of it, so
    // the rest is still queued in the process when the RST lands.
    const stall = n % 4 === 0;
    if (big) bigVictims++;
    const { client, stream } = await open(who);
    const socket = client.socket;
    let reset = false;
    const rst = () => {
      if (reset) return;
      reset = true;
      if (stream.bufferedBytes > 0) queuedAtReset++;
      socket.resetAndDestroy();
    };
    // Big: somewhere inside the first two 256 KB events. Random: in a stream of small events.
    const rstAt = client.bodyBytes + (big ? random(1_000, 2 * BIG.byteLength) : random(1, 100_000));
    socket.on("data", () => {
      if (client.bodyBytes < rstAt || reset) return;
      if (!stall) return rst();
      socket.pause();
      setTimeout(rst, random(1, 10));
    });
    const fallback = setTimeout(() => {
      fallbacks++;
      rst();
    }, 5_000);
    if (big) {
      for (let i = stall ? 24 : 2; i > 0; i--) stream.sendFrame(BIG);
    } else {
      // A stream of events of random sizes, with turns of the event loop in between, until the
      // client goes; sending to a closed stream must return false, never throw.
      setTimeout(rst, random(0, 30));
      for (let i = 0; i < 2_000 && !stream.closed; i++) {
        try {
          stream.send(`${i} ${"y".repeat(random(0, 2_000))}`, { id: String(i) });
        } catch {
          sendThrew++;
        }
        if (i % 10 === 9) await new Promise((resolve) => setImmediate(resolve));
      }
    }
    await within(client.whenClosed(), 10_000, `${who}'s socket to close`);
    clearTimeout(fallback);
    await waitFor(() => stream.closed, { what: `${who} to be released` });
    try {
      if (stream.send("after close") !== false) sendThrew++;
    } catch {
      sendThrew++;
    }
  };

  let heapBefore = 0;
  for (let done = 0; done < VICTIMS; done += PARALLEL) {
    await Promise.all(
      Array.from({ length: Math.min(PARALLEL, VICTIMS - done) }, (_, i) => victim(done + i)),
    );
    // After the first batch (JIT, socket pools), as the churn case does after its warm-up.
    if (done === 0) heapBefore = await heapUsed();
  }
  await stopPublishing();

  await waitFor(() => middleware.streams.size === WITNESSES && channel.size === WITNESSES, {
    what: "only the witnesses left",
  }).catch(() => undefined);
  const leftDuring = { streams: middleware.streams.size, subscribers: channel.size };
  await waitFor(() => witnesses.every((w) => w.client.events.length >= published.length), {
    what: "every event at every witness",
    timeout: 10_000,
  }).catch(() => undefined);
  const lost = witnesses.reduce(
    (sum, w) => sum + Math.max(0, published.length - w.client.events.length),
    0,
  );
  for (const w of witnesses) {
    expect(w.client.problems).toEqual([]);
    expect(w.client.events.map(({ id, data }) => ({ id, data }))).toEqual(published);
    await w.client.close();
  }
  await waitFor(() => middleware.streams.size === 0 && channel.size === 0, {
    what: "every stream to close",
  });
  await channel.close();
  watcher.stop();
  const heapAfter = await heapUsed();

  const byReason: Record<string, number> = {};
  for (const [who, reason] of reasons) {
    if (who.startsWith("v")) byReason[reason] = (byReason[reason] ?? 0) + 1;
  }
  record({
    case: "abrupt disconnects (RST)",
    load: `${VICTIMS.toLocaleString("en-US")} clients reset (${bigVictims.toLocaleString("en-US")} inside 256 KB events), ${WITNESSES} witnesses x ${published.length.toLocaleString("en-US")} events`,
    faults: VICTIMS,
    badInputs: 0,
    lost,
    heapBefore,
    heapAfter,
    notes: `${queuedAtReset.toLocaleString("en-US")} RSTs hit writes still queued in the process; close reasons ${JSON.stringify(byReason)}`,
  });
  expect(watcher.errors).toEqual([]);
  expect(byReason).toEqual({ "client-disconnected": VICTIMS });
  expect(leftDuring).toEqual({ streams: WITNESSES, subscribers: WITNESSES });
  expect({ sendThrew, fallbacks }).toEqual({ sendThrew: 0, fallbacks: 0 });
  expect(lost).toBe(0);
  // The stalled quarter must really have reset with writes pending (else the case proves less).
  expect(queuedAtReset).toBeGreaterThan(0);
});

// ---------------------------------------------------------------------------------------------
// (b) Half-open connections.

/** One connection through the proxy. */
interface Pipe {
  readonly downstream: net.Socket;
  readonly upstream: net.Socket;
  /** The client side was dropped and forwarding stopped. */
  vanished: boolean;
  vanishedAt: number;
  /** When the server writes to a vanished pipe: RST (a host that lost the connection) or nothing. */
  onWrite: "reset" | "black-hole";
  /** Bytes the server wrote after the pipe vanished. */
  afterVanish: string;
  reset: boolean;
}

/**
 * A TCP proxy that can make a connection vanish: it destroys its client side, stops forwarding
 * and leaves the server's socket open, silent (no FIN). A host that lost the connection answers
 * the next segment it gets with RST, so the proxy resets the server's socket when the server next
 * writes (`onWrite: "reset"`). A black hole (`onWrite: "black-hole"`) never answers: the proxy
 * stops reading, so the server's writes pile up as they would against a peer that never ACKs.
 */
class VanishingProxy {
  readonly pipes = new Map<number, Pipe>();
  resets = 0;
  private constructor(
    readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(target: number): Promise<VanishingProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const proxy = new VanishingProxy(server, (server.address() as net.AddressInfo).port);
    server.on("connection", (downstream) => proxy._accept(downstream, target));
    return proxy;
  }

  /** The pipe of a client, by the client socket's local port. */
  async pipeOf(client: net.Socket): Promise<Pipe> {
    await waitFor(() => this.pipes.has(client.localPort ?? -1), { what: "the proxy's pipe" });
    return this.pipes.get(client.localPort ?? -1)!;
  }

  vanish(pipe: Pipe, onWrite: Pipe["onWrite"]): void {
    pipe.vanished = true;
    pipe.vanishedAt = performance.now();
    pipe.onWrite = onWrite;
    pipe.downstream.destroy();
    if (onWrite === "black-hole") pipe.upstream.pause();
  }

  /** Closes every pipe and the listener. Safe to call twice. */
  async close(): Promise<void> {
    for (const pipe of this.pipes.values()) {
      pipe.downstream.destroy();
      pipe.upstream.destroy();
    }
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private _accept(downstream: net.Socket, target: number): void {
    const upstream = net.connect(target, "127.0.0.1");
    const pipe: Pipe = {
      downstream,
      upstream,
      vanished: false,
      vanishedAt: 0,
      onWrite: "reset",
      afterVanish: "",
      reset: false,
    };
    this.pipes.set(downstream.remotePort ?? -1, pipe);
    downstream.on("error", () => undefined);
    upstream.on("error", () => undefined);
    downstream.on("data", (chunk: Buffer) => {
      if (!pipe.vanished) upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (!pipe.vanished) {
        downstream.write(chunk);
        return;
      }
      pipe.afterVanish += chunk.toString("latin1");
      if (pipe.onWrite === "reset" && !pipe.reset) {
        pipe.reset = true;
        this.resets++;
        upstream.resetAndDestroy();
      }
    });
    // A normal close on either side is passed on while the pipe is alive; a vanished pipe tells
    // the server nothing.
    downstream.on("close", () => {
      if (!pipe.vanished) upstream.destroy();
    });
    upstream.on("close", () => {
      if (!pipe.vanished) downstream.destroy();
    });
  }
}

/*
 * What a truly black-holed peer does (a host powered off, a NAT entry dropped, a cable pulled:
 * no RST ever): the heartbeat's write succeeds locally, the kernel queues it and retransmits with
 * exponential backoff for about 15 minutes (Linux tcp_retries2 = 15, ~924 s) before it gives up
 * with ETIMEDOUT, and TCP keep-alive (off by default, 2 h when on) does not help sooner. Meanwhile
 * every write piles up: first in the kernel's send buffer, then in the process. A stream that
 * only gets heartbeats piles up ~9 bytes a ping and would be held for those 15 minutes; a stream
 * the application keeps writing to is cut by `maxBufferedBytes` (reason `max-buffered-bytes`) as
 * soon as its queue in the process passes the bound. The last part of this test emulates that
 * with a proxy that stops reading and never answers.
 */
test(`(b) ${VANISHED.toLocaleString("en-US")} half-open clients are found by the heartbeat and released; heartbeat 0 keeps them`, async () => {
  const watcher = watchProcess();
  cleanups.push(() => watcher.stop());
  const heartbeat = sse({ heartbeat: HEARTBEAT });
  const quiet = sse({ heartbeat: 0 });
  const pumped = sse({ heartbeat: HEARTBEAT, maxBufferedBytes: 256 * 1024 });
  const channel = new Channel("half-open");
  cleanups.push(() => channel.close());
  const app = express();
  const waiting = new Map<string, (stream: SseStream) => void>();
  const closedAt = new Map<string, number>();
  const handler = (req: express.Request, res: express.Response) => {
    const who = String(req.query["who"]);
    res.sse.onClose(() => closedAt.set(who, performance.now()));
    void channel.subscribe(res).then(() => waiting.get(who)?.(res.sse));
  };
  app.get("/hb", heartbeat, handler);
  app.get("/quiet", quiet, handler);
  app.get("/pumped", pumped, handler);
  const { port } = await listen(app);
  const proxy = await VanishingProxy.start(port);
  cleanups.push(() => proxy.close());
  const heapBefore = await heapUsed();

  /** Opens a stream through the proxy and waits until its first frame reached the client. */
  const openThrough = async (path: string, who: string) => {
    const handed = new Promise<SseStream>((resolve) => waiting.set(who, resolve));
    const client = await WireClient.open(proxy.port, requestHead(proxy.port, `${path}?who=${who}`));
    const stream = await within(handed, 5_000, `${who}'s stream`);
    waiting.delete(who);
    await waitFor(() => client.comments.length > 0, { what: `${who}'s first frame` });
    return { client, stream, pipe: await proxy.pipeOf(client.socket) };
  };

  // Vanishing clients, a batch at a time: each must be released about one heartbeat after it
  // vanished (pings go to streams idle for `heartbeat` ms, checked every heartbeat/4: so at most
  // 1.25 x heartbeat after the last write, plus the RST's round trip).
  const releaseMs: number[] = [];
  const misses: string[] = [];
  for (let done = 0; done < VANISHED; done += VANISH_PARALLEL) {
    await Promise.all(
      Array.from({ length: Math.min(VANISH_PARALLEL, VANISHED - done) }, async (_, i) => {
        const who = `gone-${done + i}`;
        const { stream, pipe } = await openThrough("/hb", who);
        proxy.vanish(pipe, "reset");
        await waitFor(() => stream.closed, {
          what: `${who} released`,
          timeout: 5 * HEARTBEAT,
        }).catch(() => undefined);
        const released = closedAt.get(who);
        if (released === undefined)
          misses.push(`${who}: still open ${5 * HEARTBEAT} ms after vanishing`);
        else releaseMs.push(released - pipe.vanishedAt);
        if (stream.closeReason !== undefined && stream.closeReason.type !== "client-disconnected") {
          misses.push(`${who}: closed with ${stream.closeReason.type}`);
        }
        if (!pipe.afterVanish.includes(": ping\n")) {
          misses.push(`${who}: the proxy saw ${JSON.stringify(pipe.afterVanish)}, not a ping`);
        }
      }),
    );
  }
  await waitFor(() => heartbeat.streams.size === 0 && channel.size === 0, {
    what: "every vanished stream released",
  }).catch(() => undefined);
  const leftAfterVanished = { streams: heartbeat.streams.size, subscribers: channel.size };

  // The negative control: heartbeats off. Nothing is ever written, so the proxy never resets and
  // the server cannot know: the streams are still open several intervals later.
  const controls = await Promise.all(
    Array.from({ length: CONTROLS }, (_, i) => openThrough("/quiet", `control-${i}`)),
  );
  for (const c of controls) proxy.vanish(c.pipe, "reset");
  await sleep(5 * HEARTBEAT);
  const controlState = {
    open: controls.filter((c) => !c.stream.closed).length,
    streams: quiet.streams.size,
    subscribers: channel.size,
    bytesSeenByProxy: controls.reduce((n, c) => n + c.pipe.afterVanish.length, 0),
  };
  // Release them: the server's own close writes the last chunk, which the proxy answers with RST.
  for (const c of controls) c.stream.close();
  await waitFor(() => quiet.streams.size === 0 && channel.size === 0, {
    what: "the controls to close",
  });

  // A black hole: the proxy stops reading and never answers. The application keeps writing
  // (64 KB events), so the queue grows until maxBufferedBytes (256 KB) cuts the stream.
  const hole = await openThrough("/pumped", "black-hole");
  const pump = setInterval(() => hole.stream.send("z".repeat(64 * 1024)), 2);
  cleanups.push(() => clearInterval(pump));
  await sleep(50);
  proxy.vanish(hole.pipe, "black-hole");
  await waitFor(() => hole.stream.closed, {
    what: "the black-holed stream cut",
    timeout: 30_000,
  }).catch(() => undefined);
  clearInterval(pump);
  const holeMs = (closedAt.get("black-hole") ?? NaN) - hole.pipe.vanishedAt;
  const holeReason = hole.stream.closeReason?.type;

  await proxy.close();
  await waitFor(() => pumped.streams.size === 0 && channel.size === 0, { what: "all closed" });
  await channel.close();
  watcher.stop();
  const heapAfter = await heapUsed();

  const sorted = [...releaseMs].sort((a, b) => a - b);
  const p50 = sorted[Math.floor(sorted.length / 2)] ?? NaN;
  const max = sorted.at(-1) ?? NaN;
  record({
    case: "half-open (vanished peer)",
    load: `${VANISHED.toLocaleString("en-US")} vanished via a proxy, heartbeat ${HEARTBEAT} ms; ${CONTROLS} controls (heartbeat 0); 1 black hole`,
    faults: VANISHED + CONTROLS + 1,
    badInputs: 0,
    lost: 0,
    heapBefore,
    heapAfter,
    notes: `released ${p50.toFixed(0)} ms p50, ${max.toFixed(0)} ms max after vanishing; controls open after ${5 * HEARTBEAT} ms; black hole cut (${holeReason}) in ${holeMs.toFixed(0)} ms`,
  });
  expect(watcher.errors).toEqual([]);
  expect(misses).toEqual([]);
  expect(releaseMs).toHaveLength(VANISHED);
  // About one interval: the ping comes at most 1.25 x heartbeat after the stream's last write.
  expect(max).toBeLessThan(1.25 * HEARTBEAT + 150);
  expect(proxy.resets).toBeGreaterThanOrEqual(VANISHED);
  expect(leftAfterVanished).toEqual({ streams: 0, subscribers: 0 });
  expect(controlState).toEqual({
    open: CONTROLS,
    streams: CONTROLS,
    subscribers: CONTROLS,
    bytesSeenByProxy: 0,
  });
  expect(holeReason).toBe("max-buffered-bytes");
});
