/**
 * Node's own `EventSource`: a global from Node 22 on behind `--experimental-eventsource` (it is
 * undici's). Node 20 has none: `nodeEventSource()` says so, and the matrix asserts it.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { childProcessClient } from "./child";

export type NodeEventSource =
  { available: true; flags: string[] } | { available: false; why: string; stderr: string };

/** Whether this Node has an `EventSource`, and with which flags. */
export function nodeEventSource(): NodeEventSource {
  const probe = (flags: string[]) =>
    spawnSync(process.execPath, [...flags, "-p", "typeof EventSource"], { encoding: "utf8" });
  const plain = probe([]);
  if (plain.stdout.trim() === "function") return { available: true, flags: [] };
  const flagged = probe(["--experimental-eventsource"]);
  if (flagged.stdout.trim() === "function") {
    return { available: true, flags: ["--experimental-eventsource"] };
  }
  return {
    available: false,
    why: `typeof EventSource is "${plain.stdout.trim()}", and --experimental-eventsource gives exit code ${flagged.status}`,
    stderr: flagged.stderr,
  };
}

export function nodeClient(flags: readonly string[]) {
  return childProcessClient({
    name: "node",
    description: `Node ${process.versions.node} EventSource${flags.length > 0 ? ` (${flags.join(" ")})` : ""}`,
    command: () => process.execPath,
    args: [...flags, path.join(__dirname, "node-eventsource-client.mjs")],
  });
}
