/**
 * The harness around one cell (one scenario × one variant × one run): a fresh server process for
 * the variant, the load client process (reused across cells, replaced after a failure), and the
 * steps every scenario shares — connect N clients, deliver events and check that every client got
 * every one of them. Every step has a timeout, so a stuck variant fails its cell with a message
 * instead of hanging the run.
 */
import path from "node:path";
import type {
  ClientCommands,
  ConnectArgs,
  DeliveryReport,
  PublishResult,
  ServerCommands,
  ServerInfo,
  ServerVariantName,
} from "./protocol";
import { startRedis } from "./redis-server";
import { Worker } from "./rpc";
import { SCALE_HEARTBEAT_MS } from "./scenarios/scale";

const ROOT = path.resolve(__dirname, "..");
const START_TIMEOUT = 20_000;
const SHORT_TIMEOUT = 20_000;
/** Fail a delivery when no event at all arrived for this long. */
const STALL_MS = 15_000;
/** Keep counting this long after the last expected event, so duplicates show up too. */
const GRACE_MS = 50;

export type Server = Worker<ServerCommands>;
export type Client = Worker<ClientCommands>;

export interface CellContext {
  variant: ServerVariantName;
  server: Server;
  client: Client;
  info: ServerInfo;
}

/** The 100,000-stream set-up: a cluster server process and several load clients. */
export interface ClusterCell {
  server: Server;
  /** Opens `n` connections, spread evenly over the clients; waits until all are registered. */
  connect(n: number): Promise<void>;
  /** Publishes one event in the first worker; resolves with ms until every client has it. */
  broadcast(): Promise<number>;
}

export class Harness {
  private _client: Client | undefined = undefined;

  constructor(private readonly _connectConcurrency: number) {}

  /** A fresh server process for `variant` (`env` added to its environment); the caller kills it. */
  spawnServer(variant: ServerVariantName, env: Record<string, string> = {}): Server {
    return Worker.spawn<ServerCommands>(
      `server ${variant}`,
      path.join(__dirname, "server-worker.ts"),
      [variant],
      { cwd: ROOT, execArgv: ["--expose-gc"], env },
    );
  }

  /** Waits until a server process listens and says where. */
  serverInfo(server: Server): Promise<ServerInfo> {
    return server.call("info", undefined, START_TIMEOUT);
  }

  /** Runs `fn` against a fresh server process for `variant`; always kills it afterwards. */
  async cell<T>(
    variant: ServerVariantName,
    fn: (ctx: CellContext) => Promise<T>,
    env: Record<string, string> = {},
  ): Promise<T> {
    const server = this.spawnServer(variant, env);
    const client = this._getClient();
    try {
      const info = await this.serverInfo(server);
      return await fn({ variant, server, client, info });
    } catch (err) {
      // The client may be mid-command: start from a fresh one for the next cell.
      this._client = undefined;
      await client.kill();
      throw err;
    } finally {
      await server.kill();
      if (client.alive) {
        try {
          await client.call("closeAll", undefined, SHORT_TIMEOUT);
        } catch {
          this._client = undefined;
          await client.kill();
        }
      }
    }
  }

  /**
   * Runs `fn` against a fresh `node:cluster` server (`workers` workers of `sluice-redis` on one
   * port, a fresh local Redis, heartbeat on) and `clientProcesses` fresh load clients; kills
   * everything afterwards.
   */
  async clusterCell<T>(
    workers: number,
    clientProcesses: number,
    fn: (cell: ClusterCell) => Promise<T>,
  ): Promise<T> {
    const redis = await startRedis();
    const server = Worker.spawn<ServerCommands>(
      "cluster server",
      path.join(__dirname, "cluster-server.ts"),
      [String(workers)],
      {
        cwd: ROOT,
        env: { BENCH_REDIS_URL: redis.url, BENCH_HEARTBEAT_MS: String(SCALE_HEARTBEAT_MS) },
      },
    );
    const clients = Array.from({ length: clientProcesses }, (_, i) =>
      Worker.spawn<ClientCommands>(
        `client ${i + 1}`,
        path.join(__dirname, "client-worker.ts"),
        [],
        {
          cwd: ROOT,
        },
      ),
    );
    try {
      const info = await server.call("info", undefined, START_TIMEOUT);
      let total = 0;
      const cell: ClusterCell = {
        server,
        connect: async (n) => {
          const timeoutMs = 60_000 + n * 4;
          const share = Math.ceil(n / clients.length);
          const results = await Promise.all(
            clients.map((client, i) =>
              client.call(
                "connect",
                this._connectArgs(info, Math.min(share, n - share * i), 0, timeoutMs),
                timeoutMs + 5_000,
              ),
            ),
          );
          const connected = results.reduce((sum, r) => sum + r.connected, 0);
          if (connected !== n) {
            const errors = results.flatMap((r) => r.errors).slice(0, 5);
            throw new Error(`${n - connected} of ${n} connections failed: ${errors.join("; ")}`);
          }
          total = n;
          await server.call("waitClients", { n, timeoutMs: 60_000 }, 65_000);
        },
        broadcast: async () => {
          const timeoutMs = 60_000;
          await Promise.all(
            clients.map((c) => c.call("reset", { target: 1, latency: false }, SHORT_TIMEOUT)),
          );
          const sent = server.call("fanout", { events: 1 }, timeoutMs);
          const reports = await Promise.all(
            clients.map((c) =>
              c.call(
                "wait",
                { timeoutMs, stallMs: STALL_MS, graceMs: GRACE_MS },
                timeoutMs + 10_000,
              ),
            ),
          );
          const published = await sent;
          let doneAt = 0;
          let clientsSeen = 0;
          for (const report of reports) {
            checkDelivery(report, report.clients, 1);
            clientsSeen += report.clients;
            doneAt = Math.max(doneAt, report.doneAt);
          }
          if (clientsSeen !== total) throw new Error(`${clientsSeen} of ${total} clients reported`);
          return doneAt - published.startedAt;
        },
      };
      return await fn(cell);
    } finally {
      await Promise.all([server.kill(), ...clients.map((c) => c.kill())]);
      await redis.stop();
    }
  }

  private _getClient(): Client {
    if (this._client === undefined || !this._client.alive) {
      this._client = Worker.spawn<ClientCommands>(
        "client",
        path.join(__dirname, "client-worker.ts"),
        [],
        { cwd: ROOT },
      );
    }
    return this._client;
  }

  async close(): Promise<void> {
    await this._client?.kill();
    this._client = undefined;
  }

  /** Opens `n` connections and waits until the server has registered every one. */
  async connect(ctx: CellContext, n: number, sampleEvery = 0): Promise<void> {
    const timeoutMs = 20_000 + n * 4;
    const result = await ctx.client.call(
      "connect",
      this._connectArgs(ctx.info, n, sampleEvery, timeoutMs),
      timeoutMs + 5_000,
    );
    if (result.connected !== n) {
      throw new Error(
        `${n - result.connected} of ${n} connections failed: ${result.errors.join("; ")}`,
      );
    }
    await ctx.server.call("waitClients", { n, timeoutMs: SHORT_TIMEOUT }, SHORT_TIMEOUT + 5_000);
  }

  private _connectArgs(
    info: ServerInfo,
    n: number,
    sampleEvery: number,
    timeoutMs: number,
  ): ConnectArgs {
    return {
      port: info.port,
      path: info.path,
      n,
      preludeFrames: info.preludeFrames,
      sampleEvery,
      concurrency: this._connectConcurrency,
      timeoutMs,
    };
  }

  async disconnect(ctx: CellContext): Promise<void> {
    await ctx.client.call("closeAll", undefined, SHORT_TIMEOUT);
    await ctx.server.call("waitClients", { n: 0, timeoutMs: SHORT_TIMEOUT }, SHORT_TIMEOUT + 5_000);
  }

  /**
   * Has the server publish (`fanout`, `burst` or `rate`) `events` events and waits until every
   * client got every one of them. Throws, with the counts, on any loss or duplicate.
   */
  async deliver(
    ctx: CellContext,
    clients: number,
    publish: Publish,
    options: { latency?: boolean } = {},
  ): Promise<Delivery> {
    const events = publish.cmd === "burst" ? publish.size : publish.events;
    const deliveries = clients * events;
    // Generous: the stall detector catches a stuck variant long before this.
    const timeoutMs =
      60_000 + deliveries / 5 + (publish.cmd === "rate" ? (events / publish.hz) * 1000 : 0);
    await ctx.client.call(
      "reset",
      { target: events, latency: options.latency ?? false },
      SHORT_TIMEOUT,
    );
    const sent = publishCall(ctx.server, publish, timeoutMs);
    const wait = ctx.client.call(
      "wait",
      { timeoutMs, stallMs: STALL_MS, graceMs: GRACE_MS },
      timeoutMs + 10_000,
    );
    const [published, report] = await Promise.all([sent, wait]);
    const serverCpuMs = await ctx.server.call("cpu", undefined, SHORT_TIMEOUT);
    checkDelivery(report, clients, events);
    const elapsedMs = report.doneAt - published.startedAt;
    return { published, report, serverCpuMs, deliveries, elapsedMs };
  }
}

export type Publish =
  | { cmd: "fanout"; events: number }
  | { cmd: "burst"; size: number }
  | { cmd: "rate"; events: number; hz: number };

export interface Delivery {
  published: PublishResult;
  report: DeliveryReport;
  serverCpuMs: number;
  deliveries: number;
  /** From the first publish (server clock) to the last client receiving the last event. */
  elapsedMs: number;
}

function publishCall(server: Server, publish: Publish, timeoutMs: number): Promise<PublishResult> {
  switch (publish.cmd) {
    case "fanout":
      return server.call("fanout", { events: publish.events }, timeoutMs);
    case "burst":
      return server.call("burst", { size: publish.size }, timeoutMs);
    case "rate":
      return server.call("rate", { events: publish.events, hz: publish.hz }, timeoutMs);
  }
}

/** Loss is reported, never ignored: every client must get every event, once and in order. */
function checkDelivery(report: DeliveryReport, clients: number, events: number): void {
  const expected = clients * events;
  const ok =
    report.done &&
    report.clients === clients &&
    report.received === expected &&
    report.over === 0 &&
    report.closed === 0 &&
    report.seqErrors === 0;
  if (ok) return;
  throw new Error(
    `delivery check failed: ${report.received.toLocaleString("en-US")} of ` +
      `${expected.toLocaleString("en-US")} events delivered to ${report.clients} clients ` +
      `(${report.short} short, ${report.over} got extra, ${report.closed} closed, ` +
      `${report.seqErrors} out of sequence)` +
      (report.reason === undefined ? "" : `: ${report.reason}`),
  );
}
