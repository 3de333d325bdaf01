/**
 * How long presence lives in Redis: a channel whose subscribers never change keeps its count for
 * longer than the presence hash's TTL, a hash lost anyway is written again, and a process that
 * the others took for dead (its registry entry expired) writes its fields again once it is back.
 * Two adapters in this process stand for two processes (each has its own process id).
 */
import express from "express";
import type http from "node:http";
import type { AddressInfo } from "node:net";
import { Channel, sse } from "@sluice/express-sse";
import type { RedisAdapter } from "../src";
import { presenceKey } from "../src/presence";
import { streamKey } from "../src/keys";
import { adapterPool } from "./helpers/adapters";
import {
  adminCommand,
  ensureRedisServer,
  startRedisServer,
  type RedisServer,
} from "./helpers/redis-server";
import { closeAllStreams, openStream, type StreamClient } from "./helpers/sse-client";
import { waitFor } from "../../express-sse/test/helpers/server";

/**
 * A short TTL: renewals every 66 ms, presence hashes expire after 2 s without a write, and are
 * kept alive once they are 1 s old (so a loaded machine has a second of slack).
 */
const PRESENCE_TTL = 200;
const GRACE = PRESENCE_TTL * 10;

let redis: RedisServer;
const pool = adapterPool();
const servers: http.Server[] = [];
const channels: Channel[] = [];
let run = 0;

beforeAll(async () => {
  ensureRedisServer();
  redis = await startRedisServer();
});

afterEach(async () => {
  closeAllStreams();
  await Promise.all(channels.splice(0).map((channel) => channel.close()));
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  await pool.close();
});

afterAll(async () => {
  await redis?.dispose();
});

interface Node {
  adapter: RedisAdapter;
  channel: Channel;
  url: string;
}

/** A "process": an adapter, a channel on it, and a server whose `/events?user=` subscribes. */
async function node(prefix: string, name: string): Promise<Node> {
  const adapter = await pool.make({ url: redis.url, prefix, presenceTtl: PRESENCE_TTL });
  const channel = new Channel(name, { adapter, presenceInterval: 20 });
  channel.on("count", () => undefined); // follow the count (as an app showing it would)
  channels.push(channel);
  const app = express();
  app.get("/events", sse({ heartbeat: 0 }), (req, res) => {
    void channel.subscribe(res, { member: { user: String(req.query["user"]) } });
  });
  const server = app.listen(0, "127.0.0.1");
  servers.push(server);
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  const { port } = server.address() as AddressInfo;
  return { adapter, channel, url: `http://127.0.0.1:${port}/events` };
}

const admin = (args: string[]) => adminCommand({ url: redis.url }, args);

async function users(channel: Channel): Promise<string[]> {
  const { members } = await channel.members();
  return (members as Array<{ user: string }>).map((m) => m.user).sort();
}

async function twoNodes(): Promise<{ a: Node; b: Node; hash: string; clients: StreamClient[] }> {
  const prefix = `lifetime:${process.pid}:${++run}:`;
  const a = await node(prefix, "room");
  const b = await node(prefix, "room");
  const clients = [
    openStream(`${a.url}?user=ann`),
    openStream(`${a.url}?user=bob`),
    openStream(`${b.url}?user=cid`),
  ];
  await Promise.all(clients.map((client) => client.opened));
  await waitFor(() => a.channel.count === 3 && b.channel.count === 3, {
    what: `a count of 3 on both (${a.channel.count}, ${b.channel.count})`,
  });
  return { a, b, hash: presenceKey(streamKey(prefix, "room")), clients };
}

describe("presence on Redis over time", () => {
  test("subscribers that never change keep their count and members past the hash's TTL", async () => {
    const { a, b, hash } = await twoNodes();
    // Two and a half TTLs with no join or leave: without renewal the hash would expire after one.
    const until = Date.now() + 2.5 * GRACE;
    while (Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, GRACE / 4));
      expect(Number(await admin(["PTTL", hash]))).toBeGreaterThan(0);
    }
    expect(await users(a.channel)).toEqual(["ann", "bob", "cid"]);
    expect((await b.channel.members()).total).toBe(3);
    expect(a.channel.count).toBe(3);
  }, 30_000);

  test("a presence hash deleted from under the processes is written again by both", async () => {
    const { a, b, hash } = await twoNodes();
    expect(Number(await admin(["DEL", hash]))).toBe(1);
    // Each notices at its next keep-alive (within half the hash's TTL plus a renewal) and rewrites.
    await waitFor(async () => (await users(a.channel)).length === 3, {
      timeout: GRACE * 5,
      what: "both processes' fields back in the hash",
    });
    expect(await users(b.channel)).toEqual(["ann", "bob", "cid"]);
  }, 30_000);

  test("a process the others took for dead writes its fields again when it renews", async () => {
    const { a, b, hash } = await twoNodes();
    const fields = (await admin(["HKEYS", hash])) as string[];
    // One process's field (whichever comes first): make its entry look expired and drop the
    // field, as another process does once it sees the entry expired.
    const field = fields.find((name) => name !== "#")!;
    const id = field.slice(0, field.indexOf("."));
    const registry = `lifetime:${process.pid}:${run}:presence`;
    const [seconds, micros] = (await admin(["TIME"])) as [string, string];
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    await admin(["ZADD", registry, String(now - 1), id]);
    expect(Number(await admin(["HDEL", hash, field]))).toBe(1);
    // Its next renewal finds the entry expired: it writes the field again, and the count is whole.
    await waitFor(async () => (await a.channel.members()).total === 3, {
      timeout: GRACE * 5,
      what: "the total back at 3 after the revival",
    });
    expect(await users(b.channel)).toEqual(["ann", "bob", "cid"]);
    await waitFor(() => a.channel.count === 3 && b.channel.count === 3, {
      timeout: GRACE * 5,
      what: `a count of 3 on both again (${a.channel.count}, ${b.channel.count})`,
    });
  }, 30_000);
});
