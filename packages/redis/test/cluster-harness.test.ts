/**
 * The Redis Cluster test harness (helpers/redis-cluster.ts) against node-redis's cluster client:
 * keys land where the harness says, a Lua script can XADD and SPUBLISH on one slot (what the
 * cluster support relies on), and a killed primary's replica takes over, after which writes and a
 * sharded subscription work again without the client doing anything.
 */
import { createCluster } from "redis";
import { sleep, waitFor } from "../../express-sse/test/helpers/server";
import {
  keySlot,
  redisCommand,
  startRedisCluster,
  type RedisCluster,
  type RespReply,
} from "./helpers/redis-cluster";

/** XADD and SPUBLISH in one script, on one key (stream) that is also the shard channel. */
const XADD_AND_SPUBLISH = `
redis.call('XADD', KEYS[1], '*', 'data', ARGV[1])
return redis.call('SPUBLISH', KEYS[1], ARGV[1])
`;

let cluster: RedisCluster;
let clients: Array<{ destroy(): void }> = [];

beforeAll(async () => {
  cluster = await startRedisCluster();
}, 30_000);

afterAll(async () => {
  await cluster?.dispose();
});

afterEach(() => {
  for (const client of clients) client.destroy();
  clients = [];
});

/** A connected node-redis cluster client; its errors are collected (a cluster client needs a listener). */
async function connectedCluster(errors: string[] = []) {
  const client = createCluster({ rootNodes: [...cluster.rootNodes] });
  client.on("error", (err: Error) => errors.push(`error: ${err.message}`));
  client.on("node-error", (err: Error, node: { port: number }) =>
    errors.push(`node-error ${node.port}: ${err.message}`),
  );
  clients.push(client);
  await client.connect();
  return client;
}

test("starts six nodes, all running, and the slot computation matches CLUSTER KEYSLOT", async () => {
  expect(cluster.nodes).toHaveLength(6);
  expect(cluster.rootNodes.map((node) => node.url)).toEqual(cluster.nodes.map((node) => node.url));
  expect(new Set(cluster.nodes.map((node) => node.port)).size).toBe(6);
  expect(cluster.nodes.every((node) => node.running)).toBe(true);

  // Hash tags as Redis reads them: the first `{`, the first `}` after it, non-empty in between.
  const keys = [
    "foo",
    "sluice:{x}",
    "{user1000}.following",
    "{user1000}.followers",
    "foo{}{bar}",
    "foo{{bar}}zap",
    "foo{bar}{zap}",
    "{}",
    "}{",
    "",
    "ünïcødé €",
  ];
  for (const key of keys) {
    expect([key, keySlot(key)]).toEqual([
      key,
      await redisCommand(cluster.nodes[0]!.port, ["CLUSTER", "KEYSLOT", key]),
    ]);
  }
  expect(keySlot("foo")).toBe(12182);
  expect(keySlot("{user1000}.following")).toBe(keySlot("{user1000}.followers"));
});

test("SET/GET through node-redis, and primaryFor names the node that holds each key", async () => {
  const client = await connectedCluster();
  const keys = Array.from({ length: 30 }, (_, i) => `harness:key:${i}`);
  for (const key of keys) await client.set(key, `value of ${key}`);
  for (const key of keys) expect(await client.get(key)).toBe(`value of ${key}`);

  const primaries = new Set<number>();
  for (const key of keys) {
    const primary = await cluster.primaryFor(key);
    primaries.add(primary.port);
    // node-redis's own slot map agrees...
    expect(client.slots[keySlot(key)]!.master.port).toBe(primary.port);
    // ...and the key is really there: that node answers GET, another primary redirects.
    expect(await redisCommand(primary.port, ["GET", key])).toBe(`value of ${key}`);
  }
  expect(primaries.size).toBe(3); // the keys spread over the three primaries

  const [someKey] = keys as [string];
  const holder = await cluster.primaryFor(someKey);
  const other = cluster.nodes.find((node) => node !== holder && node.port !== holder.port)!;
  await expect(redisCommand(other.port, ["GET", someKey])).rejects.toThrow(/^MOVED \d+ /);
});

test("a Lua script may XADD and SPUBLISH on one slot in cluster mode; sSubscribe receives it", async () => {
  const key = "sluice:{x}";
  const errors: string[] = [];
  const subscriber = await connectedCluster(errors);
  const messages: string[] = [];
  await subscriber.sSubscribe(key, (message, channel) => messages.push(`${channel}: ${message}`));
  const client = await connectedCluster(errors);

  // SPUBLISH's reply (the number of receivers on the shard) is the script's.
  const receivers = await client.eval(XADD_AND_SPUBLISH, { keys: [key], arguments: ["msg"] });
  expect(receivers).toBe(1);
  await waitFor(() => messages.length > 0, { what: "the sharded message" });
  expect(messages).toEqual([`${key}: msg`]);
  const entries = await client.xRange(key, "-", "+");
  expect(entries?.at(-1)?.message).toEqual({ data: "msg" });

  // The same script run directly on the primary (not through node-redis) is accepted too.
  const primary = await cluster.primaryFor(key);
  expect(await redisCommand(primary.port, ["EVAL", XADD_AND_SPUBLISH, "1", key, "direct"])).toBe(1);
  await waitFor(() => messages.length > 1, { what: "the second sharded message" });
  expect(messages).toEqual([`${key}: msg`, `${key}: direct`]);
  expect(errors).toEqual([]);
});

test("killing a key's primary: its replica takes over, and writes and sSubscribe work again", async () => {
  const key = "sluice:{x}";
  const dataKey = "harness:{x}:data"; // same slot
  const before = await cluster.primaryFor(key);
  const replica = await replicaOf(before.port);

  const subscriberErrors: string[] = [];
  const subscriber = await connectedCluster(subscriberErrors);
  const received: number[] = [];
  await subscriber.sSubscribe(key, (message) => received.push(Number(message)));
  const client = await connectedCluster();
  await client.set(dataKey, "before");

  // A publisher independent of node-redis: SPUBLISH every 50 ms to whichever node is the slot's
  // primary now, noting how many subscribers each message reached (undefined: it failed).
  const published: Array<{ seq: number; at: number; receivers: number | undefined }> = [];
  let publishing = true;
  const publisher = (async () => {
    for (let seq = 1; publishing; seq++) {
      const at = Date.now();
      let receivers: number | undefined;
      try {
        const primary = await cluster.primaryFor(key);
        receivers = (await redisCommand(primary.port, ["SPUBLISH", key, String(seq)])) as number;
      } catch {
        receivers = undefined;
      }
      published.push({ seq, at, receivers });
      await sleep(50);
    }
  })();
  await waitFor(() => received.length >= 3, { what: "messages before the kill" });
  // What the primary holds is on its replica too (replication is asynchronous: WAIT for it).
  const streamLength = await client.xLen(key);
  expect(streamLength).toBeGreaterThan(0); // the script test's entries
  expect(await redisCommand(before.port, ["WAIT", "1", "1000"])).toBe(1);

  const killedAt = Date.now();
  await cluster.kill(before);
  expect(before.running).toBe(false);
  await cluster.waitHealthy();
  const healthyAt = Date.now();

  const after = await cluster.primaryFor(key);
  expect(after.port).not.toBe(before.port);
  expect(after.port).toBe(replica); // the replica took over

  // node-redis writes there again once it has refreshed its topology (it retries nothing itself).
  let writeError = "";
  for (const deadline = Date.now() + 15_000; ;) {
    try {
      await client.set(dataKey, "after");
      break;
    } catch (err) {
      writeError = (err as Error).message;
      if (Date.now() > deadline) throw err;
      await sleep(50);
    }
  }
  const writtenAt = Date.now();
  expect(await client.get(dataKey)).toBe("after");
  expect(await redisCommand(after.port, ["GET", dataKey])).toBe("after");
  expect(await client.xLen(key)).toBe(streamLength); // the stream survived the failover

  // The sharded subscription comes back by itself on the new primary.
  await waitFor(() => published.some((p) => p.at > healthyAt && p.receivers === 1), {
    timeout: 15_000,
    interval: 20,
    what: "a publish on the new primary to reach the resubscribed listener",
  });
  const resubscribedAt = published.find((p) => p.at > healthyAt && p.receivers === 1)!.at;
  await sleep(300); // a few more after it
  publishing = false;
  await publisher;
  await sleep(100);

  // Every message that reached a subscriber was received, once, in order; none that didn't.
  const delivered = published.filter((p) => p.receivers === 1).map((p) => p.seq);
  const failed = published.filter((p) => p.receivers === undefined).map((p) => p.seq);
  const unheard = published.filter((p) => p.receivers === 0).map((p) => p.seq);
  expect(received.filter((seq) => !failed.includes(seq))).toEqual(delivered);
  expect(unheard.every((seq) => !received.includes(seq))).toBe(true);
  expect(received.at(-1)).toBe(delivered.at(-1));

  const ranges = (seqs: number[]) =>
    seqs
      .reduce<Array<[number, number]>>((acc, seq) => {
        const last = acc.at(-1);
        if (last !== undefined && last[1] === seq - 1) last[1] = seq;
        else acc.push([seq, seq]);
        return acc;
      }, [])
      .map(([from, to]) => (from === to ? `${from}` : `${from}-${to}`))
      .join(",");
  console.log(
    `failover of ${before.port} -> ${after.port}: healthy ${healthyAt - killedAt} ms after the kill; ` +
      `node-redis write ok after ${writtenAt - killedAt} ms (last error before: ${writeError || "none"}); ` +
      `sSubscribe listener heard again from a publish ${resubscribedAt - killedAt} ms after the kill. ` +
      `SPUBLISH every 50 ms (${published.length}): received ${ranges(received)}; ` +
      `failed (no reachable primary) ${ranges(failed)}; reached no subscriber ${ranges(unheard)}. ` +
      `Subscriber client events: ${subscriberErrors.length} (${[...new Set(subscriberErrors.map((e) => e.replace(/\d+/g, "N")))].join("; ")})`,
  );

  // The killed node starts again and rejoins as a replica of the node that took over.
  await cluster.restart(before);
  expect(before.running).toBe(true);
  await cluster.waitHealthy();
  expect((await cluster.primaryFor(key)).port).toBe(after.port);
  expect(await eventually(() => replicaOf(after.port))).toBe(before.port);
}, 30_000);

test("waitHealthy times out with the nodes' CLUSTER INFO when a shard has no primary", async () => {
  const primary = await cluster.primaryFor("harness:down");
  const replicaPort = await replicaOf(primary.port);
  await cluster.kill(primary);
  await cluster.kill(cluster.nodes.find((node) => node.port === replicaPort)!);
  await expect(cluster.waitHealthy(500)).rejects.toThrow(
    /not healthy within 500 ms[^]*cluster_state:/,
  );
});

/** Retries `attempt` every 50 ms until it resolves; rethrows its error after `timeoutMs`. */
async function eventually<T>(attempt: () => Promise<T>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(50);
    }
  }
}

/** The port of the (running) node that replicates the primary on `primaryPort`. */
async function replicaOf(primaryPort: number): Promise<number> {
  for (const node of cluster.nodes) {
    if (!node.running || node.port === primaryPort) continue;
    const role = (await redisCommand(node.port, ["ROLE"])) as RespReply[];
    if (role[0] === "slave" && role[2] === primaryPort && role[3] === "connected") return node.port;
  }
  throw new Error(`No connected replica of ${primaryPort}`);
}
