/**
 * Test support shared by the workspace's suites (the demo's, @sluice/redis's, the soak suite):
 * makes sure the system programs a suite needs are installed, installing the missing ones with
 * apt-get when it can (root on Debian), and otherwise failing with an error that names each
 * missing program and the Debian package that provides it. It never skips a test silently. Also
 * `freePort()`, for the servers the suites start on loopback.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import net, { type AddressInfo } from "node:net";
import path from "node:path";

export interface ProgramRequirement {
  /** Executable name looked up on PATH (and in /usr/sbin and /sbin, where Debian puts nginx). */
  program: string;
  /** The Debian package that provides it. */
  debianPackage: string;
}

/** The outside world, injectable so that the logic can be unit-tested without installing anything. */
export interface SystemDeps {
  /** The program's absolute path, or `undefined` if it is not installed. */
  findProgram(program: string): string | undefined;
  /** Whether this process runs as root. */
  isRoot(): boolean;
  /** Runs a command to completion; throws (with its output) if it fails. */
  run(command: string, args: readonly string[]): void;
  /** Reports what is being done (to stderr by default: installing can take minutes). */
  log(message: string): void;
}

const SYSTEM_DIRS = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/** Looks `program` up on PATH, then in the sbin directories a non-login PATH may lack. */
export function findProgram(program: string): string | undefined {
  const dirs = [...(process.env["PATH"] ?? "").split(path.delimiter), ...SYSTEM_DIRS];
  for (const dir of dirs) {
    if (dir === "") continue;
    const candidate = path.join(dir, program);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Bounded: a stuck apt-get (a held lock, a dead mirror) must fail the run, not hang it. */
const APT_TIMEOUT_MS = 20 * 60_000;

function run(command: string, args: readonly string[]): void {
  const result = spawnSync(command, args, {
    encoding: "utf8",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 64 * 1024 * 1024,
    timeout: APT_TIMEOUT_MS,
  });
  if (result.error !== undefined || result.status !== 0) {
    const output = `${result.stdout ?? ""}${result.stderr ?? ""}`.trim().split("\n").slice(-30);
    const why =
      result.error !== undefined
        ? result.error.message
        : result.signal !== null
          ? `killed by ${result.signal}`
          : `exit code ${String(result.status)}`;
    throw new Error(`\`${[command, ...args].join(" ")}\` failed (${why}):\n${output.join("\n")}`);
  }
}

export const defaultSystemDeps: SystemDeps = {
  findProgram,
  isRoot: () => process.getuid?.() === 0,
  run,
  log: (message) => process.stderr.write(`${message}\n`),
};

/** `apt-get update` runs at most once per process, however many calls need it. */
let aptUpdated = false;

/** For the unit tests: forget that `apt-get update` ran. */
export function resetAptUpdatedForTests(): void {
  aptUpdated = false;
}

/**
 * Returns each program's absolute path, installing missing ones with
 * `apt-get install -y --no-install-recommends` (after one `apt-get update`) when running as root
 * where apt-get exists. Throws if a program is still missing, naming it and its package.
 */
export function ensurePrograms(
  requirements: readonly ProgramRequirement[],
  deps: SystemDeps = defaultSystemDeps,
): Map<string, string> {
  const missing = requirements.filter((r) => deps.findProgram(r.program) === undefined);
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((r) => r.debianPackage))];
    const list = missing.map((r) => `${r.program} (Debian package: ${r.debianPackage})`).join(", ");
    const aptGet = deps.findProgram("apt-get");
    if (!deps.isRoot() || aptGet === undefined) {
      throw new Error(
        `Missing programs the tests need: ${list}. ` +
          `${aptGet === undefined ? "There is no apt-get here" : "Not running as root"}, so the ` +
          `tests cannot install them; install them with: ` +
          `sudo apt-get install -y --no-install-recommends ${packages.join(" ")}`,
      );
    }
    deps.log(
      `Missing ${list}: installing ${packages.join(" ")} with apt-get (once; this can take a few minutes)`,
    );
    // Wait for a dpkg lock held by another apt run instead of failing at once.
    const lockWait = ["-o", "DPkg::Lock::Timeout=300"];
    if (!aptUpdated) {
      deps.run(aptGet, [...lockWait, "update"]);
      aptUpdated = true;
    }
    deps.run(aptGet, [...lockWait, "install", "-y", "--no-install-recommends", ...packages]);
    const stillMissing = missing.filter((r) => deps.findProgram(r.program) === undefined);
    if (stillMissing.length > 0) {
      throw new Error(
        `apt-get installed ${packages.join(" ")}, but these programs are still missing: ` +
          stillMissing.map((r) => `${r.program} (Debian package: ${r.debianPackage})`).join(", "),
      );
    }
    deps.log(`Installed ${packages.join(" ")}`);
  }
  const found = new Map<string, string>();
  for (const r of requirements) found.set(r.program, deps.findProgram(r.program) as string);
  return found;
}

/** A free TCP port on 127.0.0.1: bind port 0, read the port, close (free when asked). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
