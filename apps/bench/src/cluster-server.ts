/**
 * Child process of the 100,000-stream scenario: a `node:cluster` primary whose workers each run
 * the `sluice-redis` variant (a channel on the Redis adapter, heartbeat on) on one shared port,
 * as PM2 or the cluster module deploy it. The primary answers the harness's server commands by
 * asking every worker and summing; `fanout` publishes in the first worker only, so every other
 * worker's clients get the event through Redis.
 *
 * argv[2]: the number of workers. Environment: BENCH_REDIS_URL, BENCH_HEARTBEAT_MS.
 */
import cluster, { type Worker as ClusterWorker } from "node:cluster";
import { setTimeout as sleep } from "node:timers/promises";
import { makePayload, now } from "./payload";
import type { MemorySample, ServerCommands, ServerInfo } from "./protocol";
import { serve } from "./rpc";
import { loadVariant } from "./servers";

type Ask =
  | { cmd: "clients" }
  | { cmd: "memory" }
  | { cmd: "idle"; ms: number }
  | { cmd: "publish"; seq: number };
type Answer = { id: number; value: unknown };

if (cluster.isPrimary) primary();
else void worker();

function primary(): void {
  const count = Number(process.argv[2]);
  if (!Number.isInteger(count) || count < 1) throw new Error("cluster-server: workers?");
  cluster.setupPrimary({ execArgv: ["--import", "tsx", "--expose-gc"] });
  const workers: ClusterWorker[] = [];
  let port: Promise<number> | undefined;
  const ready = new Promise<number>((resolve, reject) => {
    let listening = 0;
    for (let i = 0; i < count; i++) {
      const w = cluster.fork({ CLUSTER_INDEX: String(i) });
      w.on("exit", (code) => reject(new Error(`cluster worker ${i} exited (${code})`)));
      w.on("message", (msg: { listening?: number }) => {
        if (msg.listening !== undefined && ++listening === count) resolve(msg.listening);
      });
      workers.push(w);
    }
  });
  port = ready;
  let nextId = 0;
  const ask = (w: ClusterWorker, question: Ask): Promise<unknown> =>
    new Promise((resolve) => {
      const id = ++nextId;
      const on = (msg: Answer) => {
        if (msg.id !== id) return;
        w.off("message", on);
        resolve(msg.value);
      };
      w.on("message", on);
      w.send({ id, ...question });
    });
  const askAll = (question: Ask) => Promise.all(workers.map((w) => ask(w, question)));
  const total = async () =>
    ((await askAll({ cmd: "clients" })) as number[]).reduce((a, b) => a + b, 0);
  let seq = 0;

  serve<ServerCommands>({
    async info(): Promise<ServerInfo> {
      return { port: await port!, path: "/events", preludeFrames: 1 };
    },
    async waitClients({ n, timeoutMs }) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const have = await total();
        if (have === n) return n;
        if (Date.now() > deadline)
          throw new Error(`expected ${n} registered clients, have ${have}`);
        await sleep(50);
      }
    },
    async fanout({ events }) {
      const startedAt = now();
      for (let i = 0; i < events; i++) await ask(workers[0]!, { cmd: "publish", seq: ++seq });
      return { startedAt, publishMs: now() - startedAt };
    },
    burst() {
      throw new Error("not in the cluster scenario");
    },
    rate() {
      throw new Error("not in the cluster scenario");
    },
    cpu() {
      return 0;
    },
    async memory(): Promise<MemorySample> {
      const samples = (await askAll({ cmd: "memory" })) as MemorySample[];
      return samples.reduce((a, b) => ({
        heapUsed: a.heapUsed + b.heapUsed,
        rss: a.rss + b.rss,
        external: a.external + b.external,
        clients: a.clients + b.clients,
      }));
    },
    async idle({ ms }) {
      return ((await askAll({ cmd: "idle", ms })) as number[]).reduce((a, b) => a + b, 0);
    },
  });
}

async function worker(): Promise<void> {
  const variant = await (await loadVariant("sluice-redis"))(0);
  process.send!({ listening: variant.port });
  process.on("message", async (msg: Ask & { id: number }) => {
    let value: unknown;
    switch (msg.cmd) {
      case "clients":
        value = variant.clients();
        break;
      case "publish": {
        // The event reaches this worker's clients and, through Redis, every other worker's.
        variant.broadcast(makePayload(msg.seq));
        value = true;
        break;
      }
      case "memory": {
        for (let i = 0; i < 4; i++) {
          globalThis.gc!();
          await new Promise((resolve) => setImmediate(resolve));
        }
        const { heapUsed, rss, external } = process.memoryUsage();
        value = { heapUsed, rss, external, clients: variant.clients() };
        break;
      }
      case "idle": {
        const before = process.cpuUsage();
        await sleep(msg.ms);
        const used = process.cpuUsage(before);
        value = (used.user + used.system) / 1000;
        break;
      }
    }
    process.send!({ id: msg.id, value });
  });
}
