import { Frame, sse, type SseStream } from "@sluice/express-sse";
import { endStreams, type Feed, type FeedContext, type Routes } from "./feed";

/** `event: price` data. */
export interface PricePoint {
  /** Epoch milliseconds. */
  t: number;
  price: number;
}

export interface TickerOptions extends FeedContext {
  /** Milliseconds between prices (100: ten a second). */
  intervalMs: number;
}

export interface TickerFeed extends Feed {
  /** `true` while the shared generator timer runs, i.e. while someone is watching. */
  readonly running: boolean;
  /** Clients connected now. */
  readonly clients: number;
}

const START_PRICE = 100;

/**
 * `GET /api/ticker`: a simulated price (a random walk) as `event: price`, `{"t","price"}`, ten a
 * second. One generator timer shared by every client: it starts when the first client joins and
 * stops when the last one leaves. A joining client gets the current price at once, so its chart
 * starts without waiting for the next tick.
 */
export function mountTicker(
  routes: Routes,
  { intervalMs, sse: sseOptions }: TickerOptions,
): TickerFeed {
  const events = sse(sseOptions);
  const clients = new Set<SseStream>();
  let timer: NodeJS.Timeout | undefined;
  let price = START_PRICE;

  const tick = () => {
    price = nextPrice(price);
    // One serialization and one frame per tick, written to every client.
    const frame = Frame.event(JSON.stringify({ t: Date.now(), price } satisfies PricePoint), {
      event: "price",
    });
    for (const client of clients) client.sendFrame(frame);
  };
  const stop = () => {
    clearInterval(timer);
    timer = undefined;
  };

  routes.get("/api/ticker", events, (_req, res) => {
    const stream = res.sse.start();
    if (stream.closed) return; // HEAD request: headers only
    clients.add(stream);
    stream.onClose(() => {
      clients.delete(stream);
      if (clients.size === 0) stop();
    });
    stream.send({ t: Date.now(), price } satisfies PricePoint, { event: "price" });
    if (timer === undefined) {
      timer = setInterval(tick, intervalMs);
      timer.unref(); // the clients' sockets keep the process alive, not this timer
    }
  });

  return {
    stream: "ticker",
    events,
    get running() {
      return timer !== undefined;
    },
    get clients() {
      return clients.size;
    },
    close() {
      stop();
      endStreams(events);
    },
  };
}

/**
 * One step of a geometric random walk (about 0.2 % per step) with a gentle pull back towards the
 * start price, so the demo never drifts to 0 or to the moon. Rounded to cents.
 */
export function nextPrice(price: number, random: () => number = Math.random): number {
  const shock = gaussian(random) * 0.002;
  const pull = 0.002 * Math.log(START_PRICE / price);
  return Math.round(price * Math.exp(shock + pull) * 100) / 100;
}

/** A standard normal variate (Box-Muller). */
function gaussian(random: () => number): number {
  const u = 1 - random(); // (0, 1]: log(0) would be -Infinity
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}
