/**
 * Child process: starts one server variant (argv[2]) on 127.0.0.1 and publishes on command.
 * Run by the harness with --expose-gc, so memory is measured after full collections.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { makePayload, now } from "./payload";
import { isServerVariantName, type ServerCommands } from "./protocol";
import { serve } from "./rpc";
import { loadVariant } from "./servers";
import type { ServerVariant } from "./servers/types";

const name = process.argv[2];
if (!isServerVariantName(name)) {
  console.error(`server-worker: unknown variant ${JSON.stringify(name)}`);
  process.exit(2);
}

const started: Promise<ServerVariant> = loadVariant(name).then((start) => start(0));
// Reported through "info"; keep an early failure from also being an unhandled rejection.
started.catch(() => {});

let seq = 0;
let cpuStart: NodeJS.CpuUsage = process.cpuUsage();

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function collectGarbage(): Promise<void> {
  const gc = globalThis.gc;
  if (gc === undefined) throw new Error("the server worker must run with --expose-gc");
  // Several passes, with turns of the event loop between them so that finalizers and
  // weak callbacks run and what they release is collected too.
  for (let i = 0; i < 4; i++) {
    gc();
    await yieldToLoop();
  }
}

serve<ServerCommands>({
  async info() {
    const variant = await started;
    return { port: variant.port, path: variant.path, preludeFrames: variant.preludeFrames };
  },

  async waitClients({ n, timeoutMs }) {
    const variant = await started;
    const deadline = Date.now() + timeoutMs;
    while (variant.clients() !== n) {
      if (Date.now() > deadline) {
        throw new Error(`expected ${n} registered clients, have ${variant.clients()}`);
      }
      await sleep(5);
    }
    return n;
  },

  async fanout({ events }) {
    const variant = await started;
    cpuStart = process.cpuUsage();
    const startedAt = now();
    for (let i = 0; i < events; i++) {
      variant.broadcast(makePayload(++seq));
      await yieldToLoop(); // as a real publisher would: let I/O and other work run
    }
    return { startedAt, publishMs: now() - startedAt };
  },

  async burst({ size }) {
    const variant = await started;
    cpuStart = process.cpuUsage();
    const startedAt = now();
    for (let i = 0; i < size; i++) variant.broadcast(makePayload(++seq));
    return { startedAt, publishMs: now() - startedAt };
  },

  async rate({ events, hz }) {
    const variant = await started;
    cpuStart = process.cpuUsage();
    const period = 1000 / hz;
    const startedAt = now();
    for (let i = 0; i < events; i++) {
      const wait = startedAt + i * period - now();
      if (wait >= 1) await sleep(wait);
      variant.broadcast(makePayload(++seq));
    }
    return { startedAt, publishMs: now() - startedAt };
  },

  cpu() {
    const used = process.cpuUsage(cpuStart);
    return (used.user + used.system) / 1000;
  },

  async idle({ ms }) {
    await started;
    const before = process.cpuUsage();
    await sleep(ms);
    const used = process.cpuUsage(before);
    return (used.user + used.system) / 1000;
  },

  async memory() {
    const variant = await started;
    await collectGarbage();
    const { heapUsed, rss, external } = process.memoryUsage();
    return { heapUsed, rss, external, clients: variant.clients() };
  },
});
