import request from "supertest";
import { collectEvents } from "@sluice/express-sse/testing";
import {
  ensureRedisServer,
  startRedisServer,
  type RedisServer,
} from "../../../packages/redis/test/helpers/redis-server";
import { createApp } from "../src/app";
import { startReplicas, stopReplicas, type Replica } from "./helpers/replicas";
import { STREAM_ERRORS } from "../src/feeds/private";
import type { Notification } from "../src/feeds/user-channels";
import { eventsPath, login, mintToken, notify } from "./helpers/private";

jest.setTimeout(30_000);

// Two replicas of the demo on one Redis, as behind nginx in docker compose: one STREAM_SECRET
// for both, so a token minted by either opens a stream on the other, and the per-user channels
// go through the Redis adapter, so a notification sent through either reaches the recipient's
// stream wherever it is.
const SECRET = "shared-replica-secret-0123456789-abcdef";
let redis: RedisServer;
let replicas: Replica[] = [];

beforeAll(async () => {
  ensureRedisServer();
  redis = await startRedisServer();
  replicas = await startReplicas(redis.url, 2, { streamSecret: SECRET });
});

afterAll(async () => {
  await stopReplicas(replicas);
  await redis?.dispose();
});

/** Names unique to one test: the Redis streams (`sluice:user:<name>`) outlive the test. */
let run = 0;
const names = (...users: string[]) => {
  run++;
  return users.map((u) => `${u}-${run}`);
};

/** A brand-new channel learns its starting point from Redis; give it that round trip. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 200));

const texts = (events: Array<{ data: string }>) =>
  events.map((e) => (JSON.parse(e.data) as Notification).text);

describe("private streams with REDIS_URL", () => {
  test("a token minted by one replica opens the stream on the other; a notification sent through either reaches the recipient only", async () => {
    const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
    const [alice, bob] = names("alice", "bob");
    const aliceSession = await login(a.app, alice!);
    const bobSession = await login(b.app, bob!);

    const onB = collectEvents(b.url, { path: eventsPath(aliceSession.token), count: 2 });
    const bobOnA = collectEvents(a.url, { path: eventsPath(bobSession.token), duration: 1500 });
    await settle();
    const first = await notify(a.app, bobSession.cookie, alice!, "through A");
    const second = await notify(b.app, bobSession.cookie, alice!, "through B");
    const { status, events } = await onB;
    expect(status).toBe(200);
    expect(events.map((e) => e.id)).toEqual([first, second]);
    expect(texts(events)).toEqual(["through A", "through B"]);
    expect(JSON.parse(events[0]!.data)).toMatchObject({ from: bob });
    expect((await bobOnA).events).toEqual([]);
  });

  test("alice resumes on the other replica, with a fresh token and ?lastEventId=, missing nothing", async () => {
    const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
    const [alice, bob] = names("alice", "bob");
    const aliceSession = await login(a.app, alice!);
    const bobSession = await login(a.app, bob!);
    const n1 = await notify(a.app, bobSession.cookie, alice!, "n1");
    await notify(b.app, bobSession.cookie, alice!, "n2");
    await notify(a.app, bobSession.cookie, alice!, "n3");

    const fresh = await mintToken(b.app, aliceSession.cookie);
    const { events } = await collectEvents(b.url, { path: eventsPath(fresh, n1), count: 2 });
    expect(texts(events)).toEqual(["n2", "n3"]);
  });

  test("bob resuming from one of alice's ids gets none of alice's events", async () => {
    const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
    const [alice, bob] = names("alice", "bob");
    const aliceSession = await login(a.app, alice!);
    const bobSession = await login(a.app, bob!);
    const aliceIds: string[] = [];
    await notify(a.app, aliceSession.cookie, bob!, "bob's first");
    for (let i = 1; i <= 3; i++) {
      aliceIds.push(await notify(a.app, bobSession.cookie, alice!, `secret ${i}`));
    }
    await notify(a.app, aliceSession.cookie, bob!, "bob's second");
    const { events, raw } = await collectEvents(b.url, {
      path: eventsPath(bobSession.token, aliceIds[0]),
      duration: 500,
    });
    // Redis ids are ordered across streams, but alice's carries her stream's tag: on bob's
    // channel it is unknown (a reset). Whatever the adapter makes of it, only bob's own events
    // could ever follow.
    expect(raw).not.toContain("secret");
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) {
      if (e.event !== "reset") expect(JSON.parse(e.data)).toMatchObject({ from: alice });
    }
  });

  test("an idle channel closed on a replica keeps its history in Redis: a later resume replays it", async () => {
    const [a] = replicas as [(typeof replicas)[0]];
    const [alice] = names("alice");
    const session = await login(a.app, alice!);
    const n1 = await notify(a.app, session.cookie, alice!, "n1");
    await notify(a.app, session.cookie, alice!, "n2");
    a.app.feeds.private.channels.sweep(Date.now() + 60 * 60_000);
    expect(a.app.feeds.private.channels.peek(alice!)).toBeUndefined();
    const { events } = await collectEvents(a.url, {
      path: eventsPath(session.token, n1),
      count: 1,
    });
    expect(events[0]).toMatchObject({ event: "notification" });
    expect(texts(events)).toEqual(["n2"]);
  });

  test("a replica with another secret refuses the token (replicas need one shared STREAM_SECRET)", async () => {
    const [a] = replicas as [(typeof replicas)[0]];
    const [alice] = names("alice");
    const { token, cookie } = await login(a.app, alice!);
    const other = createApp({ streamSecret: "a-different-secret-0123456789-abcdefgh" });
    try {
      const res = await request(other).get(eventsPath(token)).expect(401);
      expect(res.body).toEqual({ error: STREAM_ERRORS.invalid });
      await request(other).post("/api/stream-token").set("Cookie", cookie).expect(401);
    } finally {
      await other.close();
    }
  });
});
