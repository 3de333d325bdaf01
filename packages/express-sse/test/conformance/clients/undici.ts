/** undici's `EventSource`: the implementation Node's own (`--experimental-eventsource`) ships. */
import { EventSource } from "undici";
import { recordEventSource } from "./event-source-like";
import type { ClientAdapter } from "./types";
import { versionOf } from "./versions";

export const undiciClient: ClientAdapter = {
  name: "undici",
  description: `undici ${versionOf("undici")} EventSource`,
  start: async () => undefined,
  stop: async () => undefined,
  open: async (url, listen) => recordEventSource(new EventSource(url), listen),
};
