import request from "supertest";
import { collectEvents } from "@sluice/express-sse/testing";
import { STREAM_ERRORS } from "../src/feeds/private";
import { UserChannels } from "../src/feeds/user-channels";
import { delay, disposeAll, eventSource, listen, makeApp, waitFor } from "./harness";
import { eventsPath, login, notify } from "./helpers/private";

afterEach(disposeAll);

const MINUTE = 60_000;

describe("per-user channels are bounded", () => {
  test("a channel with no subscriber is closed once idle for userChannelIdleMs, not before", async () => {
    const app = makeApp({ userChannelIdleMs: 10 * MINUTE });
    const channels = app.feeds.private.channels;
    const { cookie } = await login(app, "alice");
    const start = Date.now();
    await notify(app, cookie, "bob", "are you there?");
    const bob = channels.peek("bob")!;
    expect(channels.size).toBe(1);

    channels.sweep(start + 10 * MINUTE - 1000);
    expect(channels.peek("bob")).toBe(bob);
    channels.sweep(Date.now() + 10 * MINUTE);
    expect(channels.peek("bob")).toBeUndefined();
    expect(bob.closed).toBe(true);
    expect(channels.size).toBe(0);
  });

  test("a subscribed channel is never closed; the idle clock starts when its last subscriber leaves", async () => {
    const app = makeApp({ userChannelIdleMs: 10 * MINUTE });
    const channels = app.feeds.private.channels;
    const { url } = await listen(app);
    const alice = await login(app, "alice");
    const source = eventSource(`${url}${eventsPath(alice.token)}`);
    await waitFor(() => channels.peek("alice")?.size === 1, "alice's stream");
    const channel = channels.peek("alice")!;

    channels.sweep(Date.now() + 60 * MINUTE); // long "idle", but subscribed
    expect(channels.peek("alice")).toBe(channel);

    await delay(300); // so "idle since she joined" and "idle since she left" differ
    source.close();
    await waitFor(() => channel.size === 0, "alice to leave");
    const left = Date.now();
    channels.sweep(left + 10 * MINUTE - 100); // not quite idle since leaving: kept for her resume
    expect(channels.peek("alice")).toBe(channel);
    channels.sweep(left + 10 * MINUTE + 100);
    expect(channels.peek("alice")).toBeUndefined();
  });

  test("the app's own timer closes idle channels", async () => {
    const app = makeApp({ userChannelIdleMs: 40 });
    const { cookie } = await login(app, "alice");
    await notify(app, cookie, "bob", "hi");
    await notify(app, cookie, "carol", "hi");
    expect(app.feeds.private.channels.size).toBe(2);
    await waitFor(() => app.feeds.private.channels.size === 0, "the sweep", 1000);
  });

  test("at the cap, the least recently used channel without subscribers makes room", async () => {
    const app = makeApp({ maxUserChannels: 3 });
    const channels = app.feeds.private.channels;
    const { cookie } = await login(app, "alice");
    for (const to of ["a", "b", "c"]) await notify(app, cookie, to, "hi");
    await notify(app, cookie, "a", "again"); // a is now the most recently used
    const b = channels.peek("b")!;
    await notify(app, cookie, "d", "hi");
    expect(channels.size).toBe(3);
    expect(channels.peek("b")).toBeUndefined();
    expect(b.closed).toBe(true);
    expect(["a", "c", "d"].map((u) => channels.peek(u) !== undefined)).toEqual([true, true, true]);
    for (let i = 0; i < 50; i++) await notify(app, cookie, `user${i}`, "spray");
    expect(channels.size).toBe(3);
  });

  test("at the cap with every channel subscribed: 503 for a new stream and a new recipient, nobody evicted", async () => {
    const app = makeApp({ maxUserChannels: 2 });
    const channels = app.feeds.private.channels;
    const { url } = await listen(app);
    const alice = await login(app, "alice");
    const bob = await login(app, "bob");
    const carol = await login(app, "carol");
    eventSource(`${url}${eventsPath(alice.token)}`);
    eventSource(`${url}${eventsPath(bob.token)}`);
    await waitFor(
      () => channels.peek("alice")?.size === 1 && channels.peek("bob")?.size === 1,
      "two streams",
    );

    const stream = await request(app).get(eventsPath(carol.token)).expect(503);
    expect(stream.body).toEqual({ error: STREAM_ERRORS.busy });
    expect(stream.headers["retry-after"]).toBe("30");
    const sent = await request(app)
      .post("/api/me/notify")
      .set("Cookie", carol.cookie)
      .send({ to: "dave", text: "hi" })
      .expect(503);
    expect(sent.body).toEqual({ error: STREAM_ERRORS.busy });
    expect(channels.size).toBe(2);
    // Subscribed users are still reachable.
    await notify(app, carol.cookie, "alice", "still here");
    expect(channels.peek("alice")!.stats().events).toBe(1);
  });

  test("resuming from an id of a channel that was closed gets event: reset, never a wrong replay", async () => {
    const app = makeApp();
    const channels = app.feeds.private.channels;
    const alice = await login(app, "alice");
    const old = await notify(app, alice.cookie, "alice", "before");
    channels.sweep(Date.now() + 60 * MINUTE);
    expect(channels.size).toBe(0);
    const newer = await notify(app, alice.cookie, "alice", "after");
    const { events } = await collectEvents(app, { path: eventsPath(alice.token, old), count: 1 });
    expect(events[0]).toMatchObject({ event: "reset", id: newer });
    expect(JSON.parse(events[0]!.data)).toMatchObject({ reason: "unknown", newestId: newer });
  });

  test("stats() never go down when channels are closed (they feed Prometheus counters)", async () => {
    const app = makeApp();
    const channels = app.feeds.private.channels;
    const { cookie } = await login(app, "alice");
    for (const to of ["a", "b", "a"]) await notify(app, cookie, to, "hi");
    expect(channels.stats()).toMatchObject({ events: 3, subscribers: 0 });
    channels.sweep(Date.now() + 60 * MINUTE);
    expect(channels.size).toBe(0);
    expect(channels.stats()).toMatchObject({ events: 3, subscribers: 0 });
    await notify(app, cookie, "a", "hi");
    expect(channels.stats().events).toBe(4);
  });

  test("app.close() closes every channel and ends their streams; later acquires get nothing", async () => {
    const app = makeApp();
    const alice = await login(app, "alice");
    const pending = collectEvents(app, {
      path: eventsPath(alice.token),
      timeout: 3000,
      until: () => false,
    });
    await waitFor(() => app.feeds.private.channels.peek("alice")?.size === 1, "alice's stream");
    const channel = app.feeds.private.channels.peek("alice")!;
    await app.close();
    expect((await pending).ended).toBe(true);
    expect(channel.closed).toBe(true);
    expect(app.feeds.private.channels.size).toBe(0);
    expect(app.feeds.private.channels.acquire("alice")).toBeUndefined();
  });
});

describe("UserChannels with an injected clock", () => {
  test("idleMs counts from the last use; a use moves the channel to the back of the LRU order", async () => {
    let now = 0;
    const channels = new UserChannels({ idleMs: 1000, max: 2, now: () => now });
    try {
      const a = channels.acquire("a")!;
      now = 500;
      channels.acquire("b");
      now = 900;
      expect(channels.acquire("a")).toBe(a); // used again: a is now newer than b
      now = 1000;
      const c = channels.acquire("c")!; // at the cap: b, the least recently used, goes
      expect(channels.peek("b")).toBeUndefined();
      now = 1899;
      channels.sweep();
      expect(channels.peek("a")).toBe(a);
      now = 1900;
      channels.sweep();
      expect(channels.peek("a")).toBeUndefined();
      expect(channels.peek("c")).toBe(c);
      now = 2000;
      channels.sweep();
      expect(channels.size).toBe(0);
    } finally {
      await channels.close();
    }
  });
});
