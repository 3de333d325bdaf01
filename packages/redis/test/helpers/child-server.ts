/**
 * Starts test/fixtures/server.ts in a child process (node --import tsx), as a second, third…
 * instance of an app would run: its own process, its own Redis connections.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";

const PACKAGE_ROOT = path.resolve(__dirname, "../..");
const FIXTURE = path.join(PACKAGE_ROOT, "test/fixtures/server.ts");
const START_TIMEOUT_MS = 30_000;

export interface ChildServer {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  /** stdout + stderr so far. */
  output(): string;
  /** Graceful stop ("stop" over IPC), then SIGKILL if it takes more than 5 s. */
  stop(): Promise<void>;
  /** SIGKILL: the process dies without closing anything, as in a crash. */
  kill(): Promise<void>;
}

const running = new Set<ChildServer>();

export async function startChildServer(
  name: string,
  env: ({ REDIS_URL: string } | { REDIS_CLUSTER: string }) & {
    CHANNEL: string;
    PREFIX?: string;
    PRESENCE_TTL?: string;
  },
): Promise<ChildServer> {
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", FIXTURE], {
    cwd: PACKAGE_ROOT,
    env: { ...process.env, ...env, NAME: name },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  let output = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${name} did not start within ${START_TIMEOUT_MS} ms:\n${output}`));
    }, START_TIMEOUT_MS);
    child.on("message", (message: { port?: number }) => {
      if (typeof message?.port !== "number") return;
      clearTimeout(timer);
      resolve(message.port);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited at start (${String(code ?? signal)}):\n${output}`));
    });
  });

  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
  const server: ChildServer = {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    output: () => output,
    stop: async () => {
      running.delete(server);
      if (child.connected) child.send("stop");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
    kill: async () => {
      running.delete(server);
      child.kill("SIGKILL");
      await exited;
    },
  };
  running.add(server);
  return server;
}

/** Stops every child still running (for `afterAll`). */
export async function stopAllChildServers(): Promise<void> {
  await Promise.all([...running].map((server) => server.stop()));
}
