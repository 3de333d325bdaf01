import path from "node:path";
import express, { type Express } from "express";
import { sse } from "@sluice/express-sse";

export interface DemoOptions {
  /** Milliseconds between `time` events. @defaultValue 1000 */
  tickMs?: number;
}

/**
 * The demo app, without `listen()`, so tests can import it. (The full demo — chat, ticker,
 * progress, metrics, nginx and compose — is tracked in its own issue.)
 */
export function createApp({ tickMs = 1000 }: DemoOptions = {}): Express {
  const app = express();
  app.disable("x-powered-by");
  app.use(sse({ heartbeat: 15_000, retry: 3_000 }));

  app.get("/healthz", (_req, res) => {
    res.json({ ok: true });
  });

  // `event: time`, data an ISO timestamp as a JSON string, every second.
  app.get("/api/time", (_req, res) => {
    const send = () => res.sse.send(JSON.stringify(new Date().toISOString()), { event: "time" });
    send();
    const timer = setInterval(send, tickMs);
    res.sse.onClose(() => clearInterval(timer));
  });

  // Ten unnamed events, then the stream ends cleanly.
  app.get("/sse", async (_req, res) => {
    const demo = Array.from({ length: 10 }, (_, i) => `demo${i + 1}`);
    await res.sse.pipe(demo, { closeOnEnd: true });
  });

  app.use(express.static(path.join(__dirname, "..", "public")));
  return app;
}
