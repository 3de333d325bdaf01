import { freePort } from "../../../test-support/system";
import { SseClient } from "../src";
import { startFixtureServer, type FixtureServer } from "./helpers/fixture-server";

// Nothing leaks: once a client is closed or aborted, in whatever state it was, no timer and no
// socket of it remains (process.getActiveResourcesInfo(), by type), and the server sees the
// connection go.

let server: FixtureServer;
let closedPort: number;
let run = 0;

beforeAll(async () => {
  // Node's fetch (undici) opens a spare connection to the origin after an aborted request and
  // keeps it, unused, in its pool for 4 s. That socket is the pool's, not the client's; this
  // server closes connections that send no request within 50 ms, so the checks below wait 50 ms
  // for it instead of 4 s. A stream or a request the client left open has sent its request, and
  // would still show.
  server = await startFixtureServer({ firstRequestTimeout: 50 });
  closedPort = await freePort();
});
afterAll(() => server.close());

function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

async function waitFor(predicate: () => boolean, what: string, timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Active resources with nothing of ours running: the server listening, jest's own. */
async function baseline(): Promise<string> {
  // Let timers of earlier tests (ours: waitFor's) run out first.
  await new Promise((r) => setTimeout(r, 20));
  return JSON.stringify(activeResources());
}

async function expectBackTo(before: string, id: string): Promise<void> {
  await waitFor(() => server.openCount(id) === 0, "the server to see the connection go");
  await waitFor(
    () => JSON.stringify(activeResources()) === before,
    `active resources back to ${before} (now ${JSON.stringify(activeResources())})`,
  );
}

/** Full garbage collections, with turns between: jest runs under `node --expose-gc` (pnpm test does). */
async function collectGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("run jest with node --expose-gc (pnpm test does)");
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
}

type Stopper = "close" | "abort";

describe.each<Stopper>(["close", "abort"])("after %s()", (how) => {
  function start(path: string, options: ConstructorParameters<typeof SseClient>[1] = {}) {
    const controller = new AbortController();
    const id = `res-${++run}`;
    const client = new SseClient(path.startsWith("http") ? path : `${server.url}/${path}/${id}`, {
      ...options,
      signal: controller.signal,
    });
    const stop = () => (how === "close" ? client.close() : controller.abort());
    return { client, stop, id };
  }

  // Node's fetch follows the request's signal through a weak reference: once the Request was
  // collected, an abort alone no longer reached the connection, and close() left the socket open
  // (the server kept its subscriber; the process never exited). Seen under load, where
  // collections come sooner; forced here.
  test.each([
    ["", false],
    [", after garbage collections", true],
  ])("an open stream%s: its socket and the pending read are gone", async (_, collect) => {
    const before = await baseline();
    const { client, stop, id } = start("ticks");
    let events = 0;
    client.on("message", () => events++);
    await waitFor(() => events >= 2, "events");
    expect(JSON.stringify(activeResources())).not.toBe(before); // the socket shows while open
    if (collect) await collectGarbage();
    stop();
    expect(client.readyState).toBe(2);
    await expectBackTo(before, id);
  });

  test("a stream watched by heartbeatTimeout: the watch's timer goes too", async () => {
    const before = await baseline();
    const { client, stop, id } = start("ticks", { heartbeatTimeout: 60_000 });
    let events = 0;
    client.on("message", () => events++);
    await waitFor(() => events >= 2, "events");
    stop();
    expect(client.readyState).toBe(2);
    await expectBackTo(before, id);
  });

  test("a stream dropped by heartbeatTimeout, its reconnect pending: nothing remains", async () => {
    const before = await baseline();
    const { client, stop, id } = start("silent", { heartbeatTimeout: 100, retry: 60_000 });
    const codes: string[] = [];
    client.addEventListener("error", ({ error }) => codes.push(error.code));
    await waitFor(() => codes.length === 1, "the timeout");
    expect(codes).toEqual(["timeout"]);
    await waitFor(() => server.openCount(id) === 0, "the server to see the connection go");
    stop();
    await expectBackTo(before, id);
  });

  test("a request whose headers never came: aborted, socket gone", async () => {
    const before = await baseline();
    const { client, stop, id } = start("hang");
    await waitFor(() => server.openCount(id) === 1, "the request to arrive");
    stop();
    expect(client.readyState).toBe(2);
    await expectBackTo(before, id);
  });

  test("a request whose headers never came, after garbage collections: aborted, socket gone", async () => {
    const before = await baseline();
    const { client, stop, id } = start("hang");
    await waitFor(() => server.openCount(id) === 1, "the request to arrive");
    await collectGarbage();
    stop();
    expect(client.readyState).toBe(2);
    await expectBackTo(before, id);
  });

  test("a reconnect pending after a refused connection: the timer is cleared", async () => {
    const before = await baseline();
    const { client, stop } = start(`http://127.0.0.1:${closedPort}/x`, { retry: 60_000 });
    let errors = 0;
    client.addEventListener("error", () => errors++);
    await waitFor(() => errors === 1, "the refused connection");
    expect(activeResources()["Timeout"] ?? 0).toBeGreaterThan(0); // the pending reconnect
    stop();
    expect(client.readyState).toBe(2);
    await waitFor(
      () => JSON.stringify(activeResources()) === before,
      `active resources back to ${before}`,
    );
  });

  test("a for await loop over an open stream: the loop ends, nothing remains", async () => {
    const before = await baseline();
    const { client, stop, id } = start("ticks");
    let events = 0;
    for await (const event of client) {
      if (event.type === "message" && ++events === 3) stop();
    }
    expect(events).toBe(3);
    await expectBackTo(before, id);
  });
});
