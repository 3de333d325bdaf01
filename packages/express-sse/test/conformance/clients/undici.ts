/** undici's `EventSource`: the implementation Node's own (`--experimental-eventsource`) ships. */
import { EventSource } from "undici";
import { recordEventSource } from "./event-source-like";
import type { ClientAdapter } from "./types";
import { versionOf } from "./versions";

/**
 * undici announces its EventSource as experimental (a process warning, code UNDICI-ES, on first
 * use). The matrix uses it on purpose, so that one notice is expected output: while this client
 * runs, it is held back; any other warning goes through as before.
 */
let restoreWarnings: (() => void) | undefined;

function holdBackExperimentalNotice(): () => void {
  const emitWarning = process.emitWarning;
  process.emitWarning = function (this: NodeJS.Process, ...args: Parameters<typeof emitWarning>) {
    const [warning, options] = args;
    const code = typeof options === "object" && options !== null ? options.code : undefined;
    if (code === "UNDICI-ES" && String(warning).startsWith("EventSource is experimental")) return;
    return emitWarning.apply(this, args);
  } as typeof emitWarning;
  return () => void (process.emitWarning = emitWarning);
}

export const undiciClient: ClientAdapter = {
  name: "undici",
  description: `undici ${versionOf("undici")} EventSource`,
  start: async () => void (restoreWarnings ??= holdBackExperimentalNotice()),
  stop: async () => {
    restoreWarnings?.();
    restoreWarnings = undefined;
  },
  open: async (url, listen) => recordEventSource(new EventSource(url), listen),
};
