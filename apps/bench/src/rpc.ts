/**
 * Request/reply over a child process's IPC channel, with a timeout on every call, and the
 * guarantee that every child started here is killed when the harness exits (normally, on an
 * error or on Ctrl+C). Children exit by themselves when the parent goes away.
 */
import { fork, type ChildProcess } from "node:child_process";
import type { CommandMap } from "./protocol";

interface Request {
  id: number;
  cmd: string;
  args: unknown;
}

type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

const live = new Set<ChildProcess>();
let hooked = false;

function killAll(): void {
  for (const child of live) child.kill("SIGKILL");
  live.clear();
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(130);
    });
  }
}

/** A child process started with `fork`, driven by typed commands. */
export class Worker<C extends CommandMap> {
  private _seq = 0;
  private readonly _pending = new Map<number, Pending>();
  private _exit: string | undefined = undefined;

  private constructor(
    readonly label: string,
    private readonly _child: ChildProcess,
  ) {
    _child.on("message", (message: Reply) => {
      const pending = this._pending.get(message.id);
      if (pending === undefined) return;
      this._pending.delete(message.id);
      clearTimeout(pending.timer);
      if (message.ok) pending.resolve(message.result);
      else pending.reject(new Error(`${label}: ${message.error}`));
    });
    _child.on("exit", (code, signal) => {
      live.delete(_child);
      this._exit = `${label} exited (${signal ?? `code ${code}`})`;
      for (const pending of this._pending.values()) {
        clearTimeout(pending.timer);
        pending.reject(new Error(this._exit));
      }
      this._pending.clear();
    });
  }

  /** Starts `file` (TypeScript, through tsx) with `args`; `execArgv` adds Node flags. */
  static spawn<C extends CommandMap>(
    label: string,
    file: string,
    args: string[],
    options: { cwd: string; execArgv?: string[]; env?: Record<string, string> },
  ): Worker<C> {
    hookExit();
    const child = fork(file, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      execArgv: ["--import", "tsx", ...(options.execArgv ?? [])],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    live.add(child);
    return new Worker<C>(label, child);
  }

  get alive(): boolean {
    return this._exit === undefined;
  }

  call<K extends keyof C & string>(cmd: K, args: C[K][0], timeoutMs: number): Promise<C[K][1]> {
    if (this._exit !== undefined) return Promise.reject(new Error(this._exit));
    const id = ++this._seq;
    return new Promise<C[K][1]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new Error(`${this.label}: "${cmd}" timed out after ${fmtSeconds(timeoutMs)}`));
      }, timeoutMs);
      this._pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      const request: Request = { id, cmd, args };
      this._child.send(request, (err) => {
        if (err === null) return;
        const pending = this._pending.get(id);
        if (pending === undefined) return;
        this._pending.delete(id);
        clearTimeout(timer);
        reject(new Error(`${this.label}: cannot send "${cmd}": ${err.message}`));
      });
    });
  }

  /** Kills the process (SIGKILL) and waits until it is gone. */
  async kill(): Promise<void> {
    if (this._exit !== undefined) return;
    const gone = new Promise<void>((resolve) => this._child.once("exit", () => resolve()));
    this._child.kill("SIGKILL");
    await gone;
  }
}

type Handlers<C extends CommandMap> = {
  [K in keyof C]: (args: C[K][0]) => C[K][1] | Promise<C[K][1]>;
};

/** The child's side: answers each request with its handler's result or error. */
export function serve<C extends CommandMap>(handlers: Handlers<C>): void {
  if (process.send === undefined) {
    console.error("This is a worker of the benchmark harness: run `pnpm bench` instead.");
    process.exit(2);
  }
  const send = process.send.bind(process);
  // The harness went away (crashed, killed): nothing is left to report to.
  process.on("disconnect", () => process.exit(0));
  process.on("message", (request: Request) => {
    const handler = handlers[request.cmd] as ((args: unknown) => unknown) | undefined;
    const reply = (message: Reply): void => {
      if (process.connected) send(message);
    };
    if (handler === undefined) {
      reply({ id: request.id, ok: false, error: `unknown command "${request.cmd}"` });
      return;
    }
    Promise.resolve()
      .then(() => handler(request.args))
      .then(
        (result) => reply({ id: request.id, ok: true, result }),
        (err: unknown) =>
          reply({
            id: request.id,
            ok: false,
            error: err instanceof Error ? err.message : String(err),
          }),
      );
  });
}

export function fmtSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}
