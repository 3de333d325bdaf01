import express from "express";
import http from "node:http";
import { sse, type SseStream } from "../src";
import { activeResources, collectGarbage, steadyStateHeapGrowth } from "./helpers/gc";
import { closeAllServers, listen, waitFor } from "./helpers/server";

afterEach(closeAllServers);

/** Opens a stream, waits for its first event, then hangs up. */
function connectAndLeave(url: string, agent: http.Agent): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/s`, { agent }, (res) => {
      res.once("data", () => {
        req.destroy();
        resolve();
      });
    });
    req.on("error", reject);
  });
}

describe("churn", () => {
  test("3,000 connect/disconnect cycles release every stream, timer, listener and byte of heap", async () => {
    const app = express();
    const middleware = sse({ heartbeat: 100 });
    app.use(middleware);
    const refs: Array<WeakRef<SseStream>> = [];
    let timersCleared = 0;
    let mostCloseListeners = 0; // on a request, after its handler set everything up
    app.get("/s", (req, res) => {
      // What a typical handler does: a per-client timer cleaned up on close, the signal, a pipe.
      const t = setInterval(() => res.sse.send("tick"), 50);
      res.sse.onClose(() => {
        clearInterval(t);
        timersCleared++;
      });
      res.sse.signal.addEventListener("abort", () => undefined, { once: true });
      void res.sse.pipe(
        (async function* () {
          yield "hello";
          await new Promise(() => {}); // never ends on its own
        })(),
      );
      refs.push(new WeakRef(res.sse));
      mostCloseListeners = Math.max(mostCloseListeners, req.listenerCount("close"));
    });
    const { url } = await listen(app);
    const agent = new http.Agent({ keepAlive: false, maxSockets: 50 });

    const churn = async (cycles: number) => {
      for (let done = 0; done < cycles; done += 50) {
        await Promise.all(Array.from({ length: 50 }, () => connectAndLeave(url, agent)));
      }
      await waitFor(() => middleware.streams.size === 0, { what: "every stream to close" });
    };

    await churn(100);
    await collectGarbage();
    const resourcesBefore = activeResources();
    const refsBefore = refs.length;
    // 1,000 warm-up cycles, then two measured windows of 1,000.
    const heapGrowth = await steadyStateHeapGrowth(churn, { warmup: 1000, cycles: 1000 });
    agent.destroy();
    await waitFor(() => timersCleared === refs.length, { what: "every onClose callback" });

    expect(middleware.streams.size).toBe(0);
    await waitFor(() => JSON.stringify(activeResources()) === JSON.stringify(resourcesBefore), {
      what: `active resources back to ${JSON.stringify(resourcesBefore)}`,
    });
    expect(mostCloseListeners).toBeLessThanOrEqual(1);
    const retained = refs.slice(refsBefore).filter((ref) => ref.deref() !== undefined).length;
    expect(retained).toBe(0);
    // A leak of 1 KB per stream would show as ~1 MB over the measured 1,000 cycles.
    expect(heapGrowth).toBeLessThan(1024 * 1024);
  }, 60_000);
});
