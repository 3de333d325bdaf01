/**
 * maxConnections: with `sse({ maxConnections: N })` and N streams open, every further request
 * gets `503` with `Retry-After` and no stream, round after round, while the N keep receiving
 * every event published before, during and after the rejections, exactly once and in order.
 * Streams that close free their places: new ones are admitted again, and no more than N.
 */
import express from "express";
import { Channel, sse } from "@sluice/express-sse";
import { LoadClient, eventData } from "../src/load-client";
import { heapUsed } from "../src/memory";
import { record } from "../src/record";
import { resourcesLeftOpen, settledResources } from "../src/resources";
import { scaled } from "../src/scale";
import {
  closeAllServers,
  listen,
  sleep,
  waitFor,
} from "../../packages/express-sse/test/helpers/server";

const MAX = 50;
/** Attempts past the limit in each round, all at once. */
const EXTRA = 50;
const ROUNDS = scaled({ full: 200, short: 20 });
/** Streams closed and replaced in each round; the other MAX - CHURN stay open throughout. */
const CHURN = 10;
/** `sse({ retry })`: 2,000 ms, so `Retry-After: 2` (seconds, rounded up). */
const RETRY_MS = 2000;
const PUBLISH_EVERY_MS = 2;
const REJECTION_TEXT = "Too many open event streams; retry later.\n";

afterAll(closeAllServers);

test(`maxConnections ${MAX}: ${ROUNDS} rounds of ${EXTRA} attempts past the limit get 503 + Retry-After; the ${MAX} streams miss nothing`, async () => {
  const resourcesBefore = await settledResources();
  const heapBefore = await heapUsed();

  const middleware = sse({ maxConnections: MAX, retry: RETRY_MS });
  const channel = new Channel("max-connections", { history: { max: 100 } });
  let joined = 0;
  let mostStreams = 0;
  channel.on("join", () => {
    joined++;
    mostStreams = Math.max(mostStreams, middleware.streams.size);
  });
  const app = express();
  app.use(middleware);
  app.get("/events", (_req, res) => void channel.subscribe(res));
  const { port, close } = await listen(app);

  // Every client and the publisher are stopped in `finally`, so that a failing check cannot leave
  // sockets and timers behind (jest would wait for them forever).
  const everyClient: LoadClient[] = [];
  const open = async (count: number): Promise<LoadClient[]> => {
    const clients = Array.from({ length: count }, () => new LoadClient(port, "/events"));
    everyClient.push(...clients);
    await Promise.all(clients.map((client) => client.opened));
    return clients;
  };

  let published = 0;
  let publishing = true;
  let publisher: Promise<void> | undefined;
  let lost: number;
  let duplicates: number;
  let stats: ReturnType<typeof middleware.stats>;
  let steadyIntact: boolean;
  let rejected = 0;
  const badRejections: string[] = [];
  const retired: LoadClient[] = [];
  try {
    // The first MAX streams: MAX - CHURN stay for the whole case, CHURN are replaced every round.
    const first = await open(MAX);
    expect(first.map((client) => client.status)).toEqual(Array(MAX).fill(200));
    await waitFor(() => channel.size === MAX, { what: `${MAX} subscribers` });
    const steady = first.slice(0, MAX - CHURN);
    let rotating = first.slice(MAX - CHURN);

    // A steady publisher for the whole case: before, during and after every round of rejections.
    publisher = (async () => {
      while (publishing) {
        void channel.publish(eventData(published++));
        mostStreams = Math.max(mostStreams, middleware.streams.size);
        await sleep(PUBLISH_EVERY_MS);
      }
    })();
    await sleep(50);

    for (let round = 0; round < ROUNDS; round++) {
      // Past the limit: each gets a complete 503 with Retry-After, and nothing of a stream.
      const extra = await open(EXTRA);
      await waitFor(() => extra.every((c) => c.complete || c.ended), {
        what: "every rejection's body",
      });
      for (const client of extra) {
        const looksRight =
          client.status === 503 &&
          client.headers["retry-after"] === String(RETRY_MS / 1000) &&
          client.headers["content-type"] === "text/plain; charset=utf-8" &&
          client.complete &&
          client.body === REJECTION_TEXT &&
          client.events === 0;
        if (looksRight) rejected++;
        else
          badRejections.push(
            `round ${round}: ${client.status} ${JSON.stringify(client.headers)} ${JSON.stringify(client.body)}`,
          );
        client.close();
      }
      expect(channel.size).toBe(MAX);

      // Some leave; once the server has noticed, as many new ones are admitted, and no more.
      for (const client of rotating) client.close();
      retired.push(...rotating);
      await waitFor(() => middleware.streams.size === MAX - CHURN, {
        what: `the server to notice ${CHURN} streams closing`,
      });
      rotating = await open(CHURN);
      for (const client of rotating) expect(client.status).toBe(200);
      await waitFor(() => channel.size === MAX, { what: `${MAX} subscribers again` });
      await sleep(20);
    }
    await sleep(50);
    publishing = false;
    await publisher;
    const current = [...steady, ...rotating];
    await waitFor(() => current.every((client) => client.lastSeq === published - 1), {
      what: `every open stream to receive all ${published} events`,
      timeout: 10_000,
    }).catch(() => undefined); // reported below
    await sleep(50); // a duplicate would arrive now

    // The steady ones got every event; every replaced one, every event while it was open.
    lost =
      steady.reduce((sum, client) => sum + published - (client.events - client.duplicates), 0) +
      [...retired, ...rotating].reduce((sum, client) => sum + client.missing, 0) +
      rotating.reduce((sum, client) => sum + published - 1 - client.lastSeq, 0);
    duplicates = [...steady, ...retired, ...rotating].reduce(
      (sum, client) => sum + client.duplicates,
      0,
    );
    stats = middleware.stats();
    steadyIntact = steady.every((client) => client.firstSeq === 0 && !client.ended);
  } finally {
    publishing = false;
    await publisher;
    for (const client of everyClient) client.close();
    // Closed clients would otherwise still count in heapAfter (12,000 of them at full scale).
    everyClient.length = 0;
    retired.length = 0;
  }
  await waitFor(() => channel.size === 0 && middleware.streams.size === 0, {
    what: "every stream to close",
  });
  await channel.close();
  await close();
  const heapAfter = await heapUsed();
  const leftOpen = await resourcesLeftOpen(resourcesBefore);

  record({
    case: "max connections",
    load: `${MAX} streams at maxConnections ${MAX}, ${ROUNDS} rounds of ${EXTRA} more + ${CHURN} replaced, ${published.toLocaleString("en-US")} events`,
    faults: 0,
    badInputs: ROUNDS * EXTRA,
    lost,
    heapBefore,
    heapAfter,
    notes: `${rejected} x 503 + Retry-After: ${RETRY_MS / 1000}; ${joined} streams admitted, never more than ${mostStreams} open`,
  });

  expect(badRejections).toEqual([]);
  expect(rejected).toBe(ROUNDS * EXTRA);
  expect(stats.rejected).toBe(ROUNDS * EXTRA);
  expect(stats.opened).toBe(MAX + ROUNDS * CHURN);
  expect(joined).toBe(MAX + ROUNDS * CHURN); // a rejected request never reached the channel
  expect(mostStreams).toBeLessThanOrEqual(MAX);
  expect(lost).toBe(0);
  expect(duplicates).toBe(0);
  expect(steadyIntact).toBe(true);
  expect(channel.size).toBe(0);
  expect(middleware.streams.size).toBe(0);
  expect(leftOpen).toBe("");
  // Nothing per request stays behind: 12,000 requests at full scale, so even 700 bytes each would
  // pass the bound. What does grow is JIT code and first-use caches: 2-3 MB, at any scale.
  expect(heapAfter - heapBefore).toBeLessThan(8 * 2 ** 20);
});
