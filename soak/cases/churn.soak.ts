/**
 * Churn: connect/disconnect cycles through `sse()` and a Channel (with heartbeats on, a
 * per-client timer, the signal and a pending pipe — what a real handler holds) leave no heap, no
 * timers, no sockets and no listeners behind.
 */
import express from "express";
import http from "node:http";
import { Channel, sse } from "@sluice/express-sse";
import { activeResources, heapUsed } from "../src/memory";
import { record } from "../src/record";
import { scaled } from "../src/scale";
import { closeAllServers, listen, waitFor } from "../../packages/express-sse/test/helpers/server";

const CYCLES = scaled({ full: 20_000, short: 2_000 });
const PARALLEL = 50;

afterAll(closeAllServers);

/** Opens a stream, waits for its first bytes, then hangs up. */
function connectAndLeave(url: string, agent: http.Agent): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      res.once("data", () => {
        req.destroy();
        resolve();
      });
    });
    req.on("error", reject);
  });
}

test(`${CYCLES.toLocaleString("en-US")} connect/disconnect cycles leave no heap, timers or listeners`, async () => {
  const app = express();
  const middleware = sse({ heartbeat: 100 });
  const channel = new Channel("churn", { history: { max: 100 } });
  app.use(middleware);
  // Counted, not held: a WeakRef per stream would itself be heap that grows with the cycles.
  let created = 0;
  let collected = 0;
  const registry = new FinalizationRegistry<null>(() => collected++);
  let closed = 0;
  app.get("/s", (_req, res) => {
    const timer = setInterval(() => res.sse.comment("tick"), 50);
    res.sse.onClose(() => {
      clearInterval(timer);
      closed++;
    });
    res.sse.signal.addEventListener("abort", () => undefined, { once: true });
    created++;
    registry.register(res.sse, null);
    void channel.subscribe(res);
  });
  const { url, server } = await listen(app);
  const agent = new http.Agent({ keepAlive: false, maxSockets: PARALLEL });
  const churn = async (cycles: number) => {
    for (let done = 0; done < cycles; done += PARALLEL) {
      await Promise.all(
        Array.from({ length: Math.min(PARALLEL, cycles - done) }, () =>
          connectAndLeave(`${url}/s`, agent),
        ),
      );
      if (done % 1000 === 0) void channel.publish({ done }); // history and live traffic too
    }
    await waitFor(() => middleware.streams.size === 0 && channel.size === 0, {
      what: "every stream and subscription to close",
      timeout: 10_000,
    });
  };

  // Warm-up (JIT, socket pools), then the measured run.
  await churn(2_000);
  const resourcesBefore = activeResources();
  const listenersBefore = server.listenerCount("connection") + server.listenerCount("request");
  const heapBefore = await heapUsed();
  await churn(CYCLES);
  await waitFor(() => closed === created, { what: "every onClose callback" });
  agent.destroy();
  const heapAfter = await heapUsed();

  // Finalizers run after a collection, in their own tasks: give them a moment.
  await waitFor(() => created - collected <= 0, { what: "every stream to be collected" }).catch(
    () => undefined,
  );
  const retained = created - collected;
  await waitFor(() => JSON.stringify(activeResources()) === JSON.stringify(resourcesBefore), {
    what: `active resources back to ${JSON.stringify(resourcesBefore)}`,
  });
  record({
    case: "churn",
    load: `${CYCLES.toLocaleString("en-US")} connect/disconnect cycles`,
    faults: 0,
    badInputs: 0,
    lost: 0,
    heapBefore,
    heapAfter,
    notes: `${retained} streams retained; timers/sockets back to baseline`,
  });
  expect(retained).toBe(0);
  expect(middleware.streams.size).toBe(0);
  expect(channel.size).toBe(0);
  expect(server.listenerCount("connection") + server.listenerCount("request")).toBe(
    listenersBefore,
  );
  // A real leak is a stream (~1 KB) per cycle: 20 MB over the full run. The bound allows 64 B a
  // cycle, and never less than 1 MB: heap noise after GC is a few hundred KB either way.
  expect(heapAfter - heapBefore).toBeLessThan(Math.max(2 ** 20, CYCLES * 64));
  await channel.close();
});
