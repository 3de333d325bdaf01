/**
 * Child process: the load client. Opens N event-stream connections on raw node:net sockets
 * (no HTTP client library, no event parser), counts the events each one receives, samples
 * publish-to-receive latency on a few, and reports its own CPU so that a client bottleneck is
 * never mistaken for a server result.
 */
import net from "node:net";
import { percentile } from "./measure";
import { now } from "./payload";
import type {
  ChurnArgs,
  ChurnResult,
  ClientCommands,
  ConnectArgs,
  ConnectResult,
  DeliveryReport,
} from "./protocol";
import { serve } from "./rpc";
import { SseReader } from "./sse-reader";

const HOST = "127.0.0.1";
const MAX_ERRORS = 5;

interface Connection {
  socket: net.Socket;
  reader: SseReader;
  closed: boolean;
  /** `reader.events` (frames that are not comments) and `reader.bytes` at the last reset. */
  base: number;
  bytesBase: number;
  done: boolean;
}

let connections: Connection[] = [];
let target = 0;
let remaining = 0;
let doneAt = 0;
let cpuBase = process.cpuUsage();
let cpuAtDone: number | undefined;
let recordLatency = false;
let latencies: number[] = [];
let onAllDone: (() => void) | undefined;

// ---- source addresses -------------------------------------------------------------------------
// One source address has ~28k ephemeral ports (32768-60999), and a closed connection keeps its
// port in TIME_WAIT for 60 s. Churn runs 20,000 connects per variant, so the client spreads its
// connections over the loopback /8 (Linux routes all of 127.0.0.0/8 to lo), 1,000 per address,
// starting at a random one so that consecutive runs do not collide.
const PER_ADDRESS = 1000;
const spread = process.platform === "linux";
let addressCounter = Math.floor(Math.random() * 60_000) * PER_ADDRESS;

function nextLocalAddress(): string | undefined {
  if (!spread) return undefined;
  const block = Math.floor(addressCounter++ / PER_ADDRESS) % (254 * 254);
  return `127.0.${1 + Math.floor(block / 254)}.${1 + (block % 254)}`;
}

// ---- one connection ---------------------------------------------------------------------------

function request(path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\nAccept: text/event-stream\r\n\r\n`;
}

/**
 * Opens one connection; `onReady` runs once the response head and the variant's prelude frames
 * have arrived, `onFail` if it closes or errs first (each at most once, and never both).
 */
function open(
  port: number,
  path: string,
  preludeFrames: number,
  sample: boolean,
  onReady: (c: Connection) => void,
  onFail: (message: string) => void,
): Connection {
  const reader = new SseReader(sample ? onSample : undefined);
  const localAddress = nextLocalAddress();
  const socket = net.connect(
    localAddress === undefined ? { port, host: HOST } : { port, host: HOST, localAddress },
  );
  const c: Connection = { socket, reader, closed: false, base: 0, bytesBase: 0, done: false };
  let settled = false;
  const fail = (message: string): void => {
    if (settled) return;
    settled = true;
    socket.destroy();
    onFail(message);
  };
  socket.setNoDelay(true);
  socket.on("connect", () => socket.write(request(path)));
  socket.on("data", (buf: Buffer) => {
    const frames = reader.push(buf);
    if (!settled) {
      if (reader.error !== undefined) return fail(reader.error);
      if (reader.headersDone && reader.frames >= preludeFrames) {
        settled = true;
        c.base = reader.events;
        c.bytesBase = reader.bytes;
        onReady(c);
      }
      return;
    }
    if (frames > 0 && !c.done && reader.events - c.base >= target) {
      c.done = true;
      if (--remaining === 0) allDone();
    }
  });
  socket.on("error", (err) => fail(err.message));
  socket.on("close", () => {
    c.closed = true;
    fail("closed before the stream started");
  });
  return c;
}

function onSample(t: number): void {
  if (recordLatency) latencies.push(now() - t);
}

function allDone(): void {
  doneAt = now();
  const used = process.cpuUsage(cpuBase);
  cpuAtDone = (used.user + used.system) / 1000;
  onAllDone?.();
}

// ---- commands ---------------------------------------------------------------------------------

function connect(args: ConnectArgs): Promise<ConnectResult> {
  const started = now();
  const errors: string[] = [];
  let next = 0;
  let connected = 0;
  let failed = 0;
  return new Promise((resolve) => {
    const timer = setTimeout(
      () => finish(`timed out with ${args.n - connected - failed} pending`),
      args.timeoutMs,
    );
    const finish = (error?: string): void => {
      clearTimeout(timer);
      if (error !== undefined && errors.length < MAX_ERRORS) errors.push(error);
      resolve({ connected, failed, ms: now() - started, errors });
    };
    const settle = (): void => {
      if (connected + failed === args.n) finish();
      else if (next < args.n) launch();
    };
    const launch = (): void => {
      const index = next++;
      const sample = args.sampleEvery > 0 && index % args.sampleEvery === 0;
      open(
        args.port,
        args.path,
        args.preludeFrames,
        sample,
        (c) => {
          connections.push(c);
          connected++;
          settle();
        },
        (message) => {
          failed++;
          if (errors.length < MAX_ERRORS) errors.push(message);
          settle();
        },
      );
    };
    if (args.n === 0) return finish();
    for (let i = 0; i < Math.min(args.concurrency, args.n); i++) launch();
  });
}

function reset({ target: perClient, latency }: { target: number; latency: boolean }): undefined {
  target = perClient;
  remaining = 0;
  for (const c of connections) {
    c.base = c.reader.events;
    c.bytesBase = c.reader.bytes;
    c.reader.resetSeq();
    c.done = perClient === 0;
    if (!c.done) remaining++;
  }
  doneAt = 0;
  cpuAtDone = undefined;
  latencies = [];
  recordLatency = latency;
  cpuBase = process.cpuUsage();
  if (remaining === 0) allDone();
  return undefined;
}

function wait(args: {
  timeoutMs: number;
  stallMs: number;
  graceMs: number;
}): Promise<DeliveryReport> {
  return new Promise((resolve) => {
    const started = Date.now();
    let lastTotal = -1;
    let lastProgress = started;
    const report = (reason: string | undefined): void => {
      clearInterval(watch);
      onAllDone = undefined;
      recordLatency = false;
      resolve(summarize(reason));
    };
    const complete = (): void => {
      // Keep counting a moment longer: an extra event (a duplicate) must show up too.
      onAllDone = undefined;
      setTimeout(() => report(undefined), args.graceMs);
    };
    const watch = setInterval(() => {
      const total = received();
      if (total !== lastTotal) {
        lastTotal = total;
        lastProgress = Date.now();
      }
      if (Date.now() - started > args.timeoutMs) {
        report(`timed out after ${Math.round(args.timeoutMs / 1000)} s`);
      } else if (Date.now() - lastProgress > args.stallMs) {
        report(`no event for ${Math.round(args.stallMs / 1000)} s`);
      }
    }, 250);
    if (doneAt !== 0) complete();
    else onAllDone = complete;
  });
}

function received(): number {
  let total = 0;
  for (const c of connections) total += c.reader.events - c.base;
  return total;
}

function summarize(reason: string | undefined): DeliveryReport {
  let total = 0;
  let short = 0;
  let over = 0;
  let closed = 0;
  let bytes = 0;
  let seqErrors = 0;
  for (const c of connections) {
    const got = c.reader.events - c.base;
    total += got;
    if (got < target) short++;
    if (got > target) over++;
    if (c.closed) closed++;
    bytes += c.reader.bytes - c.bytesBase;
    seqErrors += c.reader.seqErrors;
  }
  let cpuMs = cpuAtDone;
  if (cpuMs === undefined) {
    const used = process.cpuUsage(cpuBase);
    cpuMs = (used.user + used.system) / 1000;
  }
  latencies.sort((a, b) => a - b);
  return {
    done: doneAt !== 0 && short === 0,
    reason,
    clients: connections.length,
    expectedPerClient: target,
    received: total,
    short,
    over,
    closed,
    doneAt,
    cpuMs,
    bytes,
    seqErrors,
    latency:
      latencies.length === 0
        ? undefined
        : {
            samples: latencies.length,
            p50: percentile(latencies, 50),
            p99: percentile(latencies, 99),
            max: latencies[latencies.length - 1] as number,
          },
  };
}

function churn(args: ChurnArgs): Promise<ChurnResult> {
  const started = now();
  const errors: string[] = [];
  let next = 0;
  let completed = 0;
  let failed = 0;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      if (errors.length < MAX_ERRORS) errors.push(`timed out after ${completed} cycles`);
      resolve({ completed, failed, ms: now() - started, errors });
    }, args.timeoutMs);
    const settle = (): void => {
      if (completed + failed === args.cycles) {
        clearTimeout(timer);
        resolve({ completed, failed, ms: now() - started, errors });
      } else if (next < args.cycles) {
        launch();
      }
    };
    const launch = (): void => {
      next++;
      open(
        args.port,
        args.path,
        args.preludeFrames,
        false,
        (c) => {
          // The stream is established on both sides: leave, as a closed browser tab does.
          c.socket.destroy();
          completed++;
          settle();
        },
        (message) => {
          failed++;
          if (errors.length < MAX_ERRORS) errors.push(message);
          settle();
        },
      );
    };
    if (args.cycles === 0) return settle();
    for (let i = 0; i < Math.min(args.concurrency, args.cycles); i++) launch();
  });
}

function closeAll(): number {
  const count = connections.length;
  for (const c of connections) c.socket.destroy();
  connections = [];
  remaining = 0;
  return count;
}

serve<ClientCommands>({ connect, reset, wait, churn, closeAll });
