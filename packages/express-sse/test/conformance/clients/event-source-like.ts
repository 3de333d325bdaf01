import type { ClientSession, Observation } from "./types";

/** The part of the WHATWG `EventSource` interface the adapters use. */
export interface EventSourceLike {
  readonly readyState: number;
  // `any`: each implementation types its events its own way (a DOM MessageEvent, undici's, the
  // eventsource package's); the listeners below read only `data`, `lastEventId` and `message`.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  addEventListener(type: string, listener: (event: any) => void): void;
  close(): void;
}

/**
 * Records what an `EventSource` (any implementation of the WHATWG interface) fires: `open`,
 * `error` with the `readyState` at that moment (and a message where the implementation gives
 * one), and the type, data and `lastEventId` of every event of the `listen` types.
 */
export function recordEventSource(
  source: EventSourceLike,
  listen: readonly string[],
): ClientSession {
  const log: Observation[] = [];
  let told = source.readyState;
  source.addEventListener("open", () => {
    told = source.readyState;
    log.push({ kind: "open" });
  });
  source.addEventListener("error", (event: { message?: unknown }) => {
    const message = typeof event.message === "string" ? event.message : undefined;
    told = source.readyState;
    log.push({
      kind: "error",
      readyState: source.readyState,
      ...(message === undefined ? {} : { message }),
    });
  });
  // A source that closes itself without an event would otherwise look like one still trying.
  const poll = setInterval(() => {
    if (source.readyState === told) return;
    told = source.readyState;
    log.push({ kind: "state", readyState: told });
  }, 10);
  for (const type of listen) {
    source.addEventListener(type, (event: { data: string; lastEventId: string }) =>
      log.push({ kind: "event", type, data: event.data, lastEventId: event.lastEventId }),
    );
  }
  return {
    log,
    close: async () => {
      clearInterval(poll);
      source.close();
    },
  };
}
