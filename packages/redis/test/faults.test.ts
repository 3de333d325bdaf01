/**
 * Faults: Redis unreachable at publish time, the pub/sub connection killed, Redis restarted. Redis
 * runs with append-only persistence (fsync always), so what it acknowledged survives a restart;
 * the point is that the adapter neither loses nor repeats anything around the fault.
 */
import express from "express";
import { Channel, sse, type ChannelOptions } from "@sluice/express-sse";
import { closeAllServers, listen, sleep, waitFor } from "../../express-sse/test/helpers/server";
import { resolveHistoryOptions } from "../../express-sse/src/history";
import { RedisPublishError, createRedisAdapter, type RedisAdapter } from "../src";
import { compareEventIds } from "../src/codec";
import { feedStarted } from "./helpers/adapters";
import { adminCommand, startRedisServer, type RedisServer } from "./helpers/redis-server";
import { closeAllStreams, dataOf, openStream, type StreamClient } from "./helpers/sse-client";

let redis: RedisServer;
let adapters: RedisAdapter[] = [];
let counter = 0;

beforeAll(async () => {
  redis = await startRedisServer({ appendOnly: true });
});

afterAll(async () => {
  await redis.dispose();
});

/**
 * What the tests' channels reported (their `error` events). While Redis is down or frozen a
 * channel's presence push can fail too, depending on timing: collected and checked after each
 * test (presence failures only), not left to print as process warnings mid-run.
 */
let channelReports: string[] = [];

function channelOf(name: string, options: ChannelOptions): Channel {
  const channel = new Channel(name, options);
  channel.on("error", (err: Error) => channelReports.push(err.message));
  return channel;
}

afterEach(async () => {
  for (const report of channelReports) expect(report).toMatch(/^Presence of channel "[^"]+": /);
  channelReports = [];
  closeAllStreams();
  await closeAllServers();
  await Promise.all(adapters.map((adapter) => adapter.close()));
  adapters = [];
  if (!redis.running) await redis.start();
});

const unique = (label: string) => `faults:${label}:${process.pid}:${++counter}`;

/** A URL adapter with fast reconnects; its reports are collected, not printed. */
function adapterFor(reports: string[] = []): RedisAdapter {
  const adapter = createRedisAdapter({
    url: redis.url,
    reconnect: { minDelay: 20, maxDelay: 250 },
  });
  adapter.on("error", (err) => reports.push(err.message));
  adapters.push(adapter);
  return adapter;
}

/** Runs `command` on a short-lived connection (so that restarts don't concern it). */
const admin = (args: string[]): Promise<unknown> => adminCommand({ url: redis.url }, args);

/** Kills every pub/sub connection of the adapters (`CLIENT KILL ID`), as a network blip would. */
async function killSubscribers(): Promise<number> {
  const list = String(await admin(["CLIENT", "LIST"]));
  const ids = list
    .split("\n")
    .filter((line) => line.includes("name=sluice-sub "))
    .map((line) => /(?:^|\s)id=(\d+)/.exec(line)![1]!);
  for (const id of ids) await admin(["CLIENT", "KILL", "ID", id]);
  return ids.length;
}

/** An app with `channel` at /c; resolves with its URL. */
async function serve(channel: Channel): Promise<string> {
  const app = express();
  app.use(sse({ heartbeat: 0 }));
  app.get("/c", (_req, res) => void channel.subscribe(res));
  return `${(await listen(app)).url}/c`;
}

test("a publish while Redis is down rejects at once with a clear error, and works again after", async () => {
  const adapter = adapterFor();
  const channel = channelOf(unique("down"), { adapter });
  await adapter.ready();
  await channel.publish("before");

  await redis.stop();
  await waitFor(() => !adapter.stats().subscriberConnected && !adapter.stats().commandsConnected, {
    what: "the adapter to notice",
  });
  const started = Date.now();
  const error = await channel.publish("during").catch((err: unknown) => err);
  expect(Date.now() - started).toBeLessThan(500); // never queued (publishTimeout is 5 s)
  expect(error).toBeInstanceOf(RedisPublishError);
  expect((error as RedisPublishError).stored).toBe(false);
  expect((error as Error).message).toMatch(
    /^Could not publish to channel "faults:down:\d+:\d+": Redis is unreachable \(.+\)\. The event was not stored\.$/,
  );

  await redis.start();
  await adapter.ready();
  await waitFor(() => adapter.stats().subscriberConnected, { what: "the pub/sub connection" });
  expect(await channel.publish("after")).toMatch(/^\d+-\d+-[a-z]{6}$/);
  await channel.close();
});

test("CLIENT KILL of the pub/sub connections and a Redis restart in the middle of 5,000 events: every client ends with all 5,000, in order, once", async () => {
  const TOTAL = 5000;
  const name = unique("5000");
  const reports: string[] = [];
  const [a, b] = [adapterFor(reports), adapterFor(reports)];
  const [onA, onB] = [a, b].map((adapter) => channelOf(name, { adapter, history: { max: TOTAL } }));
  const [urlA, urlB] = [await serve(onA!), await serve(onB!)];
  // For the publisher's checks: the same stream, read directly (no listener, so not delivered to).
  const probe = a.open(name, { history: resolveHistoryOptions({ max: TOTAL }) });
  await Promise.all([a.ready(), b.ready()]);
  const clients: StreamClient[] = [urlA, urlA, urlB, urlB].map((url) => openStream(url));
  await Promise.all(clients.map((client) => client.opened));
  await waitFor(() => onA!.size === 2 && onB!.size === 2, { what: "4 subscribers" });
  await waitFor(() => feedStarted(a, name) && feedStarted(b, name), {
    what: "both feeds to have their start position",
  });

  const figures: Record<string, number> = {};
  const bothReconnected = (count: number) =>
    a.stats().reconnects >= count && b.stats().reconnects >= count;
  const ids: string[] = [];
  let rejected = 0;
  let unconfirmed = 0;
  let killedAt = 0;
  let restartedAt = 0;

  /** Publishes `data` until Redis confirms it; for an unconfirmed attempt, checks history first. */
  const publishSurely = async (data: string): Promise<string> => {
    for (;;) {
      try {
        return await onA!.publish(data);
      } catch (err) {
        if (!(err instanceof RedisPublishError)) throw err;
        rejected++;
        if (err.stored === undefined) {
          // Sent, no answer: Redis may have stored it. Look before publishing again.
          unconfirmed++;
          for (;;) {
            try {
              const since = await probe.history(ids.at(-1) ?? "0-0");
              if (since.kind !== "events") throw new Error(`unexpected ${since.kind}`);
              const found = since.events.find((event) => event.data === data);
              if (found !== undefined) return found.id;
              break;
            } catch {
              await sleep(20); // Redis is still down
            }
          }
        }
        await sleep(10);
      }
    }
  };

  const started = Date.now();
  for (let i = 0; i < TOTAL; i++) {
    if (i === 1500) {
      killedAt = Date.now();
      expect(await killSubscribers()).toBe(2);
    }
    if (i === 1600) {
      await waitFor(() => bothReconnected(1), { what: "the pub/sub connections to come back" });
    }
    if (i === 3000) {
      // A crash while publishes are on their way: only what is in the append-only file survives,
      // and the publish in flight may or may not be in it.
      void (async () => {
        await redis.stop("SIGKILL");
        await sleep(300);
        await redis.start();
        restartedAt = Date.now();
      })();
    }
    ids.push(await publishSurely(String(i)));
    if (killedAt && !figures["clientKillRecoveryMs"] && bothReconnected(1)) {
      figures["clientKillRecoveryMs"] = Date.now() - killedAt;
    }
    if (restartedAt && !figures["restartRecoveryMs"] && bothReconnected(2)) {
      figures["restartRecoveryMs"] = Date.now() - restartedAt;
    }
  }
  await waitFor(() => clients.every((client) => client.events.length >= TOTAL), {
    timeout: 20_000,
    what: `all ${TOTAL} events on every client (have ${clients.map((c) => c.events.length).join(", ")})`,
  });
  figures["totalMs"] = Date.now() - started;
  await sleep(100); // anything extra (a duplicate) would arrive now

  const expected = Array.from({ length: TOTAL }, (_, i) => String(i));
  for (const client of clients) {
    expect(client.ended).toBe(false); // the clients never noticed
    expect(dataOf(client)).toEqual(expected);
    expect(client.events.map((event) => event.id)).toEqual(ids);
  }
  for (let i = 1; i < ids.length; i++)
    expect(compareEventIds(ids[i - 1]!, ids[i]!)).toBeLessThan(0);
  // Once for the kill, once for the restart (more only if a reconnect attempt itself failed).
  expect(a.stats().reconnects).toBeGreaterThanOrEqual(2);
  expect(b.stats().reconnects).toBeGreaterThanOrEqual(2);
  expect(rejected).toBeGreaterThan(0); // the restart did make publishes fail
  expect(reports.some((message) => message.startsWith("Lost the Redis pub/sub connection"))).toBe(
    true,
  );
  console.log(
    `5,000 events, 4 clients on 2 adapters: CLIENT KILL recovered in ${figures["clientKillRecoveryMs"]} ms, ` +
      `restart (300 ms down) recovered ${figures["restartRecoveryMs"]} ms after Redis was back; ` +
      `${rejected} publish attempts rejected (${unconfirmed} unconfirmed), total ${figures["totalMs"]} ms`,
  );
  await Promise.all([onA!.close(), onB!.close()]);
}, 60_000);

test("a pub/sub connection that silently stops answering is replaced, and delivery resumes where it was", async () => {
  const reports: string[] = [];
  const adapter = createRedisAdapter({
    url: redis.url,
    pingInterval: 200,
    reconnect: { minDelay: 20, maxDelay: 250 },
  });
  adapter.on("error", (err) => reports.push(err.message));
  adapters.push(adapter);
  const channel = channelOf(unique("frozen"), { adapter });
  const client = openStream(await serve(channel));
  await client.opened;
  await waitFor(() => channel.size === 1 && feedStarted(adapter, channel.name), {
    what: "the subscriber, and the feed",
  });
  for (let i = 0; i < 10; i++) await channel.publish(String(i));
  await waitFor(() => client.events.length === 10, { what: "10 events" });

  // Frozen: the TCP connections stay up, nothing answers (a dead NAT entry looks the same).
  redis.signal("SIGSTOP");
  const frozenAt = Date.now();
  await waitFor(() => reports.some((m) => m.includes("no answer to PING")), {
    timeout: 10_000,
    what: "the dead link to be noticed",
  });
  const noticedAfter = Date.now() - frozenAt;
  redis.signal("SIGCONT");
  await waitFor(() => adapter.stats().reconnects === 1 && adapter.stats().commandsConnected, {
    timeout: 10_000,
    what: "a new pub/sub connection",
  });
  for (let i = 10; i < 20; i++) await channel.publish(String(i));
  await waitFor(() => client.events.length >= 20, { what: "20 events" });
  await sleep(50);
  expect(dataOf(client)).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
  expect(noticedAfter).toBeGreaterThanOrEqual(200); // one pingInterval at least
  expect(noticedAfter).toBeLessThan(1000); // at most two, and some slack
  await channel.close();
}, 30_000);

test("Redis restarted empty (no persistence): live subscribers get event: reset, then what follows", async () => {
  const volatile = await startRedisServer(); // no append-only file: a restart loses everything
  try {
    const adapter = createRedisAdapter({
      url: volatile.url,
      reconnect: { minDelay: 20, maxDelay: 250 },
    });
    const reports: string[] = [];
    adapter.on("error", (err) => reports.push(err.message));
    adapters.push(adapter);
    const channel = channelOf(unique("empty"), { adapter });
    const client = openStream(await serve(channel));
    await client.opened;
    await waitFor(() => channel.size === 1, { what: "the subscriber" });
    await adapter.ready();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await channel.publish(String(i)));
    await waitFor(() => client.events.length === 3, { what: "3 events" });

    await volatile.stop("SIGKILL");
    await volatile.start();
    // The feed reads from its last id, finds that Redis no longer knows it, and resets.
    await waitFor(() => adapter.stats().resets === 1, { timeout: 5000, what: "the reset" });
    const after = await channel.publish("after");
    await waitFor(() => client.events.length === 5, { what: "the reset and the next event" });
    expect(client.events).toEqual([
      ...ids.map((id, i) => ({ event: "message", id, data: String(i) })),
      {
        event: "reset",
        id: "",
        data: JSON.stringify({ reason: "unknown", oldestId: null, newestId: null }),
      },
      { event: "message", id: after, data: "after" },
    ]);
    expect(reports).toContainEqual(
      expect.stringMatching(/events this process should have delivered are gone \(unknown\)/),
    );
    await channel.close();
  } finally {
    await volatile.dispose();
  }
});
