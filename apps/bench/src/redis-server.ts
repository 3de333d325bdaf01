/**
 * A throwaway Redis for the cross-process scenario: `redis-server` on a free 127.0.0.1 port, no
 * persistence, killed by `stop()` (and, like every child, when the harness exits).
 */
import { spawn } from "node:child_process";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

const START_TIMEOUT = 10_000;

export interface RedisServer {
  url: string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves true once the server answers PING with PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let reply = "";
    socket.setTimeout(500, () => socket.destroy());
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (buf) => {
      reply += buf.toString("latin1");
      if (reply.includes("\r\n")) socket.end();
    });
    socket.on("error", () => {});
    socket.on("close", () => resolve(reply.startsWith("+PONG")));
  });
}

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  let exited: string | undefined;
  const gone = new Promise<void>((resolve) => {
    child.once("error", (err: NodeJS.ErrnoException) => {
      exited =
        err.code === "ENOENT"
          ? "redis-server was not found on the PATH: the cross-process scenario needs it " +
            "(e.g. `apt-get install redis-server`), or leave it out with --only"
          : `redis-server failed to start: ${err.message}`;
      resolve();
    });
    child.once("exit", (code, signal) => {
      exited ??= `redis-server exited (${signal ?? `code ${code}`})`;
      resolve();
    });
  });
  const killOnExit = (): void => {
    child.kill("SIGKILL");
  };
  process.once("exit", killOnExit);
  const stop = async (): Promise<void> => {
    process.off("exit", killOnExit);
    if (exited === undefined) child.kill("SIGKILL");
    await gone;
  };
  const deadline = Date.now() + START_TIMEOUT;
  while (!(await ping(port))) {
    if (exited !== undefined || Date.now() > deadline) {
      await stop();
      throw new Error(exited ?? `redis-server did not answer on port ${port} within 10 s`);
    }
    await sleep(20);
  }
  return { url: `redis://127.0.0.1:${port}`, stop };
}
