/**
 * Profiling aid for the fan-out (not part of `pnpm bench`): server CPU per 1,000 deliveries of
 * some variants side by side, alternating, with an optional V8 CPU profile of each server.
 *
 *   node --import tsx src/profile.ts [--clients 10000] [--events 200] [--rounds 3]
 *        [--variants raw-socket,sluice] [--cpu-prof DIR]
 *
 * PERF_DIR=dir records each server with `perf` during the measured fan-out (see startPerf).
 *
 * This process is the load: it opens the connections on raw sockets and discards what it reads.
 * Each server runs in a child process (this file with `serve <variant>`).
 */
import { fork, type ChildProcess } from "node:child_process";
import net from "node:net";
import { parseArgs } from "node:util";
import { makePayload } from "./payload";
import { loadVariant } from "./servers";
import type { ServerVariantName } from "./protocol";

type Message =
  | { type: "ready"; port: number; path: string }
  | { type: "clients"; n: number }
  | { type: "done"; cpuMs: number; userMs: number; elapsedMs: number };

async function serve(name: ServerVariantName): Promise<void> {
  const variant = await (await loadVariant(name))(0);
  process.send!({ type: "ready", port: variant.port, path: variant.path });
  process.on("message", async (msg: { cmd: string; n?: number; events?: number }) => {
    if (msg.cmd === "clients") {
      while (variant.clients() < msg.n!) await new Promise((r) => setTimeout(r, 5));
      process.send!({ type: "clients", n: variant.clients() });
    } else if (msg.cmd === "fanout") {
      const profile = msg.events! >= 100 ? await startProfile() : undefined;
      const perf = msg.events! >= 100 ? await startPerf(name) : undefined;
      const start = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < msg.events!; i++) {
        variant.broadcast(makePayload(i));
        await new Promise((r) => setImmediate(r));
      }
      const used = process.cpuUsage(start);
      await profile?.(name);
      await perf?.();
      process.send!({
        type: "done",
        cpuMs: (used.user + used.system) / 1000,
        userMs: used.user / 1000,
        elapsedMs: performance.now() - t0,
      });
    } else if (msg.cmd === "exit") {
      await variant.close();
      process.exit(0);
    }
  });
}

/** With PROFILE_DIR set: a V8 CPU profile of the measured fan-out only (not the connecting). */
async function startProfile(): Promise<((name: string) => Promise<void>) | undefined> {
  const dir = process.env["PROFILE_DIR"];
  if (dir === undefined) return undefined;
  const { Session } = await import("node:inspector/promises");
  const { writeFileSync, mkdirSync } = await import("node:fs");
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 100 });
  await session.post("Profiler.start");
  return async (name) => {
    const { profile } = await session.post("Profiler.stop");
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/${name}-${Date.now()}.cpuprofile`, JSON.stringify(profile));
    session.disconnect();
  };
}

/**
 * With PERF_DIR set: `perf record` of this process during the measured fan-out, native frames and
 * the kernel's included (the children run with --perf-basic-prof-only-functions, so JIT frames
 * are named). Read with `perf report -i DIR/<variant>.data --no-children --sort sym`.
 */
async function startPerf(name: string): Promise<(() => Promise<void>) | undefined> {
  const dir = process.env["PERF_DIR"];
  if (dir === undefined) return undefined;
  const { spawn } = await import("node:child_process");
  const { mkdirSync } = await import("node:fs");
  mkdirSync(dir, { recursive: true });
  const perf = spawn(
    "perf",
    ["record", "-F", "1999", "-g", "-p", String(process.pid), "-o", `${dir}/${name}.data`],
    { stdio: "ignore" },
  );
  await new Promise((r) => setTimeout(r, 500)); // perf attaches
  return () =>
    new Promise((resolve) => {
      perf.once("exit", () => resolve());
      perf.kill("SIGINT");
    });
}

function next<T extends Message["type"]>(child: ChildProcess, type: T) {
  return new Promise<Extract<Message, { type: T }>>((resolve) => {
    const on = (msg: Message) => {
      if (msg.type === type) {
        child.off("message", on);
        resolve(msg as Extract<Message, { type: T }>);
      }
    };
    child.on("message", on);
  });
}

async function cell(
  name: string,
  clients: number,
  events: number,
  cpuProf: string | undefined,
): Promise<number> {
  const execArgv = [
    "--import",
    "tsx",
    "--expose-gc",
    ...(process.env["PERF_DIR"] ? ["--perf-basic-prof-only-functions"] : []),
  ];
  const env = cpuProf === undefined ? process.env : { ...process.env, PROFILE_DIR: cpuProf };
  const child = fork(__filename, ["serve", name], { execArgv, env });
  const { port, path } = await next(child, "ready");
  const sockets: net.Socket[] = [];
  for (let i = 0; i < clients; i++) {
    const socket = net.connect({
      port,
      host: "127.0.0.1",
      localAddress: `127.0.0.${2 + Math.floor(i / 5000)}`,
    });
    socket.resume(); // read and discard
    socket.on("error", () => undefined);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`);
    sockets.push(socket);
    if (i % 200 === 199) await new Promise((r) => setTimeout(r, 10));
  }
  child.send({ cmd: "clients", n: clients });
  await next(child, "clients");
  child.send({ cmd: "fanout", events: Math.ceil(events / 10) }); // warm-up
  await next(child, "done");
  child.send({ cmd: "fanout", events });
  const { cpuMs, userMs, elapsedMs } = await next(child, "done");
  console.log(
    `  ${name}: user ${((userMs / (clients * events)) * 1000).toFixed(2)} system ${(((cpuMs - userMs) / (clients * events)) * 1000).toFixed(2)} ms / 1k; ${elapsedMs.toFixed(0)} ms elapsed`,
  );
  child.send({ cmd: "exit" });
  await new Promise((r) => child.once("exit", r));
  for (const socket of sockets) socket.destroy();
  return (cpuMs / (clients * events)) * 1000;
}

async function main(): Promise<void> {
  if (process.argv[2] === "serve") return serve(process.argv[3] as ServerVariantName);
  const { values } = parseArgs({
    options: {
      clients: { type: "string", default: "10000" },
      events: { type: "string", default: "200" },
      rounds: { type: "string", default: "3" },
      variants: { type: "string", default: "raw-socket,sluice" },
      "cpu-prof": { type: "string" },
    },
  });
  const names = values.variants!.split(",");
  const results = new Map<string, number[]>(names.map((n) => [n, []]));
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const name of names) {
      const ms = await cell(
        name,
        Number(values.clients),
        Number(values.events),
        values["cpu-prof"],
      );
      results.get(name)!.push(ms);
      console.log(`round ${round + 1} ${name.padEnd(12)} ${ms.toFixed(2)} ms CPU / 1k deliveries`);
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const base = med(results.get(names[0]!)!);
  for (const [name, xs] of results) {
    console.log(
      `${name.padEnd(12)} median ${med(xs).toFixed(2)}  ×${(med(xs) / base).toFixed(2)} ${names[0]}`,
    );
  }
}

void main();
