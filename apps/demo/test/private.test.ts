import request from "supertest";
import { SseClient } from "@sluice/client";
import { collectEvents } from "@sluice/express-sse/testing";
import type { EventSource } from "eventsource";
import { LOGIN_ERRORS } from "../src/auth/login";
import { SESSION_ERRORS } from "../src/auth/session";
import { signToken, verifyToken } from "../src/auth/token";
import { NOTIFY_ERRORS, STREAM_ERRORS } from "../src/feeds/private";
import type { Notification } from "../src/feeds/user-channels";
import type { DemoApp } from "../src/app";
import { delay, disposeAll, eventSource, listen, makeApp, waitFor } from "./harness";
import { eventsPath, login, mintToken, notify, sessionSetCookie } from "./helpers/private";

afterEach(disposeAll);

const SECRET = "private-test-secret-0123456789-abcdefgh";

/** A demo app with a known secret, so tests can sign (and forge) tokens. */
const app = (options: Parameters<typeof makeApp>[0] = {}) =>
  makeApp({ streamSecret: SECRET, heartbeatMs: 0, ...options });

/** Every `notification` an EventSource receives: its id and data. */
function notifications(source: EventSource): Array<{ id: string } & Notification> {
  const seen: Array<{ id: string } & Notification> = [];
  source.addEventListener("notification", (e) =>
    seen.push({ id: e.lastEventId, ...(JSON.parse(e.data) as Notification) }),
  );
  return seen;
}

/** The /api/me/events requests a server received. */
const streamRequests = (requests: string[]) =>
  requests.filter((url) => url.startsWith("/api/me/events"));

describe("POST /api/login", () => {
  test("200 {user, token, expiresAt} with a stream token, and an HttpOnly, SameSite=Strict, Path=/api session cookie", async () => {
    const demo = app();
    const before = Date.now();
    const res = await request(demo).post("/api/login").send({ user: "alice" }).expect(200);
    expect(res.headers["cache-control"]).toBe("no-store");
    const body = res.body as { user: string; token: string; expiresAt: string };
    expect(Object.keys(body)).toEqual(["user", "token", "expiresAt"]);
    expect(body.user).toBe("alice");

    // The stream token: audience "stream", 60 s by default, expiresAt is its exp.
    const token = verifyToken(SECRET, body.token, "stream");
    expect(token.ok).toBe(true);
    const { exp, sub } = (token as { claims: { exp: number; sub: string } }).claims;
    expect(sub).toBe("alice");
    expect(exp - before).toBeGreaterThanOrEqual(60_000);
    expect(exp - Date.now()).toBeLessThanOrEqual(60_000);
    expect(body.expiresAt).toBe(new Date(exp).toISOString());

    // The session cookie: a signed session token (audience "session"), 8 hours.
    const setCookie = sessionSetCookie(res.headers)!;
    const attributes = setCookie.split("; ");
    expect(attributes).toEqual(
      expect.arrayContaining(["Max-Age=28800", "Path=/api", "HttpOnly", "SameSite=Strict"]),
    );
    expect(attributes).not.toContain("Secure"); // plain HTTP here: see the next test
    const session = verifyToken(SECRET, attributes[0]!.split("=")[1], "session");
    expect(session).toMatchObject({ ok: true, claims: { sub: "alice", aud: "session" } });
    // The stream token does not work as a session, nor the session as a stream token.
    expect(verifyToken(SECRET, body.token, "session")).toEqual({ ok: false, reason: "audience" });
  });

  test("the cookie is Secure when the request came over HTTPS (nginx's X-Forwarded-Proto)", async () => {
    const res = await request(app())
      .post("/api/login")
      .set("X-Forwarded-Proto", "https")
      .send({ user: "alice" })
      .expect(200);
    expect(sessionSetCookie(res.headers)!.split("; ")).toContain("Secure");
  });

  test("the name is trimmed and counted in code points, like chat names", async () => {
    const demo = app();
    expect((await login(demo, "  alice \n")).user).toBe("alice");
    expect((await login(demo, "🙂".repeat(32))).user).toBe("🙂".repeat(32));
  });

  const invalid: Array<[string, number, string | undefined, string, string]> = [
    ["malformed JSON", 400, "application/json", '{"user":', LOGIN_ERRORS.malformed],
    ["a JSON array", 400, "application/json", '["alice"]', LOGIN_ERRORS.notObject],
    ["JSON null", 400, "application/json", "null", LOGIN_ERRORS.notObject],
    ["a JSON string", 400, "application/json", '"alice"', LOGIN_ERRORS.notObject],
    ["user missing", 400, "application/json", "{}", LOGIN_ERRORS.user],
    ["user a number", 400, "application/json", '{"user":42}', LOGIN_ERRORS.user],
    ["user empty", 400, "application/json", '{"user":""}', LOGIN_ERRORS.user],
    ["user only spaces", 400, "application/json", '{"user":"   "}', LOGIN_ERRORS.user],
    [
      "user 33 characters",
      400,
      "application/json",
      `{"user":"${"u".repeat(33)}"}`,
      LOGIN_ERRORS.user,
    ],
    ["user 33 emoji", 400, "application/json", `{"user":"${"🙂".repeat(33)}"}`, LOGIN_ERRORS.user],
    ["an empty body", 400, "application/json", "", LOGIN_ERRORS.user],
    [
      "a body over 4kb",
      413,
      "application/json",
      `{"user":"${"u".repeat(5000)}"}`,
      LOGIN_ERRORS.tooLarge,
    ],
    ["text/plain", 415, "text/plain", "alice", LOGIN_ERRORS.contentType],
    ["a form", 415, "application/x-www-form-urlencoded", "user=alice", LOGIN_ERRORS.contentType],
    ["no Content-Type", 415, undefined, "", LOGIN_ERRORS.contentType],
    [
      "ISO-8859-1",
      415,
      "application/json; charset=iso-8859-1",
      '{"user":"a"}',
      LOGIN_ERRORS.charset,
    ],
  ];
  test.each(invalid)(
    "%s: %i with the exact JSON error, and no cookie",
    async (_what, status, type, body, error) => {
      const req = request(app()).post("/api/login");
      if (type !== undefined) req.set("Content-Type", type);
      const res = await req.send(body).expect(status);
      expect(res.headers["content-type"]).toMatch(/^application\/json/);
      expect(res.body).toEqual({ error });
      expect(sessionSetCookie(res.headers)).toBeUndefined();
    },
  );

  test("the exact wording of the errors", () => {
    expect(LOGIN_ERRORS).toMatchObject({
      notObject: "the body must be a JSON object with user",
      user: "user must be a string of 1 to 32 characters",
      contentType: "Content-Type must be application/json",
      tooLarge: "the body must be at most 4kb",
    });
    expect(SESSION_ERRORS).toEqual({
      signIn: "sign in first: POST /api/login",
      invalid: "the session is invalid or has expired; sign in again",
    });
    expect(STREAM_ERRORS).toEqual({
      missing:
        "a stream token is required: Authorization: Bearer <token> (or ?token=) from POST /api/stream-token",
      twice: "send the stream token once: in the Authorization header or in ?token=, not both",
      invalid: "the stream token is invalid",
      expired: "the stream token has expired; get a new one from POST /api/stream-token",
      busy: "too many private streams are open; try again later",
    });
  });
});

describe("POST /api/stream-token and POST /api/logout", () => {
  test("with the session cookie: 200 and a fresh stream token for the cookie's user, no-store", async () => {
    const demo = app();
    const { cookie } = await login(demo, "alice");
    const res = await request(demo).post("/api/stream-token").set("Cookie", cookie).expect(200);
    expect(res.headers["cache-control"]).toBe("no-store");
    expect(res.body).toEqual({
      user: "alice",
      token: expect.any(String),
      expiresAt: expect.any(String),
    });
    expect(verifyToken(SECRET, (res.body as { token: string }).token, "stream")).toMatchObject({
      ok: true,
      claims: { sub: "alice" },
    });
  });

  test.each([
    ["no cookie", undefined, SESSION_ERRORS.signIn, false],
    ["another cookie only", "theme=dark", SESSION_ERRORS.signIn, false],
    [
      "a forged session",
      `sluice_session=${signToken("x".repeat(32), { sub: "alice", exp: Date.now() + 60_000, aud: "session" })}`,
      SESSION_ERRORS.invalid,
      true,
    ],
    [
      "an expired session",
      `sluice_session=${signToken(SECRET, { sub: "alice", exp: Date.now() - 1, aud: "session" })}`,
      SESSION_ERRORS.invalid,
      true,
    ],
    [
      "a stream token as the session",
      `sluice_session=${signToken(SECRET, { sub: "alice", exp: Date.now() + 60_000, aud: "stream" })}`,
      SESSION_ERRORS.invalid,
      true,
    ],
    ["garbage", "sluice_session=%%%", SESSION_ERRORS.invalid, true],
  ])("%s: 401 with the exact error and no-store", async (_what, cookie, error, cleared) => {
    const req = request(app()).post("/api/stream-token");
    if (cookie !== undefined) req.set("Cookie", cookie);
    const res = await req.expect(401);
    expect(res.headers["cache-control"]).toBe("no-store");
    expect(res.body).toEqual({ error });
    // A cookie that no longer works is cleared, so the browser stops sending it.
    const setCookie = sessionSetCookie(res.headers);
    if (cleared) expect(setCookie).toMatch(/Expires=Thu, 01 Jan 1970/);
    else expect(setCookie).toBeUndefined();
  });

  test("the session cookie expires after sessionTtlMs", async () => {
    const demo = app({ sessionTtlMs: 40 });
    const { cookie, setCookie } = await login(demo, "alice");
    expect(setCookie).toContain("Max-Age=0"); // 40 ms, rounded down to whole seconds
    await delay(60);
    const res = await request(demo).post("/api/stream-token").set("Cookie", cookie).expect(401);
    expect(res.body).toEqual({ error: SESSION_ERRORS.invalid });
  });

  test("logout: 204 and the cookie cleared with the same attributes; without a cookie, nothing to clear", async () => {
    const demo = app();
    const { cookie } = await login(demo, "alice");
    const res = await request(demo).post("/api/logout").set("Cookie", cookie).expect(204);
    expect(res.headers["cache-control"]).toBe("no-store");
    const setCookie = sessionSetCookie(res.headers)!;
    expect(setCookie.split("; ")).toEqual(
      expect.arrayContaining(["sluice_session=", "Path=/api", "HttpOnly", "SameSite=Strict"]),
    );
    expect(setCookie).toMatch(/Expires=Thu, 01 Jan 1970/);
    // A cross-site form carries no SameSite=Strict cookie: it must not sign anyone out.
    const crossSite = await request(demo).post("/api/logout").expect(204);
    expect(sessionSetCookie(crossSite.headers)).toBeUndefined();
  });
});

describe("GET /api/me/events refuses a bad token before any stream", () => {
  const future = () => Date.now() + 60_000;
  const good = () => signToken(SECRET, { sub: "alice", exp: future(), aud: "stream" });
  // [what, query (or { query, authorization }), error]
  type Given = string | { query?: string; authorization: string };
  const refused: Array<[string, () => Given, string]> = [
    ["no token", () => "", STREAM_ERRORS.missing],
    ["an empty token", () => "?token=", STREAM_ERRORS.missing],
    [
      "a forged signature (another secret)",
      () => `?token=${signToken("y".repeat(40), { sub: "alice", exp: future(), aud: "stream" })}`,
      STREAM_ERRORS.invalid,
    ],
    [
      "a tampered payload (alice's signature on bob's payload)",
      () => {
        const signature = good().split(".")[1];
        const payload = Buffer.from(
          JSON.stringify({ sub: "bob", exp: future(), aud: "stream" }),
        ).toString("base64url");
        return `?token=${payload}.${signature}`;
      },
      STREAM_ERRORS.invalid,
    ],
    [
      "the wrong audience (the session token)",
      () => `?token=${signToken(SECRET, { sub: "alice", exp: future(), aud: "session" })}`,
      STREAM_ERRORS.invalid,
    ],
    [
      "an expired token",
      () => `?token=${signToken(SECRET, { sub: "alice", exp: Date.now() - 1, aud: "stream" })}`,
      STREAM_ERRORS.expired,
    ],
    [
      "a malformed token (no signature)",
      () => `?token=${good().split(".")[0]}`,
      STREAM_ERRORS.invalid,
    ],
    [
      "a malformed token (not base64url)",
      () => "?token=%F0%9F%99%82.%F0%9F%99%82",
      STREAM_ERRORS.invalid,
    ],
    [
      "a malformed token (given twice)",
      () => `?token=${good()}&token=${good()}`,
      STREAM_ERRORS.invalid,
    ],
    ["a malformed token (4 KB)", () => `?token=${"a".repeat(4096)}.b`, STREAM_ERRORS.invalid],
    [
      "a forged token in the Authorization header",
      () => ({
        authorization: `Bearer ${signToken("y".repeat(40), { sub: "alice", exp: future(), aud: "stream" })}`,
      }),
      STREAM_ERRORS.invalid,
    ],
    [
      "an expired token in the Authorization header",
      () => ({
        authorization: `Bearer ${signToken(SECRET, { sub: "alice", exp: Date.now() - 1, aud: "stream" })}`,
      }),
      STREAM_ERRORS.expired,
    ],
    [
      "a valid token under another scheme (Basic)",
      () => ({ authorization: `Basic ${good()}` }),
      STREAM_ERRORS.invalid,
    ],
    ["Bearer without a token", () => ({ authorization: "Bearer " }), STREAM_ERRORS.invalid],
    [
      "the session token (wrong audience) in the Authorization header",
      () => ({
        authorization: `Bearer ${signToken(SECRET, { sub: "alice", exp: future(), aud: "session" })}`,
      }),
      STREAM_ERRORS.invalid,
    ],
  ];
  test.each(refused)(
    "%s: 401, JSON error, no-store, WWW-Authenticate; no stream, no channel",
    async (_what, given, error) => {
      const demo = app();
      const g = given();
      const req = request(demo)
        .get(`/api/me/events${typeof g === "string" ? g : (g.query ?? "")}`)
        .set("Accept", "text/event-stream");
      if (typeof g !== "string") void req.set("Authorization", g.authorization);
      const res = await req.expect(401);
      expect(res.headers["content-type"]).toMatch(/^application\/json/);
      expect(res.headers["cache-control"]).toBe("no-store");
      expect(res.headers["www-authenticate"]).toMatch(/^Bearer realm="stream"/);
      expect(res.body).toEqual({ error });
      expect(demo.feeds.private.events.stats()).toMatchObject({ opened: 0, open: 0 });
      expect(demo.feeds.private.channels.size).toBe(0);
      expect(demo.feeds.private.channels.peek("alice")).toBeUndefined();
    },
  );

  test("a token both in the Authorization header and in ?token= (even the same one): 400 invalid_request, no stream", async () => {
    const demo = app();
    const { token } = await login(demo, "alice");
    const res = await request(demo)
      .get(eventsPath(token))
      .set("Authorization", `Bearer ${token}`)
      .set("Accept", "text/event-stream")
      .expect(400);
    expect(res.body).toEqual({ error: STREAM_ERRORS.twice });
    expect(res.headers["cache-control"]).toBe("no-store");
    expect(res.headers["www-authenticate"]).toBe('Bearer realm="stream", error="invalid_request"');
    expect(demo.feeds.private.events.stats()).toMatchObject({ opened: 0, open: 0 });
    expect(demo.feeds.private.channels.size).toBe(0);
  });

  test("a token the app minted stops working after streamTokenTtlMs", async () => {
    const demo = app({ streamTokenTtlMs: 30 });
    const { token } = await login(demo, "alice");
    await delay(50);
    const res = await request(demo).get(eventsPath(token)).expect(401);
    expect(res.body).toEqual({ error: STREAM_ERRORS.expired });
    expect(demo.feeds.private.events.stats().opened).toBe(0);
  });

  test("an EventSource given a bad token makes exactly one request and ends CLOSED", async () => {
    const demo = app({ retryMs: 50 });
    const { url, requests } = await listen(demo);
    const forged = signToken("z".repeat(40), {
      sub: "alice",
      exp: Date.now() + 60_000,
      aud: "stream",
    });
    const source = eventSource(`${url}${eventsPath(forged)}`);
    const errors: number[] = [];
    source.addEventListener("error", () => errors.push(source.readyState));
    await waitFor(() => errors.length === 1, "the error event");
    await delay(1500); // a client that retried would have by now (see the control below)
    expect(errors).toEqual([2]);
    expect(source.readyState).toBe(2); // CLOSED
    expect(streamRequests(requests)).toHaveLength(1);
    expect(demo.feeds.private.events.stats().opened).toBe(0);
  });

  test("control: the same client, cut off from a 200 stream, does reconnect within that time", async () => {
    const demo = app({ retryMs: 50 });
    const { url, requests } = await listen(demo);
    const { token } = await login(demo, "alice");
    const source = eventSource(`${url}${eventsPath(token)}`);
    let opens = 0;
    source.addEventListener("open", () => opens++);
    await waitFor(() => opens === 1, "the stream to open");
    for (const stream of [...demo.feeds.private.events.streams]) stream.close();
    await waitFor(() => opens === 2, "the reconnect", 1500);
    expect(streamRequests(requests)).toHaveLength(2);
  });
});

describe("private streams", () => {
  /** alice and bob signed in, each with an open EventSource on their own stream. */
  async function aliceAndBob(demo: DemoApp) {
    const { url, requests } = await listen(demo);
    const alice = await login(demo, "alice");
    const bob = await login(demo, "bob");
    const aliceSource = eventSource(`${url}${eventsPath(alice.token)}`);
    const bobSource = eventSource(`${url}${eventsPath(bob.token)}`);
    const toAlice = notifications(aliceSource);
    const toBob = notifications(bobSource);
    await waitFor(
      () =>
        demo.feeds.private.channels.peek("alice")?.size === 1 &&
        demo.feeds.private.channels.peek("bob")?.size === 1,
      "both streams",
    );
    return { url, requests, alice, bob, aliceSource, bobSource, toAlice, toBob };
  }

  test("a notification to alice reaches alice only, as event: notification {from, text, at}", async () => {
    const demo = app();
    const { alice, bob, toAlice, toBob } = await aliceAndBob(demo);
    const id = await notify(demo, bob.cookie, "alice", "  for alice only  ");
    const back = await notify(demo, alice.cookie, "bob", "for bob only");
    await waitFor(() => toAlice.length === 1 && toBob.length === 1, "one notification each");
    await delay(100);
    expect(toAlice).toEqual([{ id, from: "bob", text: "for alice only", at: expect.any(String) }]);
    expect(new Date(toAlice[0]!.at).toISOString()).toBe(toAlice[0]!.at);
    expect(toBob).toEqual([
      { id: back, from: "alice", text: "for bob only", at: expect.any(String) },
    ]);
  });

  test("the sender is the cookie's user, whatever the body says", async () => {
    const demo = app();
    const { bob, toAlice } = await aliceAndBob(demo);
    await request(demo)
      .post("/api/me/notify")
      .set("Cookie", bob.cookie)
      .send({ to: "alice", text: "hi", from: "the admin" })
      .expect(202);
    await waitFor(() => toAlice.length === 1, "the notification");
    expect(toAlice[0]).toMatchObject({ from: "bob", text: "hi" });
  });

  test("bob resuming from one of alice's ids never receives alice's events", async () => {
    const demo = app();
    const { url } = await listen(demo);
    const alice = await login(demo, "alice");
    const bob = await login(demo, "bob");
    const ids: string[] = [];
    for (let i = 1; i <= 3; i++) ids.push(await notify(demo, bob.cookie, "alice", `secret ${i}`));

    // Both ways a client gives its last id: the header (browser reconnect) and the query.
    for (const options of [
      { path: eventsPath(bob.token, ids[0]) },
      { path: eventsPath(bob.token), headers: { "Last-Event-ID": ids[0]! } },
    ]) {
      const pending = collectEvents(url, { ...options, duration: 400 });
      await waitFor(() => demo.feeds.private.channels.peek("bob")?.size === 1, "bob's stream");
      await notify(demo, alice.cookie, "bob", "for bob");
      await notify(demo, bob.cookie, "alice", "secret live");
      const { status, events, raw } = await pending;
      expect(status).toBe(200);
      // alice's id means nothing on bob's channel: a reset, then bob's own events only.
      expect(events.map((e) => e.event)).toEqual(["reset", "notification"]);
      expect(JSON.parse(events[0]!.data)).toMatchObject({ reason: "unknown" });
      expect(JSON.parse(events[1]!.data)).toMatchObject({ from: "alice", text: "for bob" });
      expect(raw).not.toContain("secret");
      await waitFor(() => demo.feeds.private.channels.peek("bob")?.size === 0, "bob to leave");
    }
    expect(demo.feeds.private.channels.peek("alice")?.stats().resumes).toBe(0);
  });

  test("alice resuming with a fresh token and ?lastEventId= gets exactly what she missed, once, in order, then live", async () => {
    const demo = app();
    const { url } = await listen(demo);
    const alice = await login(demo, "alice");
    const bob = await login(demo, "bob");

    const first = eventSource(`${url}${eventsPath(alice.token)}`);
    const seen = notifications(first);
    await waitFor(() => demo.feeds.private.channels.peek("alice")?.size === 1, "alice's stream");
    await notify(demo, bob.cookie, "alice", "n1");
    await notify(demo, bob.cookie, "alice", "n2");
    await waitFor(() => seen.length === 2, "n1 and n2");
    first.close();
    await waitFor(() => demo.feeds.private.channels.peek("alice")?.size === 0, "alice to leave");

    // While she is away (her channel keeps them), and to someone else in between.
    await notify(demo, bob.cookie, "alice", "n3");
    await notify(demo, alice.cookie, "bob", "not for alice");
    await notify(demo, bob.cookie, "alice", "n4");

    const fresh = await mintToken(demo, alice.cookie);
    expect(fresh).not.toBe(alice.token);
    const second = eventSource(`${url}${eventsPath(fresh, seen[1]!.id)}`);
    const resumed = notifications(second);
    await waitFor(() => resumed.length === 2, "the missed notifications");
    await notify(demo, bob.cookie, "alice", "n5");
    await waitFor(() => resumed.length === 3, "the live one");
    await delay(100);
    expect(resumed.map((n) => n.text)).toEqual(["n3", "n4", "n5"]);
    expect(new Set([...seen, ...resumed].map((n) => n.id)).size).toBe(5);
    expect(demo.feeds.private.channels.peek("alice")?.stats()).toMatchObject({
      resumes: 1,
      resets: 0,
    });
  });

  test("on the browser's own reconnect the Last-Event-ID header wins over the URL's first id", async () => {
    const demo = app();
    const { url } = await listen(demo);
    const alice = await login(demo, "alice");
    const ids: string[] = [];
    for (let i = 1; i <= 3; i++) ids.push(await notify(demo, alice.cookie, "alice", `m${i}`));
    const { events } = await collectEvents(url, {
      path: eventsPath(alice.token, ids[0]),
      headers: { "Last-Event-ID": ids[1]! },
      count: 1,
    });
    expect(events.map((e) => e.id)).toEqual([ids[2]]);
  });

  test("the token in an Authorization: Bearer header opens the stream, and Last-Event-ID resumes it", async () => {
    const demo = app();
    const { url, requests } = await listen(demo);
    const alice = await login(demo, "alice");
    const ids: string[] = [];
    for (let i = 1; i <= 3; i++) ids.push(await notify(demo, alice.cookie, "alice", `m${i}`));
    const { events } = await collectEvents(url, {
      path: "/api/me/events",
      headers: { Authorization: `Bearer ${alice.token}`, "Last-Event-ID": ids[0]! },
      count: 2,
    });
    expect(events.map((e) => [e.id, (JSON.parse(e.data) as Notification).text])).toEqual([
      [ids[1], "m2"],
      [ids[2], "m3"],
    ]);
    expect(streamRequests(requests)).toEqual(["/api/me/events"]);
  });

  test("the page's client (@sluice/client): an expired token's 401 calls onUnauthorized, which mints one; the client resumes by header, nothing lost or doubled", async () => {
    // Tokens live 200 ms, streams 250-300 ms (then retry after 50 ms): every reconnect needs a
    // new token, as a long-lived page does every few minutes.
    const demo = app({ streamTokenTtlMs: 200, privateStreamLifetimeMs: 300, retryMs: 50 });
    const { url, requests } = await listen(demo);
    const alice = await login(demo, "alice");
    const bob = await login(demo, "bob");

    // What public/client.js does, with the same options.
    let token = alice.token;
    const sentHeaders: Array<string | null> = [];
    const statuses: number[] = [];
    let mints = 0;
    const client = new SseClient<{ notification: Notification }>(`${url}/api/me/events`, {
      headers: () => ({ Authorization: `Bearer ${token}` }),
      reconnectOnEnd: true,
      onUnauthorized: async (response) => {
        if (response.status !== 401) return false;
        mints++;
        token = await mintToken(demo, alice.cookie);
        return true;
      },
      fetch: async (req) => {
        sentHeaders.push(req.headers.get("last-event-id"));
        const res = await fetch(req);
        statuses.push(res.status);
        return res;
      },
    });
    const received: string[] = [];
    const ids: string[] = [];
    client.on("notification", (data, event) => {
      received.push(data.text); // typed: Notification
      ids.push(event.lastEventId);
    });
    const fatal: unknown[] = [];
    client.addEventListener("error", (e) => {
      if (e.error.fatal) fatal.push(e.error);
    });
    try {
      await waitFor(() => client.readyState === SseClient.OPEN, "the first stream");
      const sent: string[] = [];
      const deadline = Date.now() + 3000;
      for (let i = 1; Date.now() < deadline || mints < 2; i++) {
        sent.push(`n${i}`);
        await notify(demo, bob.cookie, "alice", `n${i}`);
        await delay(60);
        if (Date.now() > deadline + 5000) throw new Error("no second token was minted");
      }
      await waitFor(() => received.length === sent.length, "every notification", 5000);
      await delay(100);
      expect(received).toEqual(sent);
      expect(new Set(ids).size).toBe(sent.length);
      expect(fatal).toEqual([]);
      expect(mints).toBeGreaterThanOrEqual(2);
      // Every mint followed a refused request, and the request after it resumed by header.
      expect(statuses.filter((s) => s === 401).length).toBe(mints);
      for (const [i, status] of statuses.entries()) {
        if (status === 401) expect(sentHeaders[i + 1]).toMatch(/.+/);
      }
      // Never a token in the URL.
      expect(new Set(streamRequests(requests))).toEqual(new Set(["/api/me/events"]));
      expect(demo.feeds.private.channels.peek("alice")?.stats().resets).toBe(0);
    } finally {
      client.close();
    }
  });
});

describe("POST /api/me/notify", () => {
  const t = (n: number) => "t".repeat(n);
  const invalid: Array<[string, number, string | undefined, string, string]> = [
    ["malformed JSON", 400, "application/json", '{"to":', NOTIFY_ERRORS.malformed],
    ["a JSON array", 400, "application/json", '["bob","hi"]', NOTIFY_ERRORS.notObject],
    ["JSON null", 400, "application/json", "null", NOTIFY_ERRORS.notObject],
    ["to missing", 400, "application/json", '{"text":"hi"}', NOTIFY_ERRORS.to],
    ["to a number", 400, "application/json", '{"to":7,"text":"hi"}', NOTIFY_ERRORS.to],
    ["to only spaces", 400, "application/json", '{"to":"  ","text":"hi"}', NOTIFY_ERRORS.to],
    [
      "to 33 characters",
      400,
      "application/json",
      `{"to":"${"b".repeat(33)}","text":"hi"}`,
      NOTIFY_ERRORS.to,
    ],
    ["text missing", 400, "application/json", '{"to":"bob"}', NOTIFY_ERRORS.text],
    ["text empty", 400, "application/json", '{"to":"bob","text":""}', NOTIFY_ERRORS.text],
    [
      "text only whitespace",
      400,
      "application/json",
      '{"to":"bob","text":" \\n "}',
      NOTIFY_ERRORS.text,
    ],
    [
      "text 501 characters",
      400,
      "application/json",
      `{"to":"bob","text":"${t(501)}"}`,
      NOTIFY_ERRORS.text,
    ],
    [
      "a body over 4kb",
      413,
      "application/json",
      `{"to":"bob","text":"${t(5000)}"}`,
      NOTIFY_ERRORS.tooLarge,
    ],
    ["text/plain", 415, "text/plain", "hi", NOTIFY_ERRORS.contentType],
    ["no Content-Type", 415, undefined, "", NOTIFY_ERRORS.contentType],
  ];
  test.each(invalid)(
    "%s: %i with the exact JSON error; nothing published",
    async (_what, status, type, body, error) => {
      const demo = app();
      const { cookie } = await login(demo, "alice");
      const req = request(demo).post("/api/me/notify").set("Cookie", cookie);
      if (type !== undefined) req.set("Content-Type", type);
      const res = await req.send(body).expect(status);
      expect(res.body).toEqual({ error });
      expect(demo.feeds.private.channels.size).toBe(0);
    },
  );

  test("limits are inclusive, in code points, after trimming", async () => {
    const demo = app();
    const { cookie } = await login(demo, "alice");
    await notify(demo, cookie, "🙂".repeat(32), ` ${"é".repeat(500)} `);
    expect(demo.feeds.private.channels.peek("🙂".repeat(32))?.stats().events).toBe(1);
  });

  test("without a session: 401 before the body is read", async () => {
    const demo = app();
    const res = await request(demo)
      .post("/api/me/notify")
      .set("Content-Type", "text/plain") // would be a 415 if the body were looked at
      .send("hi")
      .expect(401);
    expect(res.body).toEqual({ error: SESSION_ERRORS.signIn });
    expect(res.headers["cache-control"]).toBe("no-store");
  });

  test("the exact wording of the errors", () => {
    expect(NOTIFY_ERRORS).toMatchObject({
      notObject: "the body must be a JSON object with to and text",
      to: "to must be a string of 1 to 32 characters",
      text: "text must be a string of 1 to 500 characters",
      unavailable: "the notification could not be stored; try again",
    });
  });

  test("after close(): 503 for notify and for the stream", async () => {
    const demo = app();
    const { cookie, token } = await login(demo, "alice");
    await demo.close();
    await request(demo)
      .post("/api/me/notify")
      .set("Cookie", cookie)
      .send({ to: "bob", text: "x" })
      .expect(503);
    await request(demo).get(eventsPath(token)).expect(503);
  });
});

describe("/metrics", () => {
  test("the private stream and all user channels together, as one series each", async () => {
    const demo = app();
    const { url } = await listen(demo);
    const alice = await login(demo, "alice");
    const pending = collectEvents(url, { path: eventsPath(alice.token), count: 2 });
    await waitFor(() => demo.feeds.private.events.stats().open === 1, "alice's stream");
    await notify(demo, alice.cookie, "alice", "one");
    await notify(demo, alice.cookie, "bob", "two");
    await notify(demo, alice.cookie, "alice", "three");
    await pending;
    const { text } = await request(demo).get("/metrics").expect(200);
    expect(text).toContain('sluice_streams_opened_total{stream="private"} 1');
    expect(text).toContain('sluice_channel_events_published_total{channel="private"} 3');
    expect(text).not.toContain("alice");
  });
});
