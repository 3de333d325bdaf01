import request from "supertest";
import { collectEvents } from "@sluice/express-sse/testing";
import {
  CHAT_ERRORS,
  MEMBERS_INTERVAL_MS,
  MEMBERS_SHOWN,
  checkChatMessage,
} from "../src/feeds/chat";
import { delay, disposeAll, eventSource, listen, makeApp, record, waitFor } from "./harness";
import type { DemoApp } from "../src/app";

afterEach(disposeAll);

interface Message {
  user: string;
  text: string;
  at: string;
}

async function post(app: DemoApp, user: string, text: string): Promise<string> {
  const res = await request(app).post("/api/chat").send({ user, text }).expect(202);
  expect(res.body).toEqual({ id: expect.any(String) });
  return (res.body as { id: string }).id;
}

describe("POST /api/chat", () => {
  test("202 with the id of the published message", async () => {
    const app = makeApp();
    const res = await request(app)
      .post("/api/chat")
      .set("Content-Type", "application/json")
      .send(JSON.stringify({ user: "ada", text: "hello" }))
      .expect(202);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    expect(Object.keys(res.body as object)).toEqual(["id"]);
    expect(typeof (res.body as { id: unknown }).id).toBe("string");
  });

  const u = (n: number) => "u".repeat(n);
  const t = (n: number) => "t".repeat(n);
  // [what, status, body as sent, error]
  const invalid: Array<[string, number, string, string]> = [
    ["malformed JSON", 400, '{"user":"ada","text":', CHAT_ERRORS.malformed],
    ["a JSON array", 400, '["ada","hi"]', CHAT_ERRORS.notObject],
    ["JSON null", 400, "null", CHAT_ERRORS.notObject],
    ["a JSON string", 400, '"hi"', CHAT_ERRORS.notObject],
    ["user missing", 400, '{"text":"hi"}', CHAT_ERRORS.user],
    ["user a number", 400, '{"user":42,"text":"hi"}', CHAT_ERRORS.user],
    ["user null", 400, '{"user":null,"text":"hi"}', CHAT_ERRORS.user],
    ["user empty", 400, '{"user":"","text":"hi"}', CHAT_ERRORS.user],
    ["user only spaces", 400, '{"user":"   ","text":"hi"}', CHAT_ERRORS.user],
    ["user 33 characters", 400, `{"user":"${u(33)}","text":"hi"}`, CHAT_ERRORS.user],
    ["text missing", 400, '{"user":"ada"}', CHAT_ERRORS.text],
    ["text an object", 400, '{"user":"ada","text":{"a":1}}', CHAT_ERRORS.text],
    ["text empty", 400, '{"user":"ada","text":""}', CHAT_ERRORS.text],
    ["text only whitespace", 400, '{"user":"ada","text":" \\n\\t "}', CHAT_ERRORS.text],
    ["text 501 characters", 400, `{"user":"ada","text":"${t(501)}"}`, CHAT_ERRORS.text],
    ["both invalid (user is reported first)", 400, '{"user":1,"text":2}', CHAT_ERRORS.user],
  ];
  test.each(invalid)("%s: %i with the exact JSON error", async (_what, status, body, error) => {
    const app = makeApp();
    const res = await request(app)
      .post("/api/chat")
      .set("Content-Type", "application/json")
      .send(body)
      .expect(status);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    expect(res.body).toEqual({ error });
    expect(app.feeds.chat.channel.stats().events).toBe(0);
  });

  test("the exact wording of the errors (the table above uses these constants)", () => {
    expect(CHAT_ERRORS).toEqual({
      contentType: "Content-Type must be application/json",
      charset: "the body must be UTF-8 JSON",
      encoding: "unsupported Content-Encoding",
      tooLarge: "the body must be at most 4kb",
      malformed: "the body is not valid JSON",
      unreadable: "the body could not be read",
      notObject: "the body must be a JSON object with user and text",
      user: "user must be a string of 1 to 32 characters",
      text: "text must be a string of 1 to 500 characters",
      closed: "the chat is closed",
      unavailable: "the message could not be stored; try again",
    });
  });

  test("a body over 4kb: 413", async () => {
    const app = makeApp();
    const body = JSON.stringify({ user: "ada", text: "x".repeat(5000) });
    const res = await request(app)
      .post("/api/chat")
      .set("Content-Type", "application/json")
      .send(body)
      .expect(413);
    expect(res.body).toEqual({ error: "the body must be at most 4kb" });
  });

  test("a body of exactly 4096 bytes is read (the limit is inclusive), over it is not", async () => {
    const app = makeApp();
    const base = JSON.stringify({ user: "ada", text: "hi", pad: "" });
    const exact = JSON.stringify({ user: "ada", text: "hi", pad: "p".repeat(4096 - base.length) });
    expect(Buffer.byteLength(exact)).toBe(4096);
    await request(app).post("/api/chat").type("json").send(exact).expect(202);
    await request(app)
      .post("/api/chat")
      .type("json")
      .send(exact.replace('"pad":"', '"pad":"p'))
      .expect(413);
  });

  test.each([
    ["text/plain", "hello"],
    ["application/x-www-form-urlencoded", "user=ada&text=hi"],
    ["multipart/form-data; boundary=x", "--x--"],
  ])("Content-Type %s: 415", async (type, body) => {
    const res = await request(makeApp())
      .post("/api/chat")
      .set("Content-Type", type)
      .send(body)
      .expect(415);
    expect(res.body).toEqual({ error: "Content-Type must be application/json" });
  });

  test("no Content-Type at all: 415", async () => {
    const res = await request(makeApp()).post("/api/chat").expect(415);
    expect(res.body).toEqual({ error: CHAT_ERRORS.contentType });
  });

  test("application/json with an empty body: 400 (it parses as {}, so user is missing)", async () => {
    const res = await request(makeApp())
      .post("/api/chat")
      .set("Content-Type", "application/json")
      .expect(400);
    expect(res.body).toEqual({ error: CHAT_ERRORS.user });
  });

  test("a charset other than UTF-8: 415", async () => {
    const res = await request(makeApp())
      .post("/api/chat")
      .set("Content-Type", "application/json; charset=iso-8859-1")
      .send('{"user":"ada","text":"hi"}')
      .expect(415);
    expect(res.body).toEqual({ error: CHAT_ERRORS.charset });
  });

  test("application/json; charset=utf-8 is fine", async () => {
    await request(makeApp())
      .post("/api/chat")
      .set("Content-Type", "application/json; charset=utf-8")
      .send('{"user":"ada","text":"hi"}')
      .expect(202);
  });

  test("limits are inclusive, in characters (code points), after trimming", async () => {
    const app = makeApp();
    const { url } = await listen(app);
    const pending = collectEvents(url, { path: "/api/chat", count: 3 });
    await waitFor(() => app.feeds.chat.channel.size === 1, "the subscriber");
    await post(app, u(32), t(500));
    await post(app, "  ada  ", `  ${t(500)}\n`); // 500 after trim
    await post(app, "🙂".repeat(32), "é".repeat(500)); // 64 UTF-16 units, 32 characters
    const { events } = await pending;
    const data = events.map((e) => JSON.parse(e.data) as Message);
    expect(data[0]).toMatchObject({ user: u(32), text: t(500) });
    expect(data[1]).toMatchObject({ user: "ada", text: t(500) });
    expect(data[2]).toMatchObject({ user: "🙂".repeat(32), text: "é".repeat(500) });
    expect(checkChatMessage({ user: "🙂".repeat(33), text: "x" })).toEqual({
      ok: false,
      error: CHAT_ERRORS.user,
    });
  });

  test("after close(): 503", async () => {
    const app = makeApp();
    await app.close();
    // The app-wide guard answers first; the route's own 503 covers a publish racing the close.
    const res = await request(app).post("/api/chat").send({ user: "a", text: "b" }).expect(503);
    expect(res.body).toEqual({ error: expect.any(String) });
  });
});

describe("GET /api/chat", () => {
  test("a message arrives as an unnamed event with an id and {user, text, at}", async () => {
    const app = makeApp();
    const { url } = await listen(app);
    const pending = collectEvents(url, { path: "/api/chat", count: 1 });
    await waitFor(() => app.feeds.chat.channel.size === 1, "the subscriber");
    const id = await post(app, "ada", "hello");
    const { events } = await pending;
    expect(events[0]!.event).toBe("message");
    expect(events[0]!.id).toBe(id);
    const message = JSON.parse(events[0]!.data) as Message;
    expect(message).toEqual({ user: "ada", text: "hello", at: expect.any(String) });
    expect(new Date(message.at).toISOString()).toBe(message.at);
  });

  test("user text cannot break the framing or inject an event", async () => {
    const app = makeApp();
    const { url } = await listen(app);
    const pending = collectEvents(url, { path: "/api/chat", count: 2 });
    await waitFor(() => app.feeds.chat.channel.size === 1, "the subscriber");
    const evil = "hi\n\nevent: admin\ndata: x";
    const id = await post(app, "mallory\n\nevent: admin", evil);
    await post(app, "ada", "after");
    const { events, raw } = await pending;
    expect(events.map((e) => e.event)).toEqual(["message", "message"]);
    expect(events[0]!.id).toBe(id);
    const message = JSON.parse(events[0]!.data) as Message;
    expect(message.text).toBe(evil);
    expect(message.user).toBe("mallory\n\nevent: admin");
    expect(JSON.parse(events[1]!.data)).toMatchObject({ user: "ada", text: "after" });
    // On the wire no line starts a field of its own: the text is one JSON-escaped data line.
    expect(raw).not.toMatch(/^event: admin/m);
    expect(raw.split("\n").filter((line) => line.startsWith("data:"))).toHaveLength(2);

    // And as raw string data (no JSON), the library still keeps it inside one event.
    await waitFor(() => app.feeds.chat.channel.size === 0, "the first subscriber to leave");
    const direct = collectEvents(url, { path: "/api/chat", count: 1 });
    await waitFor(() => app.feeds.chat.channel.size === 1, "the second subscriber");
    await app.feeds.chat.channel.publish(evil as never);
    const { events: plain } = await direct;
    expect(plain).toEqual([{ event: "message", data: evil, id: expect.any(String) }]);
  });

  test("resumes after Last-Event-ID: every missed message once, in order, then live", async () => {
    const app = makeApp();
    const { url } = await listen(app);
    const ids: string[] = [];
    for (let i = 1; i <= 5; i++) ids.push(await post(app, "ada", `m${i}`));

    const pending = collectEvents(url, {
      path: "/api/chat",
      headers: { "Last-Event-ID": ids[1]! },
      count: 5,
    });
    await waitFor(() => app.feeds.chat.channel.size === 1, "the resumed subscriber");
    // Published after the resume started: delivered live, after the replay, no duplicate.
    ids.push(await post(app, "ada", "m6"));
    ids.push(await post(app, "ada", "m7"));
    const { events } = await pending;
    expect(events.map((e) => e.id)).toEqual(ids.slice(2));
    expect(events.map((e) => (JSON.parse(e.data) as Message).text)).toEqual([
      "m3",
      "m4",
      "m5",
      "m6",
      "m7",
    ]);
    expect(app.feeds.chat.channel.stats().resumes).toBe(1);
  });

  test("resuming from the newest id replays nothing", async () => {
    const app = makeApp();
    const last = await post(app, "ada", "only");
    const { events } = await collectEvents(app, {
      path: "/api/chat",
      headers: { "Last-Event-ID": last },
      duration: 150,
    });
    expect(events).toEqual([]);
  });

  test("an unknown Last-Event-ID gets `event: reset`", async () => {
    const app = makeApp();
    const newest = await post(app, "ada", "one");
    const { events } = await collectEvents(app, {
      path: "/api/chat",
      headers: { "Last-Event-ID": "not-an-id" },
      count: 1,
    });
    expect(events[0]).toMatchObject({ event: "reset", id: newest });
    expect(JSON.parse(events[0]!.data)).toMatchObject({ reason: "unknown", newestId: newest });
    expect(app.feeds.chat.channel.stats().resets).toBe(1);
  });

  test("an EventSource that is cut off reconnects with Last-Event-ID and misses nothing", async () => {
    const app = makeApp({ retryMs: 50 });
    const { url } = await listen(app);
    const source = eventSource(`${url}/api/chat`);
    const texts: string[] = [];
    const seenIds: string[] = [];
    let opens = 0;
    source.addEventListener("open", () => opens++);
    source.addEventListener("message", (e) => {
      texts.push((JSON.parse(e.data) as Message).text);
      seenIds.push(e.lastEventId);
    });
    await waitFor(() => opens === 1 && app.feeds.chat.channel.size === 1, "the first connection");
    await post(app, "ada", "before-1");
    await post(app, "ada", "before-2");
    await waitFor(() => texts.length === 2, "the first two messages");

    // The server drops the stream (as a deploy or a proxy would); publish while it is away.
    for (const stream of [...app.feeds.chat.events.streams]) stream.close();
    await waitFor(() => app.feeds.chat.channel.size === 0, "the subscriber to leave");
    await post(app, "ada", "missed-1");
    await post(app, "ada", "missed-2");

    await waitFor(() => opens === 2, "the reconnect");
    await post(app, "ada", "after");
    await waitFor(() => texts.length === 5, "five messages in all");
    await delay(50);
    expect(texts).toEqual(["before-1", "before-2", "missed-1", "missed-2", "after"]);
    expect(new Set(seenIds).size).toBe(5);
    expect(app.feeds.chat.channel.stats().resumes).toBe(1);
  });
});

describe("GET /api/chat?user=: who is in the chat", () => {
  type Members = { total: number; users: string[] };
  const lastMembers = (seen: string[]): Members | undefined =>
    seen.length === 0 ? undefined : (JSON.parse(seen[seen.length - 1]!) as Members);
  const sorted = (m: Members | undefined) => m && { total: m.total, users: [...m.users].sort() };

  test("every client hears who is here: names once each, unnamed clients in the total only; a client that leaves is gone", async () => {
    const app = makeApp();
    const { url } = await listen(app);
    const ann = eventSource(`${url}/api/chat?user=ann`);
    const seenAnn = record(ann, "members");
    await waitFor(() => lastMembers(seenAnn)?.total === 1, "ann to see herself");
    expect(lastMembers(seenAnn)).toEqual({ total: 1, users: ["ann"] });

    const bob = eventSource(`${url}/api/chat?user=${encodeURIComponent("  bob ")}`);
    const seenBob = record(bob, "members");
    const nobody = eventSource(`${url}/api/chat`);
    const seenNobody = record(nobody, "members");
    const want = { total: 3, users: ["ann", "bob"] };
    await waitFor(
      () =>
        [seenAnn, seenBob, seenNobody].every(
          (seen) => JSON.stringify(sorted(lastMembers(seen))) === JSON.stringify(want),
        ),
      "all three to see ann and bob, and 3 in all",
    );
    expect(app.feeds.chat.members && sorted(app.feeds.chat.members)).toEqual(want);

    bob.close();
    await waitFor(
      () => JSON.stringify(lastMembers(seenAnn)) === JSON.stringify({ total: 2, users: ["ann"] }),
      "ann to see bob gone",
    );
    expect(lastMembers(seenNobody)).toEqual({ total: 2, users: ["ann"] });
  });

  test("100 joins then 60 leaves in a burst: few members events, at most MEMBERS_SHOWN names, ending on the exact list", async () => {
    const app = makeApp();
    const { url } = await listen(app);
    const watcher = eventSource(`${url}/api/chat?user=watcher`);
    const seen = record(watcher, "members");
    await waitFor(() => lastMembers(seen)?.total === 1, "the watcher to see itself");
    const started = Date.now();
    const burst = Array.from({ length: 100 }, (_, i) => eventSource(`${url}/api/chat?user=u${i}`));
    await waitFor(() => lastMembers(seen)?.total === 101, "the watcher to see 101", 5000);
    // The list is bounded; the total is not.
    expect(lastMembers(seen)!.users).toHaveLength(MEMBERS_SHOWN);
    for (const source of burst.slice(40)) source.close();
    await waitFor(() => lastMembers(seen)?.total === 41, "the watcher to see 41", 5000);
    const elapsed = Date.now() - started;
    expect([...lastMembers(seen)!.users].sort()).toEqual(
      ["watcher", ...Array.from({ length: 40 }, (_, i) => `u${i}`)].sort(),
    );
    // At most one members event per interval, plus the first.
    expect(seen.length).toBeLessThanOrEqual(Math.ceil(elapsed / MEMBERS_INTERVAL_MS) + 2);
  });

  test.each([
    ["33 characters", "u".repeat(33)],
    ["only spaces", "   "],
  ])("a user name of %s: 400 with the chat's error, and no stream", async (_what, user) => {
    const app = makeApp();
    const res = await request(app)
      .get(`/api/chat?user=${encodeURIComponent(user)}`)
      .set("Accept", "text/event-stream")
      .expect(400);
    expect(res.body).toEqual({ error: CHAT_ERRORS.user });
    expect(app.feeds.chat.channel.size).toBe(0);
  });

  test("?lastEventId= resumes after that message (a page reopening the stream under a new name)", async () => {
    const app = makeApp();
    const { url } = await listen(app);
    const first = await post(app, "ada", "one");
    await post(app, "ada", "two");
    const { events } = await collectEvents(url, {
      path: `/api/chat?user=ada&lastEventId=${encodeURIComponent(first)}`,
      until: (e) => e.event === "message",
    });
    const messages = events.filter((e) => e.event === "message");
    expect(messages.map((e) => (JSON.parse(e.data) as Message).text)).toEqual(["two"]);
  });
});
