import { sse } from "@sluice/express-sse";
import { endStreams, type Feed, type FeedContext, type Routes } from "./feed";

const DEMO_EVENTS = Array.from({ length: 10 }, (_, i) => `demo${i + 1}`);

/**
 * `GET /sse`: ten unnamed events `demo1` … `demo10`, then the server ends the stream. (A browser's
 * `EventSource` would reconnect and replay them, so the page closes it after `demo10`.)
 */
export function mountDemo(routes: Routes, { sse: sseOptions }: FeedContext): Feed {
  const events = sse(sseOptions);
  routes.get("/sse", events, async (_req, res) => {
    await res.sse.pipe(DEMO_EVENTS, { closeOnEnd: true });
  });
  return { stream: "sse", events, close: () => endStreams(events) };
}
