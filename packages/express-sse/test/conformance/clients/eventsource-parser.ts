/**
 * `eventsource-parser` over Node's `fetch`, written as a new user writes it from that package's
 * README: fetch with `Accept` (and `Last-Event-ID` once there is one), decode, parse, and on the
 * end of the body wait for the retry delay and fetch again. The reconnection rules are the
 * spec's (a network error or the end of the body: reconnect; a status other than 200 or another
 * content type: fail for good), so what this row tests of the client is the parser and Node's
 * `fetch`, which sends the header.
 */
import { EventSourceParserStream } from "eventsource-parser/stream";
import { CLOSED, CONNECTING, OPEN, type ClientAdapter, type Observation } from "./types";
import { versionOf } from "./versions";

export const eventsourceParserClient: ClientAdapter = {
  name: "eventsource-parser",
  description: `eventsource-parser ${versionOf("eventsource-parser")} over Node ${process.versions.node}'s fetch`,
  start: async () => undefined,
  stop: async () => undefined,
  open: async (url) => {
    const log: Observation[] = [];
    const abort = new AbortController();
    let readyState = CONNECTING;
    let lastEventId = "";
    let retry = 3000;
    let wake: (() => void) | undefined;

    const run = async (): Promise<void> => {
      while (!abort.signal.aborted) {
        let failure: string | undefined;
        try {
          const headers: Record<string, string> = { Accept: "text/event-stream" };
          if (lastEventId !== "") headers["Last-Event-ID"] = lastEventId;
          const res = await fetch(url, { headers, cache: "no-store", signal: abort.signal });
          const type = res.headers.get("content-type") ?? "";
          if (
            res.status !== 200 ||
            type.split(";")[0]!.trim().toLowerCase() !== "text/event-stream"
          ) {
            await res.body?.cancel();
            readyState = CLOSED;
            log.push({ kind: "error", readyState, message: `HTTP ${res.status} ${type}` });
            return;
          }
          readyState = OPEN;
          log.push({ kind: "open" });
          const events = res
            .body!.pipeThrough(new TextDecoderStream())
            .pipeThrough(new EventSourceParserStream({ onRetry: (ms) => (retry = ms) }));
          const reader = events.getReader();
          for (;;) {
            const { done, value: event } = await reader.read();
            if (done) break;
            if (event.id !== undefined) lastEventId = event.id;
            log.push({
              kind: "event",
              type: event.event ?? "message",
              data: event.data,
              lastEventId,
            });
          }
        } catch (error) {
          if (abort.signal.aborted) return;
          failure = describeError(error);
        }
        if (abort.signal.aborted) return;
        readyState = CONNECTING;
        log.push({
          kind: "error",
          readyState,
          ...(failure === undefined ? {} : { message: failure }),
        });
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, retry);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    };
    const done = run();
    return {
      log,
      close: async () => {
        abort.abort();
        wake?.();
        await done;
      },
    };
  },
};

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return `${error.message}${cause}`;
}
