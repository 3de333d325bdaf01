/**
 * Runs Debian's nginx with the repository's own nginx/ configuration, for end-to-end tests.
 *
 * Every `*.conf` file of nginx/ is copied into a fresh temporary prefix, and only three texts of
 * nginx.conf are replaced: the upstream address and the two listen ports. Variants (the negative
 * controls) add their own edits. Every edit is an exact string replacement that must match exactly
 * once, so a test breaks loudly when the configuration drifts instead of testing something else.
 * The certificate is made by the repository's nginx/gen-cert.sh, as in the image.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { findProgram, freePort } from "../../../../test-support/system";

export const REPO_ROOT = path.resolve(__dirname, "..", "..", "..", "..");
export const NGINX_DIR = path.join(REPO_ROOT, "nginx");

/** The texts of nginx.conf that tests replace; if one changes, update it here and in compose. */
export const UPSTREAM_SERVER = "server demo:3000;";
export const HTTP_LISTEN = "listen 80;";
export const HTTPS_LISTEN = "listen 443 ssl http2;";

/** An exact replacement in one configuration file; `search` must occur exactly once. */
export interface ConfigEdit {
  file: string;
  search: string;
  replace: string;
}

/** Replaces the single occurrence of `search` in `text`; throws if it occurs zero or several times. */
export function replaceExactlyOnce(
  text: string,
  search: string,
  replace: string,
  where: string,
): string {
  const count = text.split(search).length - 1;
  if (count !== 1) {
    throw new Error(
      `Expected ${JSON.stringify(search)} exactly once in ${where}, found it ${count} times: ` +
        `the nginx configuration changed, update the test's replacements`,
    );
  }
  return text.replace(search, () => replace);
}

/** Reads every nginx/*.conf file. */
export function readConfigFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const name of fs.readdirSync(NGINX_DIR).sort()) {
    if (name.endsWith(".conf"))
      files.set(name, fs.readFileSync(path.join(NGINX_DIR, name), "utf8"));
  }
  if (!files.has("nginx.conf")) throw new Error(`No nginx.conf in ${NGINX_DIR}`);
  return files;
}

/** Applies `edits` to `files` (a copy), each an exact, single replacement. */
export function applyEdits(
  files: ReadonlyMap<string, string>,
  edits: readonly ConfigEdit[],
): Map<string, string> {
  const result = new Map(files);
  for (const edit of edits) {
    const text = result.get(edit.file);
    if (text === undefined) throw new Error(`No ${edit.file} in ${NGINX_DIR}`);
    result.set(
      edit.file,
      replaceExactlyOnce(text, edit.search, edit.replace, `nginx/${edit.file}`),
    );
  }
  return result;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.setTimeout(500);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
  });
}

export interface NginxOptions {
  /**
   * Port of the app on 127.0.0.1 that replaces the compose upstream `demo:3000`, or the ports of
   * several replicas (one `server` line each: what nginx makes of the compose name `demo` when
   * it resolves to the two replicas' addresses).
   */
  upstreamPort: number | readonly number[];
  /** Further exact edits (after the address and port substitutions), for the negative controls. */
  edits?: readonly ConfigEdit[];
}

export interface RunningNginx {
  httpPort: number;
  httpsPort: number;
  /** The temporary prefix holding the configuration, certificate, pid and temp directories. */
  prefix: string;
  /** The configuration files nginx runs with, after every edit. */
  files: ReadonlyMap<string, string>;
  /** What nginx wrote to stderr so far (its error log). */
  stderr(): string;
  /** The access log so far. */
  accessLog(): string;
  /** Fast shutdown (SIGTERM), waits for the exit, removes the prefix. Safe twice. */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
// Last resort if the test process exits without teardown: don't leave nginx behind. (SIGTERM,
// not SIGKILL: the master then stops its workers itself, after this process is gone.)
process.once("exit", () => {
  for (const child of running) child.kill("SIGTERM");
});

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Starts nginx on two free loopback ports in front of 127.0.0.1:`upstreamPort`, as a child process
 * (`daemon off`, so it is ours to stop), and resolves once both ports accept connections.
 *
 * As root, nginx's workers switch to the compiled-in default user (`nobody` on Debian; the image's
 * is `nginx`): the configuration has no `user` directive, so nothing here depends on which users
 * exist, and the prefix is made world-readable so those workers can reach their temp directories.
 * As another user, nginx stays that user and needs no privileges (the ports are above 1024).
 */
export async function startNginx(options: NginxOptions): Promise<RunningNginx> {
  // A free port can be taken by someone else between the probe and nginx's bind: try again.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (err) {
      if (attempt >= 3 || !String(err).includes("Address already in use")) throw err;
    }
  }
}

async function startOnce(options: NginxOptions): Promise<RunningNginx> {
  const nginx = findProgram("nginx");
  if (nginx === undefined) throw new Error("nginx is not installed (Debian package: nginx)");
  const httpPort = await freePort();
  let httpsPort = await freePort();
  while (httpsPort === httpPort) httpsPort = await freePort();

  const files = applyEdits(readConfigFiles(), [
    {
      file: "nginx.conf",
      search: UPSTREAM_SERVER,
      replace: (typeof options.upstreamPort === "number"
        ? [options.upstreamPort]
        : options.upstreamPort
      )
        .map((port) => `server 127.0.0.1:${port};`)
        .join("\n    "),
    },
    { file: "nginx.conf", search: HTTP_LISTEN, replace: `listen 127.0.0.1:${httpPort};` },
    {
      file: "nginx.conf",
      search: HTTPS_LISTEN,
      replace: HTTPS_LISTEN.replace("443", `127.0.0.1:${httpsPort}`),
    },
    ...(options.edits ?? []),
  ]);

  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), "sluice-nginx-"));
  fs.chmodSync(prefix, 0o755);
  for (const [name, text] of files) fs.writeFileSync(path.join(prefix, name), text);
  // The repository's own script makes the certificate, as it does in the image.
  const cert = spawnSync("sh", [path.join(NGINX_DIR, "gen-cert.sh"), path.join(prefix, "certs")], {
    encoding: "utf8",
    timeout: 30_000,
  });
  if (cert.status !== 0) {
    fs.rmSync(prefix, { recursive: true, force: true });
    throw new Error(`gen-cert.sh failed (${String(cert.status)}): ${cert.stdout}${cert.stderr}`);
  }

  // -p: relative paths (pid, temp dirs) resolve here; -e stderr: the error log before the
  // configuration is read (Debian's default already; the image's is a file).
  // stdout is a file: the access log goes to /dev/stdout, which nginx opens by name, and that
  // fails on the socket node would make for a pipe (ENXIO).
  const accessLog = fs.openSync(path.join(prefix, "access.log"), "a");
  const child = spawn(
    nginx,
    [
      "-p",
      `${prefix}/`,
      "-c",
      path.join(prefix, "nginx.conf"),
      "-e",
      "stderr",
      "-g",
      "daemon off;",
    ],
    { stdio: ["ignore", accessLog, "pipe"] },
  );
  fs.closeSync(accessLog);
  running.add(child);
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-64 * 1024);
  });
  let exited = false;
  child.once("exit", () => {
    exited = true;
    running.delete(child);
  });

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (!exited) {
      child.kill("SIGTERM"); // fast shutdown: the master stops its workers, then exits
      if (!(await waitForExit(child, STOP_TIMEOUT_MS))) {
        child.kill("SIGKILL");
        await waitForExit(child, STOP_TIMEOUT_MS);
      }
    }
    fs.rmSync(prefix, { recursive: true, force: true });
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`nginx exited at start (code ${String(child.exitCode)}):\n${stderr}`);
    }
    if ((await canConnect(httpPort)) && (await canConnect(httpsPort))) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`nginx did not accept connections within ${START_TIMEOUT_MS} ms:\n${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }

  const accessLogText = (): string => {
    try {
      return fs.readFileSync(path.join(prefix, "access.log"), "utf8");
    } catch {
      return ""; // after stop()
    }
  };
  return {
    httpPort,
    httpsPort,
    prefix,
    files,
    stderr: () => stderr,
    accessLog: accessLogText,
    stop,
  };
}
