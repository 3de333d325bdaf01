import http from "node:http";
import type { AddressInfo } from "node:net";
import { EventSource } from "eventsource";
import { createApp, type DemoApp, type DemoOptions } from "../src/app";

// Everything a test starts is registered here and released by `disposeAll()` in afterEach.
const apps: DemoApp[] = [];
const servers: http.Server[] = [];
const sources: EventSource[] = [];

/** A demo app that is closed (timers, channels, streams) after the test. */
export function makeApp(options: DemoOptions = {}): DemoApp {
  const app = createApp(options);
  apps.push(app);
  return app;
}

/**
 * Starts `app` on 127.0.0.1 on a free port; the server is closed after the test. `requests` lists
 * the URL (path and query) of every request the server received, in order, so a test can count
 * what a client really sent (reconnects included).
 */
export async function listen(
  app: DemoApp,
): Promise<{ server: http.Server; url: string; requests: string[] }> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? "");
    app(req, res);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

/** An `EventSource` (the npm client, as a browser would behave), closed after the test. */
export function eventSource(url: string): EventSource {
  const source = new EventSource(url);
  sources.push(source);
  return source;
}

export async function disposeAll(): Promise<void> {
  for (const source of sources.splice(0)) source.close();
  for (const app of apps.splice(0)) await app.close();
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
}

/** Polls `check` until it returns true; fails with `what` after `timeout` ms. */
export async function waitFor(
  check: () => boolean,
  what: string,
  timeout = 3000,
  every = 5,
): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeout} ms waiting for ${what}`);
    await delay(every);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Collects the data of one named event type from an EventSource. */
export function record(source: EventSource, type: string): string[] {
  const seen: string[] = [];
  source.addEventListener(type, (e) => seen.push(e.data));
  return seen;
}
