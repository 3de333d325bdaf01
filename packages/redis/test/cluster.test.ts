/**
 * The adapter on a real Redis Cluster (3 primaries, 3 replicas on loopback, started here): the
 * shared adapter contract from root nodes and on a user's cluster client, keys and subscriptions
 * spread over the slots, and a primary killed (SIGKILL) in the middle of a run between two server
 * processes: every event Redis acknowledged and kept arrives once, in order; events it
 * acknowledged and then lost in the failover give the clients that had them `event: reset`.
 */
import express from "express";
import { createCluster } from "redis";
import { Channel, sse } from "@sluice/express-sse";
import { adapterContract } from "@sluice/express-sse/adapter-contract";
import { resolveHistoryOptions } from "../../express-sse/src/history";
import { closeAllServers, listen, sleep, waitFor } from "../../express-sse/test/helpers/server";
import { hashSlot, streamKey } from "../src";
import { compareEventIds, compareStreamIds, toStreamId } from "../src/codec";
import { adapterPool } from "./helpers/adapters";
import { startChildServer, stopAllChildServers } from "./helpers/child-server";
import { redisCommand, startRedisCluster, type RedisCluster } from "./helpers/redis-cluster";
import { closeAllStreams, openStream } from "./helpers/sse-client";

let cluster: RedisCluster;
let admin: ReturnType<typeof createCluster>;
let counter = 0;

beforeAll(async () => {
  cluster = await startRedisCluster({ nodeTimeoutMs: 1000 });
  admin = createCluster({ rootNodes: [...cluster.rootNodes] });
  admin.on("error", () => undefined);
  await admin.connect();
}, 60_000);

afterAll(async () => {
  closeAllStreams();
  await closeAllServers();
  await stopAllChildServers();
  await closeAdapters().catch(() => undefined); // reports were checked by the tests
  admin.destroy();
  await cluster.dispose();
});

const rootNodes = () => cluster.rootNodes.map((node) => node.url);
const unique = (label: string) => `cluster:${label}:${process.pid}:${++counter}`;

const { make, close: closeAdapters, errors } = adapterPool();

adapterContract(
  "RedisAdapter on a Redis Cluster from root nodes",
  () => make({ rootNodes: rootNodes() }),
  closeAdapters,
);

describe("on a user's cluster client", () => {
  const user = () => {
    const client = createCluster({ rootNodes: [...cluster.rootNodes] });
    client.on("error", () => undefined);
    return client;
  };
  let client: ReturnType<typeof user>;
  beforeAll(async () => {
    client = user();
    await client.connect();
  });
  afterAll(() => client.destroy());

  adapterContract(
    "RedisAdapter on a user's cluster client (node-redis 6)",
    () => make({ client, prefix: "user:" }),
    closeAdapters,
  );

  test("the user's cluster client is still open and usable after every adapter closed", async () => {
    expect(client.isOpen).toBe(true);
    await client.set("user:check", "1");
    expect(await client.get("user:check")).toBe("1");
  });
});

describe("slots", () => {
  afterEach(closeAdapters);

  test("a channel's stream and meta hash live on one node; channels spread over every primary", async () => {
    const adapter = await make({ rootNodes: rootNodes() });
    const names = Array.from({ length: 12 }, (_, i) => unique(`spread${i}`));
    const ports = new Set<number>();
    for (const name of names) {
      const channel = adapter.open(name, { history: resolveHistoryOptions(undefined) });
      await channel.publish({ event: undefined, data: "x" });
      const key = streamKey("sluice:", name);
      const primary = await cluster.primaryFor(key);
      ports.add(primary.port);
      expect(await cluster.primaryFor(`${key}:meta`)).toEqual(primary);
      expect(await admin.exists([key, `${key}:meta`])).toBe(2); // one command, one slot
      channel.close();
    }
    expect(ports.size).toBe(3);
  });
});

/**
 * The failover run, in two server processes (test/fixtures/server.ts, as a deployment runs them):
 * clients read the channel on B while the test publishes through A's HTTP endpoint, and the
 * primary serving the channel is SIGKILLed in the middle. What Redis kept is read from the new
 * primary afterwards; every client's events are checked against it.
 */
test("SIGKILL of the channel's primary mid-run: every acknowledged event Redis kept arrives once, in order; lost ones reset", async () => {
  const channel = unique("failover");
  const prefix = `failover:${process.pid}:`;
  const key = streamKey(prefix, channel);
  const env = { REDIS_CLUSTER: rootNodes().join(","), CHANNEL: channel, PREFIX: prefix };
  const [a, b] = await Promise.all([startChildServer("A", env), startChildServer("B", env)]);
  const clients = [
    openStream(`${b.url}/events`),
    openStream(`${b.url}/events`),
    openStream(`${a.url}/events`),
  ];
  await Promise.all(clients.map((client) => client.opened));
  const victim = await cluster.primaryFor(key);
  // Both processes subscribed to the channel (its sharded pub/sub channel is the stream's key).
  await waitFor(
    async () => {
      const reply = await redisCommand(victim.port, ["PUBSUB", "SHARDNUMSUB", key]);
      return Array.isArray(reply) && Number(reply[1]) === 2;
    },
    { what: "A and B subscribed to the channel", timeout: 10_000, interval: 20 },
  );

  const acked: string[] = [];
  let rejected = 0;
  const RUN_MS = 6000;
  const KILL_AT_MS = 1500;
  const started = Date.now();
  let killedAt = 0;
  const killer = (async () => {
    await sleep(KILL_AT_MS);
    killedAt = Date.now();
    await cluster.kill(victim);
  })();
  for (let i = 0; Date.now() - started < RUN_MS; i++) {
    const res = await fetch(`${a.url}/publish`, { method: "POST", body: String(i) });
    if (res.status === 200) acked.push(((await res.json()) as { id: string }).id);
    else {
      rejected++;
      await res.arrayBuffer();
      await sleep(50);
    }
    await sleep(2);
  }
  await killer;
  await cluster.waitHealthy(20_000);
  const healthyAfter = Date.now() - killedAt;

  // What Redis kept, asked of the new primary itself.
  const entries = (await redisCommand((await cluster.primaryFor(key)).port, [
    "XRANGE",
    key,
    "-",
    "+",
  ])) as string[][];
  const kept = new Set(entries.map((entry) => entry[0]!));
  const lastKept = entries.at(-1)?.[0];
  await waitFor(
    () => clients.every((client) => toStreamId(client.events.at(-1)?.id ?? "") === lastKept),
    { timeout: 20_000, what: "the last kept event on every client" },
  );

  const figures = {
    delivered: 0,
    resets: 0,
    lost: 0,
    duplicated: 0,
    ackedThenLost: 0,
    seenLostWithoutReset: 0,
  };
  for (const id of acked) if (!kept.has(toStreamId(id)!)) figures.ackedThenLost++;
  for (const client of clients) {
    const events = client.events.filter((event) => event.event !== "reset");
    figures.delivered += events.length;
    figures.resets += client.events.length - events.length;
    const ids = events.map((event) => event.id);
    figures.duplicated += ids.length - new Set(ids).size;
    for (let i = 1; i < ids.length; i++)
      if (compareEventIds(ids[i - 1]!, ids[i]!) >= 0) figures.duplicated++;
    const got = new Set(ids);
    /** Resets as [the id before it, its newest id]: events in between were skipped on purpose. */
    const windows: Array<[string, string]> = [];
    client.events.forEach((event, at) => {
      if (event.event !== "reset") return;
      const before = client.events
        .slice(0, at)
        .filter((e) => e.event !== "reset")
        .at(-1)?.id;
      windows.push([toStreamId(before ?? "") ?? "0-0", toStreamId(event.id) ?? "0-0"]);
    });
    for (const id of acked) {
      const streamId = toStreamId(id)!;
      if (!kept.has(streamId)) {
        // Delivered, then lost by Redis: the client must have been told with a reset after it.
        const at = client.events.findIndex((event) => event.id === id);
        if (at !== -1 && !client.events.slice(at).some((event) => event.event === "reset")) {
          figures.seenLostWithoutReset++;
        }
        continue;
      }
      const skipped = windows.some(
        ([from, to]) => compareStreamIds(streamId, from) > 0 && compareStreamIds(streamId, to) <= 0,
      );
      if (!got.has(id) && !skipped) figures.lost++;
    }
  }
  console.log(
    `Cluster failover, SIGKILL of the channel's primary (cluster-node-timeout 1 s), 3 clients on 2 server processes: ` +
      `${acked.length} publishes acknowledged, ${rejected} rejected; ${figures.delivered} events delivered, ` +
      `${figures.resets} resets, ${figures.lost} lost, ${figures.duplicated} duplicated; ` +
      `${figures.ackedThenLost} acknowledged then lost by Redis; cluster healthy ${healthyAfter} ms after the kill`,
  );
  expect(figures.lost).toBe(0);
  expect(figures.duplicated).toBe(0);
  expect(figures.seenLostWithoutReset).toBe(0);
  expect(rejected).toBeGreaterThan(0); // the kill did make publishes fail
  expect(kept.size).toBeGreaterThan(0);
  closeAllStreams();
  await stopAllChildServers();
  await cluster.restart(victim);
  await cluster.waitHealthy(20_000);
}, 90_000);

test("a channel that goes idle and active again while its primary is down delivers no event twice once it is back", async () => {
  // Each activation reads its start position; while the slot has no primary those reads fail
  // and are retried. A retry that outlived its activation once set an older start position under
  // a later one, and the next gap read delivered again what had been delivered (found by the
  // chaos soak on the cluster).
  const options = { rootNodes: rootNodes(), reconnect: { minDelay: 20, maxDelay: 250 } };
  const [a, b] = [await make(options), await make(options)];
  const name = unique("churn");
  const onA = new Channel(name, { adapter: a });
  const onB = new Channel(name, { adapter: b });
  onB.on("error", () => undefined); // replays that fail while the slot has no primary
  const reportsOfA: string[] = []; // presence pushes that fail while the slot has no primary
  onA.on("error", (err: Error) => reportsOfA.push(err.message));
  const app = express();
  app.use(sse({ heartbeat: 0 }));
  app.get("/events", (_req, res) => void onB.subscribe(res));
  const url = `${(await listen(app)).url}/events`;

  let stop = false;
  const publisher = (async () => {
    for (let i = 0; !stop; i++) {
      await onA.publish(String(i)).catch(() => sleep(20)); // a failed one is simply skipped
      await sleep(10);
    }
  })();
  await sleep(300);
  const victim = await cluster.primaryFor(streamKey("sluice:", name));
  await cluster.kill(victim);
  for (let i = 0; i < 60; i++) {
    const client = openStream(url);
    await client.opened.catch(() => undefined);
    await sleep(20);
    client.close();
    await sleep(20);
  }
  const stays = openStream(url);
  await stays.opened;
  await cluster.waitHealthy(20_000);
  await sleep(2000);
  stop = true;
  await publisher;
  await sleep(300);
  const ids = stays.events.map((event) => event.id);
  expect(ids.length).toBeGreaterThan(0);
  expect(ids.length - new Set(ids).size).toBe(0);
  for (let i = 1; i < ids.length; i++)
    expect(compareEventIds(ids[i - 1]!, ids[i]!)).toBeLessThan(0);
  closeAllStreams();
  for (const report of reportsOfA) expect(report).toMatch(/^Presence of channel "[^"]+": /);
  await Promise.all([onA.close(), onB.close()]);
  errors.splice(0); // connection reports are expected here
  await cluster.restart(victim);
  await cluster.waitHealthy(20_000);
}, 90_000);

test("hashSlot() agrees with the cluster on where a channel's keys are", async () => {
  // Asked of a node directly: after the failovers above, the admin client's slot map is stale.
  const node = cluster.nodes.find((candidate) => candidate.running)!;
  for (const name of ["chat", "user:42", "ünï 👋", "}x{"]) {
    const key = streamKey("sluice:", name);
    expect(hashSlot(key)).toBe(Number(await redisCommand(node.port, ["CLUSTER", "KEYSLOT", key])));
  }
});
