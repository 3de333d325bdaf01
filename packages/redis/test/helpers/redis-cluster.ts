/**
 * A real Redis Cluster for the tests: six `redis-server --cluster-enabled yes` on 127.0.0.1 (three
 * primaries, one replica each), made into a cluster with `redis-cli --cluster create`. No
 * persistence besides each node's `nodes.conf` in its own temporary directory, so that a killed
 * node can be started again on the same port and rejoin (as a replica of whoever took over).
 *
 * `cluster-node-timeout` is short (1 s by default) and `cluster-replica-validity-factor 0`, so a
 * replica always fails over, within a few seconds of its primary's crash.
 *
 * `ensureRedisCluster()` installs Debian's `redis-server` and `redis-tools` packages with apt-get
 * when running as root, and otherwise fails naming them: a test never skips silently.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { ensurePrograms, freePort } from "../../../../test-support/system";
// The package's own slot function: test/cluster.test.ts checks it against CLUSTER KEYSLOT.
import { hashSlot } from "../../src/keys";

const SERVER = "redis-server";
const CLI = "redis-cli";
const NODE_COUNT = 6;
const SLOT_COUNT = 16384;
/** Redis Cluster's bus listens on the client port + 10000. */
const BUS_PORT_OFFSET = 10_000;
const START_TIMEOUT_MS = 10_000;
const CREATE_TIMEOUT_MS = 30_000;
const COMMAND_TIMEOUT_MS = 1000;
const POLL_MS = 50;

/** The paths of `redis-server` and `redis-cli`, installing Debian's packages first if needed. */
export function ensureRedisCluster(): { server: string; cli: string } {
  const found = ensurePrograms([
    { program: SERVER, debianPackage: "redis-server" },
    { program: CLI, debianPackage: "redis-tools" },
  ]);
  return { server: found.get(SERVER)!, cli: found.get(CLI)! };
}

export interface RedisClusterNode {
  readonly port: number;
  readonly url: string;
  /** Whether the node's process is running. */
  readonly running: boolean;
}

export interface RedisClusterOptions {
  /** `cluster-node-timeout`, in milliseconds (default 1000). */
  nodeTimeoutMs?: number;
}

export interface RedisCluster {
  /** Root node URLs (all six) for `createCluster({ rootNodes })`. */
  readonly rootNodes: ReadonlyArray<{ url: string }>;
  readonly nodes: readonly RedisClusterNode[];
  /**
   * The node currently serving `key`'s hash slot as primary: what most running nodes' `CLUSTER
   * SLOTS` name, among running nodes. Throws if none names a running node (mid-failover).
   */
  primaryFor(key: string): Promise<RedisClusterNode>;
  /** `SIGKILL`s a node (a crash). */
  kill(node: RedisClusterNode): Promise<void>;
  /** Starts a killed node again (same port and dir; it rejoins as replica of whoever took over). */
  restart(node: RedisClusterNode): Promise<void>;
  /**
   * Resolves once every slot is served by a running primary, every running node reports the same
   * slot -> primary map, `CLUSTER INFO` says `cluster_state:ok` on every running node, and every
   * running replica's replication link is up (`ROLE` says `connected`). Polls, bounded by
   * `timeoutMs` (default 20 s); on timeout throws with each node's `CLUSTER INFO` and `NODES`.
   */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Stops every node (`SIGKILL`) and removes the temporary directories. */
  dispose(): Promise<void>;
}

/** One `redis-server` process of the cluster. */
class NodeProcess implements RedisClusterNode {
  readonly url: string;
  private child: ChildProcess | undefined;
  private output = "";

  constructor(
    private readonly program: string,
    readonly port: number,
    readonly dir: string,
    private readonly nodeTimeoutMs: number,
  ) {
    this.url = `redis://127.0.0.1:${port}`;
  }

  get running(): boolean {
    const child = this.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  private args(): string[] {
    return [
      "--port",
      String(this.port),
      "--bind",
      "127.0.0.1",
      "--dir",
      this.dir,
      "--cluster-enabled",
      "yes",
      "--cluster-config-file",
      "nodes.conf",
      "--cluster-node-timeout",
      String(this.nodeTimeoutMs),
      "--cluster-replica-validity-factor",
      "0",
      "--cluster-allow-reads-when-down",
      "no",
      // A replica's first full sync (diskless) starts at once, not after the default 5 s.
      "--repl-diskless-sync-delay",
      "0",
      "--save",
      "",
      "--appendonly",
      "no",
      "--daemonize",
      "no",
      "--loglevel",
      "warning",
    ];
  }

  /** Spawns the server and resolves once it answers `PING`. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`Redis Cluster node ${this.port} is already running`);
    const proc = spawn(this.program, this.args(), { stdio: ["ignore", "pipe", "pipe"] });
    this.child = proc;
    this.output = "";
    const collect = (chunk: string) => {
      this.output = (this.output + chunk).slice(-20_000);
    };
    proc.stdout!.setEncoding("utf8").on("data", collect);
    proc.stderr!.setEncoding("utf8").on("data", collect);
    proc.on("error", (err) => collect(`\n${err.message}\n`));
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (!this.running) {
        throw new Error(`redis-server exited at start (${this.args().join(" ")}):\n${this.output}`);
      }
      if (await answersPing(this.port)) return;
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(
          `redis-server (cluster node ${this.port}) did not answer PING within ` +
            `${START_TIMEOUT_MS} ms:\n${this.output}`,
        );
      }
      await sleep(20);
    }
  }

  /** `SIGKILL`s the process and resolves once it has exited. */
  async kill(): Promise<void> {
    const proc = this.child;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill("SIGKILL");
    await exited;
  }

  /** Synchronous, for the process `exit` handler. */
  killNow(): void {
    if (this.running) this.child!.kill("SIGKILL");
  }
}

/** Starts a six-node cluster (three primaries with a replica each) on free loopback ports. */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const { server, cli } = ensureRedisCluster();
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 1000;
  const root = fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir();
  const nodes: NodeProcess[] = [];
  const usedPorts = new Set<number>();

  // If the test process exits without dispose(), take the servers (and their dirs) with it.
  const killOnExit = () => {
    for (const node of nodes) {
      node.killNow();
      fs.rmSync(node.dir, { recursive: true, force: true });
    }
  };
  process.once("exit", killOnExit);

  const disposeAll = async (): Promise<void> => {
    process.off("exit", killOnExit);
    await Promise.all(nodes.map((node) => node.kill()));
    for (const node of nodes) fs.rmSync(node.dir, { recursive: true, force: true });
  };

  try {
    // Each port is free when asked; another process could take it first, so retry a few times.
    const started = await Promise.allSettled(
      Array.from({ length: NODE_COUNT }, async () => {
        for (let attempt = 0; ; attempt++) {
          const port = await clusterPort(usedPorts);
          const node = new NodeProcess(
            server,
            port,
            fs.mkdtempSync(path.join(root, `sluice-redis-cluster-${port}-`)),
            nodeTimeoutMs,
          );
          nodes.push(node);
          try {
            await node.start();
            return;
          } catch (err) {
            await node.kill();
            fs.rmSync(node.dir, { recursive: true, force: true });
            nodes.splice(nodes.indexOf(node), 1);
            if (attempt >= 2) throw err;
          }
        }
      }),
    );
    // Every start has settled (none is still spawning) before a failure disposes of them all.
    for (const result of started) if (result.status === "rejected") throw result.reason;
    nodes.sort((a, b) => a.port - b.port);
    await createCluster(
      cli,
      nodes.map((node) => node.port),
    );
    const cluster = makeCluster(nodes, disposeAll);
    await cluster.waitHealthy();
    return cluster;
  } catch (err) {
    await disposeAll();
    throw err;
  }
}

function makeCluster(nodes: NodeProcess[], disposeAll: () => Promise<void>): RedisCluster {
  const byPort = new Map(nodes.map((node) => [node.port, node]));
  const own = (node: RedisClusterNode): NodeProcess => {
    const found = byPort.get(node.port);
    if (found === undefined) throw new Error(`Port ${node.port} is not a node of this cluster`);
    return found;
  };
  const running = () => nodes.filter((node) => node.running);

  /** `CLUSTER SLOTS` of one node, as `[start, end, primary port]`, sorted. */
  const slotMap = async (port: number): Promise<SlotRange[]> =>
    parseClusterSlots(await redisCommand(port, ["CLUSTER", "SLOTS"]));

  const unhealthyBecause = async (): Promise<string | undefined> => {
    const live = running();
    if (live.length === 0) return "no node is running";
    let reference: { port: number; map: string } | undefined;
    for (const node of live) {
      let info: RespReply;
      let ranges: SlotRange[];
      let role: RespReply;
      try {
        info = await redisCommand(node.port, ["CLUSTER", "INFO"]);
        ranges = await slotMap(node.port);
        role = await redisCommand(node.port, ["ROLE"]);
      } catch (err) {
        return `node ${node.port}: ${(err as Error).message}`;
      }
      if (!String(info).includes("cluster_state:ok")) {
        return `node ${node.port} says ${/cluster_state:\w+/.exec(String(info))?.[0] ?? "?"}`;
      }
      // A replica counts once its replication link is up (its first sync done).
      if (Array.isArray(role) && role[0] === "slave" && role[3] !== "connected") {
        return `replica ${node.port} of ${String(role[2])} is in state ${String(role[3])}`;
      }
      let covered = 0;
      for (const [start, end, primary] of ranges) {
        covered += end - start + 1;
        if (!byPort.get(primary)?.running) {
          return `node ${node.port} sees slots ${start}-${end} on ${primary}, which is not running`;
        }
      }
      if (covered !== SLOT_COUNT) {
        return `node ${node.port} sees ${covered} of ${SLOT_COUNT} slots served`;
      }
      const map = ranges.map(([start, end, primary]) => `${start}-${end}:${primary}`).join(" ");
      if (reference === undefined) reference = { port: node.port, map };
      else if (reference.map !== map) {
        return `nodes disagree: ${reference.port} sees ${reference.map}; ${node.port} sees ${map}`;
      }
    }
    return undefined;
  };

  return {
    rootNodes: nodes.map((node) => ({ url: node.url })),
    nodes,

    primaryFor: async (key) => {
      const slot = hashSlot(key);
      // Every running node's view, by majority: right after a failover or a restart, a node
      // can still name a dead primary, or (restarted) itself with its old slots.
      const views = await Promise.all(
        running().map(async (node) => {
          try {
            const ranges = await slotMap(node.port);
            const range = ranges.find(([start, end]) => start <= slot && slot <= end);
            return { node, primary: range?.[2], error: undefined };
          } catch (err) {
            return { node, primary: undefined, error: (err as Error).message };
          }
        }),
      );
      const votes = new Map<number, number>();
      for (const { primary } of views) {
        if (primary !== undefined && byPort.get(primary)?.running) {
          votes.set(primary, (votes.get(primary) ?? 0) + 1);
        }
      }
      const [winner] = [...votes].sort((a, b) => b[1] - a[1])[0] ?? [];
      if (winner !== undefined) return byPort.get(winner)!;
      const described = views.map(
        ({ node, primary, error }) =>
          `${node.port}: ${error ?? (primary === undefined ? "slot not served" : `on ${primary} (not running)`)}`,
      );
      throw new Error(
        `No running primary serves slot ${slot} (key ${JSON.stringify(key)}): ${described.join("; ")}`,
      );
    },

    kill: (node) => own(node).kill(),

    restart: (node) => own(node).start(),

    waitHealthy: async (timeoutMs = 20_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const why = await unhealthyBecause();
        if (why === undefined) return;
        if (Date.now() > deadline) {
          const reports = await Promise.all(
            nodes.map(async (node) => {
              if (!node.running) return `--- ${node.port}: not running`;
              const ask = async (args: string[]) => {
                try {
                  return String(await redisCommand(node.port, args)).trim();
                } catch (err) {
                  return `(${(err as Error).message})`;
                }
              };
              return (
                `--- ${node.port} CLUSTER INFO:\n${await ask(["CLUSTER", "INFO"])}\n` +
                `--- ${node.port} CLUSTER NODES:\n${await ask(["CLUSTER", "NODES"])}`
              );
            }),
          );
          throw new Error(
            `Redis Cluster not healthy within ${timeoutMs} ms: ${why}\n${reports.join("\n")}`,
          );
        }
        await sleep(POLL_MS);
      }
    },

    dispose: disposeAll,
  };
}

/** `redis-cli --cluster create` with one replica per primary. */
function createCluster(cli: string, ports: number[]): Promise<void> {
  const args = [
    "--cluster",
    "create",
    ...ports.map((port) => `127.0.0.1:${port}`),
    "--cluster-replicas",
    "1",
    "--cluster-yes",
  ];
  return new Promise((resolve, reject) => {
    execFile(
      cli,
      args,
      { timeout: CREATE_TIMEOUT_MS, encoding: "utf8", maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const output = `${stdout}${stderr}`;
        if (err !== null || !output.includes("All 16384 slots covered")) {
          reject(
            new Error(
              `\`${cli} ${args.join(" ")}\` failed (${err?.message ?? "slots not covered"}):\n${output}`,
            ),
          );
        } else {
          resolve();
        }
      },
    );
  });
}

/** A free port whose cluster bus port (+10000) is free too, and neither already taken. */
async function clusterPort(used: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = await freePort();
    const bus = port + BUS_PORT_OFFSET;
    if (bus > 65535 || used.has(port) || used.has(bus)) continue;
    if (!(await portIsFree(bus))) continue;
    // Checked again after the await: another node's search may have taken it meanwhile.
    if (used.has(port) || used.has(bus)) continue;
    used.add(port);
    used.add(bus);
    return port;
  }
  throw new Error("Found no free port pair (port, port + 10000) for a Redis Cluster node");
}

/** Whether `port` can be bound on 127.0.0.1 right now. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

// ---------------------------------------------------------------------------------------------
// A minimal RESP2 client: one command per connection, for the harness's own checks.

/** A RESP2 reply; error replies are rejected as `RedisReplyError`. */
export type RespReply = string | number | null | RespReply[];

export class RedisReplyError extends Error {
  override name = "RedisReplyError";
}

type SlotRange = [start: number, end: number, primaryPort: number];

function parseClusterSlots(reply: RespReply): SlotRange[] {
  if (!Array.isArray(reply)) throw new Error(`Unexpected CLUSTER SLOTS reply: ${String(reply)}`);
  const ranges = reply.map((entry): SlotRange => {
    const [start, end, primary] = entry as [number, number, [string, number, ...unknown[]]];
    return [start, end, primary[1]];
  });
  return ranges.sort((a, b) => a[0] - b[0]);
}

/**
 * Sends one command to 127.0.0.1:`port` on a fresh connection and resolves with its reply.
 * Rejects on a connection error, on `timeoutMs` without a whole reply, and on an error reply.
 */
export function redisCommand(
  port: number,
  args: readonly string[],
  timeoutMs = COMMAND_TIMEOUT_MS,
): Promise<RespReply> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let buffer = Buffer.alloc(0);
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      fn();
    };
    socket.setTimeout(timeoutMs, () =>
      settle(() =>
        reject(new Error(`${args.join(" ")} on port ${port}: no reply within ${timeoutMs} ms`)),
      ),
    );
    socket.on("error", (err) =>
      settle(() => reject(new Error(`${args.join(" ")} on port ${port}: ${err.message}`))),
    );
    socket.on("close", () =>
      settle(() =>
        reject(new Error(`${args.join(" ")} on port ${port}: connection closed before a reply`)),
      ),
    );
    socket.on("connect", () => socket.write(encodeCommand(args)));
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      let parsed: { reply: RespReply | RedisReplyError; next: number } | undefined;
      try {
        parsed = parseReply(buffer, 0);
      } catch (err) {
        settle(() => reject(err as Error));
        return;
      }
      if (parsed === undefined) return; // incomplete: wait for more
      const { reply } = parsed;
      settle(() => (reply instanceof RedisReplyError ? reject(reply) : resolve(reply)));
    });
  });
}

function encodeCommand(args: readonly string[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.from(arg, "utf8");
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from("\r\n"));
  }
  return Buffer.concat(parts);
}

/** Parses one reply at `offset`; `undefined` if the buffer does not hold all of it yet. */
function parseReply(
  buffer: Buffer,
  offset: number,
): { reply: RespReply | RedisReplyError; next: number } | undefined {
  const lineEnd = buffer.indexOf("\r\n", offset);
  if (lineEnd === -1) return undefined;
  const type = String.fromCharCode(buffer[offset]!);
  const line = buffer.toString("utf8", offset + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case "+":
      return { reply: line, next };
    case "-":
      return { reply: new RedisReplyError(line), next };
    case ":":
      return { reply: Number(line), next };
    case "$": {
      const length = Number(line);
      if (length < 0) return { reply: null, next };
      if (buffer.length < next + length + 2) return undefined;
      return { reply: buffer.toString("utf8", next, next + length), next: next + length + 2 };
    }
    case "*": {
      const count = Number(line);
      if (count < 0) return { reply: null, next };
      const items: RespReply[] = [];
      let at = next;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buffer, at);
        if (item === undefined) return undefined;
        // An error nested in an array (EXEC, some scripts) stays a value: its message.
        items.push(item.reply instanceof RedisReplyError ? item.reply.message : item.reply);
        at = item.next;
      }
      return { reply: items, next: at };
    }
    default:
      throw new Error(`Unexpected RESP reply type ${JSON.stringify(type)}`);
  }
}

/** Sends one inline `PING` and resolves whether `+PONG` came back. */
function answersPing(port: number): Promise<boolean> {
  return redisCommand(port, ["PING"]).then(
    (reply) => reply === "PONG",
    () => false,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
