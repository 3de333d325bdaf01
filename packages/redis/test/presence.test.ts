/**
 * Presence across processes on the Redis adapter: two server processes (test/fixtures/server.ts)
 * share a channel; counts and members cover both, count events are coalesced, and a process that
 * is SIGKILLed drops out within the presence TTL. Once on a standalone redis-server, once on a
 * Redis Cluster.
 */
import { startChildServer, stopAllChildServers, type ChildServer } from "./helpers/child-server";
import { backends } from "./helpers/backends";
import { closeAllStreams, openStream, type StreamClient } from "./helpers/sse-client";
import { waitFor } from "../../express-sse/test/helpers/server";

/** The fixture's presence TTL: a SIGKILLed process is out of the counts within ~4/3 of it. */
const PRESENCE_TTL = 1000;

interface Presence {
  count: number;
  total: number;
  members: Array<{ user: string }>;
}

async function presenceOf(server: ChildServer): Promise<Presence> {
  return (await (await fetch(`${server.url}/presence`)).json()) as Presence;
}

/** The users in the `join` or `leave` events a client received, in order. */
function usersIn(client: StreamClient, event: "join" | "leave"): string[] {
  return client.events
    .filter((e) => e.event === event)
    .map((e) => (JSON.parse(e.data) as { user: string }).user);
}

/** The last `count` event a client received, or undefined. */
function lastCount(client: StreamClient): number | undefined {
  const counts = client.events.filter((e) => e.event === "count");
  const last = counts[counts.length - 1];
  return last === undefined ? undefined : Number(last.data);
}

describe.each(backends)("on %s", (_label, start) => {
  let dispose: () => Promise<void>;
  let env: Record<string, string>;
  let run = 0;

  beforeAll(async () => {
    const backend = await start();
    dispose = backend.dispose;
    env = { ...backend.env, PRESENCE_TTL: String(PRESENCE_TTL) };
  }, 60_000);

  afterAll(async () => {
    closeAllStreams();
    await stopAllChildServers();
    await dispose();
  });

  afterEach(async () => {
    closeAllStreams();
    await stopAllChildServers();
  });

  async function servers(): Promise<[ChildServer, ChildServer]> {
    const own = { ...env, CHANNEL: "room", PREFIX: `presence:${process.pid}:${++run}:` };
    const [a, b] = await Promise.all([
      startChildServer("A", own as never),
      startChildServer("B", own as never),
    ]);
    return [a, b];
  }

  test("3 clients on one process and 2 on the other: every client's last count is 5, and both processes count 5", async () => {
    const [a, b] = await servers();
    const clients = [
      ...["ann", "bob", "cid"].map((user) => openStream(`${a.url}/events?counts=1&user=${user}`)),
      ...["dan", "eve"].map((user) => openStream(`${b.url}/events?counts=1&user=${user}`)),
    ];
    await Promise.all(clients.map((client) => client.opened));
    await waitFor(() => clients.every((client) => lastCount(client) === 5), {
      timeout: 10_000,
      what: `every client's last count to be 5 (${clients.map(lastCount).join(", ")})`,
    });
    for (const server of [a, b]) {
      const presence = await presenceOf(server);
      expect(presence.count).toBe(5);
      expect(presence.total).toBe(5);
      // Each member's app data once, whichever process holds it.
      expect(presence.members.map((m) => m.user).sort()).toEqual([
        "ann",
        "bob",
        "cid",
        "dan",
        "eve",
      ]);
    }

    // A client that leaves disappears from the members and the count, everywhere.
    clients[4]!.close();
    await waitFor(() => clients.slice(0, 4).every((client) => lastCount(client) === 4), {
      timeout: 10_000,
      what: "every remaining client's last count to be 4",
    });
    expect((await presenceOf(a)).members.map((m) => m.user).sort()).toEqual([
      "ann",
      "bob",
      "cid",
      "dan",
    ]);
    // Every remaining client, on either process, heard that eve left, once.
    await waitFor(
      () => clients.slice(0, 4).every((client) => usersIn(client, "leave").length > 0),
      {
        timeout: 10_000,
        what: "every remaining client to hear a leave",
      },
    );
    for (const client of clients.slice(0, 4)) expect(usersIn(client, "leave")).toEqual(["eve"]);
  }, 60_000);

  test("SIGKILL of one process: the other's count drops to its own clients within the TTL bound", async () => {
    const [a, b] = await servers();
    const onA = [
      openStream(`${a.url}/events?counts=1&user=ann`),
      openStream(`${a.url}/events?counts=1&user=bob`),
    ];
    const onB = [1, 2, 3].map((i) => openStream(`${b.url}/events?counts=1&user=b${i}`));
    await Promise.all([...onA, ...onB].map((client) => client.opened));
    await waitFor(() => onA.every((client) => lastCount(client) === 5), {
      timeout: 10_000,
      what: "a count of 5 on A",
    });
    const killedAt = Date.now();
    await b.kill();
    await waitFor(() => onA.every((client) => lastCount(client) === 2), {
      timeout: 10_000,
      what: "A's clients to see 2 after B was killed",
    });
    const tookMs = Date.now() - killedAt;
    // Dead once its entry expires (TTL), seen at A's next renewal (TTL / 3), plus the coalescing.
    expect(tookMs).toBeLessThan(PRESENCE_TTL * 2 + 1000);
    expect((await presenceOf(a)).members.map((m) => m.user).sort()).toEqual(["ann", "bob"]);
    // The killed process's members are announced as leaves (no ghost in a member list), once each.
    await waitFor(() => onA.every((client) => usersIn(client, "leave").length === 3), {
      timeout: 10_000,
      what: "A's clients to hear b1, b2 and b3 leave",
    });
    for (const client of onA) expect(usersIn(client, "leave").sort()).toEqual(["b1", "b2", "b3"]);
    console.log(
      `presence: a SIGKILLed process left the counts ${tookMs} ms after the kill (presenceTtl ${PRESENCE_TTL} ms)`,
    );
  }, 60_000);

  test("1,000 joins within about a second over two processes: few count events, and every client ends on 1,000", async () => {
    const [a, b] = await servers();
    const clients: StreamClient[] = [];
    const started = Date.now();
    for (let i = 0; i < 1000; i++) {
      clients.push(openStream(`${(i % 2 === 0 ? a : b).url}/events?counts=1`));
      if (i % 100 === 99) await Promise.all(clients.slice(-100).map((client) => client.opened));
    }
    const joinedMs = Date.now() - started;
    await waitFor(() => clients.every((client) => lastCount(client) === 1000), {
      timeout: 20_000,
      what: "every client's last count to be 1000",
    });
    const settledMs = Date.now() - started;
    // Coalesced: at most one count event per presenceInterval (250 ms) per process, plus the first.
    const most = Math.max(
      ...clients.map((c) => c.events.filter((e) => e.event === "count").length),
    );
    expect(most).toBeLessThanOrEqual(Math.ceil(settledMs / 250) + 2);
    console.log(
      `presence: 1,000 joins over 2 processes in ${joinedMs} ms; every client at 1,000 after ${settledMs} ms; at most ${most} count events per client`,
    );
  }, 60_000);
});
