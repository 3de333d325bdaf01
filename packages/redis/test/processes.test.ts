/**
 * Two server processes sharing a channel through Redis, as behind a load balancer: each runs
 * test/fixtures/server.ts (Express + Channel + RedisAdapter) in its own child process. Once on a
 * standalone redis-server, once on a Redis Cluster (3 primaries, 3 replicas).
 */
import { startChildServer, stopAllChildServers, type ChildServer } from "./helpers/child-server";
import { backends } from "./helpers/backends";
import { closeAllStreams, dataOf, openStream } from "./helpers/sse-client";
import { waitFor } from "../../express-sse/test/helpers/server";
import { compareEventIds } from "../src/codec";

describe.each(backends)("on %s", (_label, start) => {
  let dispose: () => Promise<void>;
  let a: ChildServer;
  let b: ChildServer;

  beforeAll(async () => {
    const backend = await start();
    dispose = backend.dispose;
    const env = { ...backend.env, CHANNEL: "feed", PREFIX: `processes:${process.pid}:` };
    [a, b] = await Promise.all([startChildServer("A", env), startChildServer("B", env)]);
  }, 60_000);

  afterAll(async () => {
    closeAllStreams();
    await stopAllChildServers();
    await dispose();
  });

  afterEach(closeAllStreams);

  async function publish(server: ChildServer, data: string): Promise<string> {
    const res = await fetch(`${server.url}/publish`, { method: "POST", body: data });
    const body = (await res.json()) as { id?: string; error?: string };
    if (res.status !== 200 || body.id === undefined) {
      throw new Error(`publish on ${server.name} failed: ${res.status} ${JSON.stringify(body)}`);
    }
    return body.id;
  }

  async function subscribers(server: ChildServer): Promise<number> {
    const res = await fetch(`${server.url}/stats`);
    return ((await res.json()) as { subscribers: number }).subscribers;
  }

  /** Polls until both servers report `count` subscribers in total. */
  async function untilSubscribers(count: number): Promise<void> {
    const deadline = Date.now() + 5000;
    while ((await subscribers(a)) + (await subscribers(b)) !== count) {
      if (Date.now() > deadline) throw new Error(`Timed out waiting for ${count} subscribers`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  const range = (from: number, to: number) =>
    Array.from({ length: to - from }, (_, i) => String(from + i));

  test("an event published on A reaches B's clients (and A's), with the same ids in the same order", async () => {
    const onB = [openStream(`${b.url}/events`), openStream(`${b.url}/events`)];
    const onA = openStream(`${a.url}/events`);
    await untilSubscribers(3);

    const ids: string[] = [];
    for (let i = 0; i < 30; i++) ids.push(await publish(i % 3 === 2 ? b : a, String(i)));
    const clients = [...onB, onA];
    await waitFor(() => clients.every((c) => c.events.length >= 30), { what: "30 events on each" });
    await new Promise((r) => setTimeout(r, 50)); // no extra event follows
    for (const client of clients) {
      expect(dataOf(client)).toEqual(range(0, 30));
      expect(client.events.map((e) => e.id)).toEqual(ids);
    }
  });

  test("a client that left A resumes on B with Last-Event-ID: every missed event once, in order", async () => {
    const first = openStream(`${a.url}/events`);
    await untilSubscribers(1);
    for (let i = 0; i < 10; i++) await publish(a, `before ${i}`);
    await waitFor(() => first.events.length === 10, { what: "10 events" });
    const lastSeen = first.events.at(-1)!.id;
    first.close();
    await untilSubscribers(0);

    // Published while the client was away, on both servers.
    for (let i = 0; i < 20; i++) await publish(i % 2 ? a : b, `missed ${i}`);

    const resumed = openStream(`${b.url}/events`, lastSeen);
    await untilSubscribers(1);
    for (let i = 0; i < 5; i++) await publish(a, `live ${i}`);
    const expected = [
      ...Array.from({ length: 20 }, (_, i) => `missed ${i}`),
      ...Array.from({ length: 5 }, (_, i) => `live ${i}`),
    ];
    await waitFor(() => resumed.events.length >= expected.length, {
      what: "the missed and live events",
    });
    await new Promise((r) => setTimeout(r, 50)); // no duplicate follows
    expect(dataOf(resumed)).toEqual(expected);
    const ids = resumed.events.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (let i = 1; i < ids.length; i++)
      expect(compareEventIds(ids[i - 1]!, ids[i]!)).toBeLessThan(0);
  });
});
