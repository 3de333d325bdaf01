/**
 * A Python client: the spec's EventSource algorithm written over the standard library's
 * http.client (sse_client.py), so a second HTTP stack and decoder read the same server. It sends
 * `Last-Event-ID` UTF-8 encoded, as the spec says.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { ensurePrograms } from "../../../../../test-support/system";
import { childProcessClient } from "./child";

let python: string | undefined;

/**
 * Debian's python3 (`/usr/bin/python3`, package python3) when there, else the one on PATH; either
 * way the client needs nothing beyond the standard library. Installed with apt-get when missing
 * (as root on Debian), or the run fails naming the package.
 */
function pythonPath(): string {
  if (python !== undefined) return python;
  const found = ensurePrograms([{ program: "python3", debianPackage: "python3" }]);
  const candidates = ["/usr/bin/python3", found.get("python3") as string];
  python = candidates.find((p) => spawnSync(p, ["-c", "import http.client"]).status === 0);
  if (python === undefined)
    throw new Error("python3 cannot import http.client (Debian package: python3)");
  return python;
}

export function pythonVersion(): string {
  return spawnSync(pythonPath(), ["--version"], { encoding: "utf8" }).stdout.trim();
}

export const pythonClient = childProcessClient({
  name: "python",
  description: "Python (the spec's algorithm over http.client)",
  command: pythonPath,
  args: ["-u", path.join(__dirname, "sse_client.py")],
});
