import { Frame, sse, type SseStream } from "@sluice/express-sse";
import { endStreams, type Feed, type FeedContext, type Routes } from "./feed";

export interface ClientCountFeed extends Feed {
  /** Clients connected to `/api/client-count` now. */
  readonly count: number;
}

/**
 * `GET /api/client-count`: `event: client-count` with `{"count":N}`, sent to every client of this
 * stream (the joining one included) whenever a client joins or leaves it.
 */
export function mountClientCount(
  routes: Routes,
  { sse: sseOptions }: FeedContext,
): ClientCountFeed {
  const events = sse(sseOptions);
  const clients = new Set<SseStream>();

  // Joins and leaves in the same tick are coalesced into one broadcast: when a shutdown ends a
  // thousand streams at once, that is one (empty) broadcast instead of a thousand.
  let scheduled = false;
  const broadcast = () => {
    scheduled = false;
    if (clients.size === 0) return;
    // Framed once, written to every client (the library's build-once, send-to-many path).
    const frame = Frame.event(JSON.stringify({ count: clients.size }), { event: "client-count" });
    for (const client of clients) client.sendFrame(frame);
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(broadcast);
  };

  routes.get("/api/client-count", events, (_req, res) => {
    const stream = res.sse.start();
    if (stream.closed) return; // HEAD request: headers only
    clients.add(stream);
    stream.onClose(() => {
      clients.delete(stream);
      schedule();
    });
    schedule();
  });

  return {
    stream: "client-count",
    events,
    get count() {
      return clients.size;
    },
    close: () => endStreams(events),
  };
}
