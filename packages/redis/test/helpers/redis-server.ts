/**
 * A real `redis-server` for the tests: on 127.0.0.1 and a free port, no RDB snapshots
 * (`--save ""`), optionally append-only persistence (`--appendonly yes`, fsync on every write) in
 * a temporary directory, so that it can be stopped and started again on the same port and data.
 *
 * `ensureRedisServer()` installs Debian's `redis-server` package with apt-get when running as
 * root, and otherwise fails naming the package: a test never skips silently.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import { createClient } from "redis";
import tls from "node:tls";
import os from "node:os";
import path from "node:path";
import { ensurePrograms, freePort } from "../../../../test-support/system";

const PROGRAM = "redis-server";
const START_TIMEOUT_MS = 10_000;

/** The path of `redis-server`, installing Debian's package first if needed and possible. */
export function ensureRedisServer(): string {
  return ensurePrograms([{ program: PROGRAM, debianPackage: "redis-server" }]).get(PROGRAM)!;
}

export interface RedisServerOptions {
  /** Append-only persistence (fsync on every write) in a temporary directory. */
  appendOnly?: boolean;
}

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** The data directory (append-only file), when `appendOnly` was asked. */
  readonly dir: string | undefined;
  /** Whether the server process is running. */
  readonly running: boolean;
  /** Stops the server: `SIGTERM` (Redis shuts down cleanly) or `SIGKILL` (a crash). */
  stop(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** Starts it again on the same port and directory. */
  start(): Promise<void>;
  /** Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the process: connections stay open, nothing answers. */
  signal(signal: "SIGSTOP" | "SIGCONT"): void;
  /** Stops it and removes its directory. */
  dispose(): Promise<void>;
}

/** Starts `redis-server` on a free loopback port. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const program = ensureRedisServer();
  const dir = options.appendOnly
    ? fs.mkdtempSync(
        path.join(fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir(), "sluice-redis-"),
      )
    : undefined;
  let port = 0;
  let child: ChildProcess | undefined;

  const args = (): string[] => [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    dir === undefined ? "no" : "yes",
    ...(dir === undefined ? [] : ["--dir", dir, "--appendfsync", "always"]),
    "--daemonize",
    "no",
    "--loglevel",
    "warning",
  ];

  const launch = async (): Promise<void> => {
    const proc = spawn(program, args(), { stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    let output = "";
    proc.stdout!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    proc.stderr!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`redis-server exited at start (${args().join(" ")}):\n${output}`);
      }
      if (await answersPing(() => net.connect(port, "127.0.0.1"))) return;
      if (Date.now() > deadline) {
        proc.kill("SIGKILL");
        throw new Error(
          `redis-server did not answer PING within ${START_TIMEOUT_MS} ms:\n${output}`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  const stop = async (signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> => {
    const proc = child;
    child = undefined;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill("SIGCONT"); // in case it is frozen
    proc.kill(signal);
    await exited;
  };

  // The port is free when asked; another process could take it first, so retry a few times.
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (err) {
      await stop("SIGKILL");
      if (attempt >= 2) throw err;
    }
  }

  // If the test process dies without dispose(), take the server with it.
  const killOnExit = () => child?.kill("SIGKILL");
  process.once("exit", killOnExit);

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    stop,
    start: launch,
    signal: (signal) => {
      child?.kill(signal);
    },
    dispose: async () => {
      process.off("exit", killOnExit);
      await stop("SIGKILL");
      if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Sends one inline `PING` on a socket of `connect`'s and resolves whether Redis answered it:
 * `+PONG`, or (a server with a password) `-NOAUTH`, which says as much that it is up.
 */
export function answersPing(connect: () => net.Socket): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect();
    let reply = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on("error", () => done(false));
    socket.once(socket instanceof tls.TLSSocket ? "secureConnect" : "connect", () =>
      socket.write("PING\r\n"),
    );
    socket.on("data", (chunk: Buffer) => {
      reply += chunk.toString();
      if (reply.includes("\r\n")) done(/^(\+PONG|-NOAUTH)/.test(reply));
    });
  });
}

/** Runs one command on a short-lived connection of its own (none stays open meanwhile). */
export async function adminCommand(
  options: Parameters<typeof createClient>[0],
  args: string[],
): Promise<unknown> {
  const client = createClient(options);
  client.on("error", () => undefined);
  await client.connect();
  try {
    return await client.sendCommand(args);
  } finally {
    client.destroy();
  }
}
