import { Channel, Frame, sse, type SseStream } from "@sluice/express-sse";
import { endStreams, type Feed, type FeedContext, type Routes } from "./feed";

export interface ClientCountFeed extends Feed {
  /** Clients connected to `/api/client-count`: in every replica when the adapter is Redis. */
  readonly count: number;
  readonly channel: Channel;
}

/** At most this many `client-count` broadcasts per second and replica: a count, not a log. */
const PRESENCE_INTERVAL_MS = 100;

/**
 * `GET /api/client-count`: `event: client-count` with `{"count":N}`, sent to every client of this
 * stream (the joining one included) whenever the number of its clients changes — in every replica:
 * the clients subscribe to a channel on the app's adapter, whose presence counts them across
 * processes (`channel.count` and its coalesced `count` event; on Redis, a replica that dies drops
 * out within the adapter's `presenceTtl`). Nothing is ever published on the channel: it exists
 * for its presence.
 */
export function mountClientCount(
  routes: Routes,
  { sse: sseOptions, adapter, onChannelError }: FeedContext,
): ClientCountFeed {
  const events = sse(sseOptions);
  const channel = new Channel("client-count", {
    ...(adapter !== undefined ? { adapter } : {}),
    history: { max: 0 },
    presenceInterval: PRESENCE_INTERVAL_MS,
  });
  channel.on("error", onChannelError);
  /** This replica's clients, and the count each one was last sent (never the same twice). */
  const clients = new Map<SseStream, number>();

  const send = (stream: SseStream, count: number, frame: Frame) => {
    if (clients.get(stream) === count) return;
    clients.set(stream, count);
    stream.sendFrame(frame);
  };
  const frameOf = (count: number) =>
    Frame.event(JSON.stringify({ count }), { event: "client-count" });

  // Coalesced by the channel; framed once, written to every client of this replica.
  channel.on("count", (count) => {
    const frame = frameOf(count);
    for (const stream of clients.keys()) send(stream, count, frame);
  });
  channel.on("leave", (stream) => clients.delete(stream));

  routes.get("/api/client-count", events, (_req, res) => {
    const stream = res.sse;
    clients.set(stream, -1);
    void channel.subscribe(res);
    if (stream.closed) {
      clients.delete(stream); // HEAD request: headers only
      return;
    }
    // The count as known now: with the in-memory adapter it includes this client; on Redis it is
    // the total before this replica's change reached Redis (the `count` event follows at once).
    const count = channel.count;
    if (count > 0) send(stream, count, frameOf(count));
  });

  return {
    stream: "client-count",
    events,
    channel,
    get count() {
      return channel.count;
    },
    close: async () => {
      endStreams(events);
      await channel.close();
    },
  };
}
