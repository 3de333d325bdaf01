/**
 * A client that runs in another process and speaks JSON lines (the Python client, Node's own
 * `EventSource` under a flag): `{"cmd":"open","sid":1,"url":…}` and `{"cmd":"close","sid":1}` on
 * its stdin; `{"ready":true}` once, then `{"sid":1,"kind":…}` reports on its stdout.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import readline from "node:readline";
import type { ClientAdapter, ClientName, ClientSession, Observation } from "./types";

/** How long a child may take to start, or to confirm a close. */
const CHILD_TIMEOUT_MS = 15_000;

export function childProcessClient(options: {
  name: ClientName;
  description: string;
  command: () => string;
  args: readonly string[];
}): ClientAdapter {
  let child: ChildProcessWithoutNullStreams | undefined;
  let stderr = "";
  let exited: string | undefined;
  let nextSid = 1;
  const logs = new Map<number, Observation[]>();
  const closing = new Map<number, () => void>();
  let ready: (() => void) | undefined;

  const fail = (what: string): Error =>
    new Error(`${options.description}: ${what}${stderr === "" ? "" : `; its stderr:\n${stderr}`}`);

  const send = (command: object): void => {
    if (child === undefined || exited !== undefined)
      throw fail(`not running (${exited ?? "not started"})`);
    child.stdin.write(`${JSON.stringify(command)}\n`);
  };

  return {
    name: options.name,
    description: options.description,
    async start() {
      const proc = spawn(options.command(), [...options.args], { stdio: ["pipe", "pipe", "pipe"] });
      child = proc;
      proc.stderr.setEncoding("utf8");
      proc.stderr.on("data", (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
      proc.on("exit", (code, signal) => (exited = `exited with ${signal ?? code}`));
      proc.on("error", (error) => (exited = error.message));
      readline.createInterface({ input: proc.stdout }).on("line", (line) => {
        const message = JSON.parse(line) as { ready?: true; sid?: number } & Record<
          string,
          unknown
        >;
        if (message.ready === true) return ready?.();
        const sid = message.sid as number;
        if (message["kind"] === "closed") return closing.get(sid)?.();
        const { sid: _sid, ...observation } = message;
        logs.get(sid)?.push(observation as unknown as Observation);
      });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(fail("did not start")), CHILD_TIMEOUT_MS);
        ready = () => {
          clearTimeout(timer);
          resolve();
        };
        proc.on("exit", () => {
          clearTimeout(timer);
          reject(fail(exited ?? "exited"));
        });
      });
    },
    async stop() {
      const proc = child;
      if (proc === undefined || exited !== undefined) return;
      const gone = new Promise<void>((resolve) => proc.on("exit", () => resolve()));
      proc.stdin.end();
      const timer = setTimeout(() => proc.kill("SIGKILL"), CHILD_TIMEOUT_MS);
      await gone;
      clearTimeout(timer);
    },
    async open(url, listen): Promise<ClientSession> {
      const sid = nextSid++;
      const log: Observation[] = [];
      logs.set(sid, log);
      send({ cmd: "open", sid, url, listen });
      return {
        log,
        close: async () => {
          if (!logs.has(sid)) return;
          const closed = new Promise<void>((resolve, reject) => {
            const timer = setTimeout(
              () => reject(fail(`source ${sid} did not close`)),
              CHILD_TIMEOUT_MS,
            );
            closing.set(sid, () => {
              clearTimeout(timer);
              resolve();
            });
          });
          send({ cmd: "close", sid });
          await closed;
          closing.delete(sid);
          logs.delete(sid);
        },
      };
    },
  };
}
