/** The `eventsource` package: the EventSource most Node code uses (it runs on Node's `fetch`). */
import { EventSource } from "eventsource";
import { recordEventSource } from "./event-source-like";
import type { ClientAdapter } from "./types";
import { versionOf } from "./versions";

export const eventsourceClient: ClientAdapter = {
  name: "eventsource",
  description: `eventsource ${versionOf("eventsource")} (on Node ${process.versions.node}'s fetch)`,
  start: async () => undefined,
  stop: async () => undefined,
  open: async (url, listen) => recordEventSource(new EventSource(url), listen),
};
