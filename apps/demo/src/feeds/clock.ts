import { sse } from "@sluice/express-sse";
import { endStreams, type Feed, type FeedContext, type Routes } from "./feed";

export interface ClockOptions extends FeedContext {
  /** Milliseconds between `time` events. */
  tickMs: number;
}

/**
 * `GET /api/time`: `event: time` with an ISO timestamp as a JSON string (`"2026-…Z"`, quotes
 * included), at once and then every `tickMs`. One interval per client, cleared when it leaves.
 */
export function mountClock(routes: Routes, { tickMs, sse: sseOptions }: ClockOptions): Feed {
  const events = sse(sseOptions);
  routes.get("/api/time", events, (_req, res) => {
    const send = () => res.sse.send(JSON.stringify(new Date().toISOString()), { event: "time" });
    send();
    const timer = setInterval(send, tickMs);
    res.sse.onClose(() => clearInterval(timer));
  });
  return { stream: "time", events, close: () => endStreams(events) };
}
