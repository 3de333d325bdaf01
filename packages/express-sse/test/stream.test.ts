import type { Request, Response } from "express";
import { ServerResponse, type IncomingMessage } from "node:http";
import { EventSource } from "eventsource";
import { sse, SseStream, StreamClosedError, Frame } from "../src";
import { collectEvents, NotAnEventStreamError } from "../src/testing";
import { EXPRESS_VERSIONS } from "./helpers/express";
import express5 from "express";
import {
  closeAllServers,
  deferred,
  getHeaders,
  listen,
  rawRequest,
  waitFor,
  sleep,
  thrownBy,
  rejectionOf,
  errorShape,
} from "./helpers/server";

/** The first frame of every stream without a `retry` option (see SseStream#start). */
const OPEN = ":\n\n";

afterEach(closeAllServers);

describe.each(EXPRESS_VERSIONS)("SseStream on %s", (_name, express) => {
  function appWith(
    handler: (req: Request, res: Response) => void,
    options?: Parameters<typeof sse>[0],
  ) {
    const app = express();
    const middleware = sse(options);
    app.use(middleware);
    app.get("/s", handler);
    return { app, middleware };
  }

  describe("headers", () => {
    test("sends the event-stream headers at once, before any event", async () => {
      const { app } = appWith((_req, res) => {
        res.sse.start();
      });
      const { url } = await listen(app);
      const res = await getHeaders(`${url}/s`);
      expect(res.statusCode).toBe(200);
      expect(res.headers["content-type"]).toBe("text/event-stream; charset=utf-8");
      expect(res.headers["cache-control"]).toBe("no-cache, no-transform");
      expect(res.headers["connection"]).toBe("keep-alive");
      expect(res.headers["x-accel-buffering"]).toBe("no");
      expect(res.headers["sluice-heartbeat"]).toBe("15000"); // the default heartbeat
      expect(res.headers["access-control-expose-headers"]).toBeUndefined(); // no CORS here
      expect(res.headers["content-length"]).toBeUndefined();
      res.destroy();
    });

    test.each([
      ["heartbeat: 2500", { heartbeat: 2500 }, "2500"],
      ["heartbeat: 0 (off)", { heartbeat: 0 }, undefined],
    ])("Sluice-Heartbeat tells the client the interval: %s", async (_, options, expected) => {
      const { app } = appWith((_req, res) => res.sse.send("x"), options);
      const { headers } = await collectEvents(app, { path: "/s", count: 1 });
      expect(headers["sluice-heartbeat"]).toBe(expected);
    });

    test.each([
      ["CORS allowed, nothing exposed yet", "*", undefined, "Sluice-Heartbeat"],
      ["CORS exposing other headers", "https://a.example", "X-Total", "X-Total, Sluice-Heartbeat"],
      ["CORS exposing it already", "*", "x-total, sluice-heartbeat", "x-total, sluice-heartbeat"],
      ["no CORS", undefined, undefined, undefined],
    ])(
      "a cross-origin page can read Sluice-Heartbeat: %s",
      async (_, allowOrigin, exposed, expected) => {
        const app = express();
        app.use((_req, res, next) => {
          // What a CORS middleware (the cors package) sets before the route runs.
          if (allowOrigin !== undefined) res.setHeader("Access-Control-Allow-Origin", allowOrigin);
          if (exposed !== undefined) res.setHeader("Access-Control-Expose-Headers", exposed);
          next();
        });
        app.use(sse());
        app.get("/s", (_req, res) => res.sse.send("x"));
        const { headers } = await collectEvents(app, { path: "/s", count: 1 });
        expect(headers["access-control-expose-headers"]).toBe(expected);
      },
    );

    test("CORS set through the headers option exposes Sluice-Heartbeat too; without heartbeats, nothing is added", async () => {
      const cors = { "Access-Control-Allow-Origin": "*" };
      const on = appWith((_req, res) => res.sse.send("x"), { headers: cors });
      const off = appWith((_req, res) => res.sse.send("x"), { headers: cors, heartbeat: 0 });
      const [withHeartbeat, without] = await Promise.all(
        [on.app, off.app].map((app) => collectEvents(app, { path: "/s", count: 1 })),
      );
      expect(withHeartbeat!.headers["access-control-expose-headers"]).toBe("Sluice-Heartbeat");
      expect(without!.headers["access-control-expose-headers"]).toBeUndefined();
    });

    test.each([
      ["without a Connection header", {}],
      ["that asks for keep-alive", { Connection: "keep-alive" }],
    ])(
      "an HTTP/1.0 request %s gets Connection: close and a body that streams until the connection closes",
      async (_, headers) => {
        const stream = deferred<SseStream>();
        const { app } = appWith((_req, res) => {
          res.sse.send("first", { id: "1" });
          stream.resolve(res.sse);
        });
        const { port } = await listen(app);
        const socket = await rawRequest(port, "/s", { httpVersion: "1.0", headers });
        let received = "";
        let ended = false;
        socket.setEncoding("utf8");
        socket.on("data", (chunk: string) => (received += chunk));
        socket.on("end", () => (ended = true));
        const s = await stream.promise;
        await waitFor(() => received.includes("data: first\n\n"), { what: "the first event" });
        // Streaming: an event sent later arrives while the connection is still open.
        s.send("second");
        await waitFor(() => received.includes("data: second\n\n"), { what: "the second event" });
        expect(ended).toBe(false);
        s.close();
        await waitFor(() => ended, { what: "the server to close the connection" });
        const [head, body] = received.split("\r\n\r\n") as [string, string];
        const lines = head.split("\r\n");
        expect(lines[0]).toBe("HTTP/1.1 200 OK");
        expect(lines).toContain("Connection: close");
        expect(lines).toContain("Content-Type: text/event-stream; charset=utf-8");
        expect(head).not.toMatch(/keep-alive|Transfer-Encoding|Content-Length/i);
        // No chunked coding: the frames as they are, ended by the close.
        expect(body).toBe(OPEN + "id: 1\ndata: first\n\ndata: second\n\n");
      },
    );

    test("adds the headers option and keeps headers set earlier by other middleware", async () => {
      const app = express();
      app.use((_req, res, next) => {
        res.setHeader("Access-Control-Allow-Origin", "*");
        next();
      });
      app.use(sse({ headers: { "X-Stream": "yes" } }));
      app.get("/s", (_req, res) => res.sse.send("x"));
      const { headers } = await collectEvents(app, { path: "/s", count: 1 });
      expect(headers["x-stream"]).toBe("yes");
      expect(headers["access-control-allow-origin"]).toBe("*");
    });

    test("sends the retry option once, first", async () => {
      const { app } = appWith((_req, res) => res.sse.send("a"), { retry: 3000 });
      const { raw, retries } = await collectEvents(app, { path: "/s", count: 1 });
      expect(raw).toBe("retry: 3000\n\ndata: a\n\n");
      expect(retries).toEqual([3000]);
    });

    test("answers HEAD with the headers and an empty body, and closes the stream", async () => {
      const closed = deferred<StreamClosedError>();
      const sent: boolean[] = [];
      const { app } = appWith(() => undefined);
      app.head("/h", (_req, res) => {
        res.sse.onClose(closed.resolve);
        sent.push(res.sse.send("never"));
      });
      const { url } = await listen(app);
      const res = await fetch(`${url}/h`, { method: "HEAD" });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
      expect(await res.text()).toBe("");
      expect((await closed.promise).type).toBe("head-request");
      expect(sent).toEqual([false]); // nothing may follow a HEAD answer
    });
  });

  describe("what an open stream keeps of the request", () => {
    test("Express's router continuation and URL cache are released once the stream starts; req.query, req.path and the handler's next still work", async () => {
      const seen = deferred<Record<string, unknown>>();
      const { app } = appWith((req, res, next?: unknown) => {
        void req.query; // parseurl caches the parsed URL on req
        const r = req as Request & { _parsedUrl?: unknown };
        const before = { next: typeof r.next, parsed: r._parsedUrl !== undefined };
        res.sse.start();
        seen.resolve({
          before,
          next: r.next,
          parsed: r._parsedUrl,
          query: { ...req.query },
          path: req.path,
          ownNext: typeof next,
        });
        res.sse.close();
      });
      await collectEvents(app, { path: "/s?a=1&b=two" });
      expect(await seen.promise).toEqual({
        before: { next: "function", parsed: true },
        next: undefined,
        parsed: undefined,
        query: { a: "1", b: "two" },
        path: "/s",
        ownNext: "function",
      });
    });
  });

  describe("laziness", () => {
    test("a handler that never touches res.sse gets an ordinary response and costs no stream", async () => {
      const app = express();
      const middleware = sse();
      app.use(middleware);
      app.get("/plain", (_req, res) => {
        res.json({ ok: true });
      });
      const { url } = await listen(app);
      const res = await fetch(`${url}/plain`);
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      expect(res.headers.get("x-accel-buffering")).toBeNull();
      expect(await res.json()).toEqual({ ok: true });
      expect(middleware.streams.size).toBe(0);
    });

    test("touching res.sse writes nothing until the first send", async () => {
      const touched = deferred<SseStream>();
      const { app, middleware } = appWith((_req, res) => touched.resolve(res.sse));
      const { port } = await listen(app);
      const socket = await rawRequest(port, "/s");
      let received = "";
      socket.on("data", (c: Buffer) => (received += c.toString()));
      const stream = await touched.promise;
      await sleep(50);
      expect(received).toBe("");
      expect(middleware.streams.size).toBe(0);
      stream.send("now");
      await waitFor(() => received.includes("data: now\n\n"), { what: "first event" });
      expect(received).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(middleware.streams.size).toBe(1);
      socket.destroy();
    });

    test("res.sse is the same object on every access", async () => {
      const seen: unknown[] = [];
      const { app } = appWith((_req, res) => {
        seen.push(res.sse, res.sse);
        res.sse.send("ok");
      });
      const { events } = await collectEvents(app, { path: "/s", count: 1 });
      expect(events[0]?.data).toBe("ok");
      expect(seen[0]).toBeInstanceOf(SseStream);
      expect(seen[1]).toBe(seen[0]);
    });

    test("a route-level sse() overrides the app-wide options", async () => {
      const app = express();
      app.use(sse({ retry: 1000 }));
      app.get("/s", sse({ retry: 2000 }), (_req, res) => res.sse.send("a"));
      const { retries } = await collectEvents(app, { path: "/s", count: 1 });
      expect(retries).toEqual([2000]);
    });

    test("res.sse reaches sub-apps mounted after sse(); routes it never ran for read undefined", async () => {
      const app = express();
      const seen: Record<string, unknown> = {};
      app.get("/before", (_req, res) => {
        seen["before"] = (res as { sse?: unknown }).sse;
        res.end();
      });
      app.use(sse({ retry: 1000 }));
      const sub = express(); // Express gives a sub-app its own response prototype
      sub.get("/s", (_req, res) => {
        // No own `sse` on an Express response: the getter lives on Express's shared prototype.
        seen["own"] = Object.getOwnPropertyDescriptor(res, "sse");
        res.sse.send("from the sub-app");
      });
      app.use("/sub", sub);
      const { url } = await listen(app);

      await fetch(`${url}/before`);
      expect(seen["before"]).toBeUndefined();
      const { events, retries } = await collectEvents(app, { path: "/sub/s", count: 1 });
      expect(events.map((e) => e.data)).toEqual(["from the sub-app"]);
      expect(retries).toEqual([1000]);
      expect(seen["own"]).toBeUndefined();
      // Still undefined once the getter is installed: that route's request never passed sse().
      await fetch(`${url}/before`);
      expect(seen["before"]).toBeUndefined();
    });
  });

  describe("#send()", () => {
    test("writes strings as they are and everything else through JSON.stringify", async () => {
      const { app } = appWith((_req, res) => {
        res.sse.send("plain text");
        res.sse.send({ a: 1, b: ["x"] });
        res.sse.send(42);
        res.sse.send(null);
        res.sse.send("two\nlines", { event: "multi", id: "7" });
      });
      const { raw, events } = await collectEvents(app, { path: "/s", count: 5 });
      expect(raw).toBe(
        OPEN +
          "data: plain text\n\n" +
          'data: {"a":1,"b":["x"]}\n\n' +
          "data: 42\n\n" +
          "data: null\n\n" +
          "event: multi\nid: 7\ndata: two\ndata: lines\n\n",
      );
      expect(events.map((e) => e.data)).toEqual([
        "plain text",
        '{"a":1,"b":["x"]}',
        "42",
        "null",
        "two\nlines",
      ]);
    });

    test("uses the serialize option for non-string data", async () => {
      const { app } = appWith((_req, res) => res.sse.send({ n: 1 }), {
        serialize: (d) => `custom:${JSON.stringify(d)}`,
      });
      const { events } = await collectEvents(app, { path: "/s", count: 1 });
      expect(events[0]?.data).toBe('custom:{"n":1}');
    });

    test("a serializer that throws reaches the caller; nothing is written and the stream stays usable", async () => {
      const thrown: unknown[] = [];
      const { app } = appWith(
        (_req, res) => {
          res.sse.send("before");
          thrown.push(thrownBy(() => res.sse.send({ boom: true })));
          const circular: Record<string, unknown> = {};
          circular["self"] = circular;
          thrown.push(thrownBy(() => res.sse.send(circular)));
          res.sse.send("after");
        },
        {
          serialize: (d) => {
            if ((d as { boom?: boolean }).boom) throw new Error("cannot serialize");
            return JSON.stringify(d);
          },
        },
      );
      const { raw } = await collectEvents(app, { path: "/s", count: 2 });
      expect(raw).toBe(OPEN + "data: before\n\ndata: after\n\n");
      expect(errorShape(thrown[0])).toEqual({ name: "Error", message: "cannot serialize" });
      expect(thrown[1]).toBeInstanceOf(TypeError);
    });

    test("data the serializer turns into undefined is a TypeError naming the cause", async () => {
      let thrown: unknown;
      const { app } = appWith((_req, res) => {
        thrown = thrownBy(() => res.sse.send(undefined));
        res.sse.send("still fine");
      });
      const { raw } = await collectEvents(app, { path: "/s", count: 1 });
      expect(raw).toBe(OPEN + "data: still fine\n\n");
      expect(errorShape(thrown)).toEqual({
        name: "TypeError",
        message:
          "The serializer must return a string, got undefined (JSON.stringify returns undefined for undefined and functions)",
      });
    });

    test("an event name or id with CR, LF or NUL is a TypeError at the call and is never written", async () => {
      const thrown: unknown[] = [];
      const { app } = appWith((_req, res) => {
        thrown.push(
          thrownBy(() => res.sse.send("x", { event: "a\nb" })),
          thrownBy(() => res.sse.send("x", { id: "1\r\ndata: injected" })),
          thrownBy(() => res.sse.send("x", { id: "a\0b" })),
          thrownBy(() => res.sse.send("x", { retry: -1 })),
        );
        res.sse.send("ok", { event: "fine" });
      });
      const { raw, events } = await collectEvents(app, { path: "/s", count: 1 });
      expect(raw).toBe(OPEN + "event: fine\ndata: ok\n\n");
      expect(events).toEqual([{ event: "fine", data: "ok", id: "" }]);
      expect(thrown.map(errorShape)).toEqual([
        {
          name: "TypeError",
          message: 'The "event" field must not contain CR, LF or NUL characters',
        },
        { name: "TypeError", message: 'The "id" field must not contain CR, LF or NUL characters' },
        { name: "TypeError", message: 'The "id" field must not contain CR, LF or NUL characters' },
        {
          name: "RangeError",
          message: 'The "retry" field must be a non-negative safe integer, got -1',
        },
      ]);
    });

    test("an id the client could not send back is a TypeError at the call and is never written", async () => {
      const refused: Array<[string, string]> = [
        ["a\u0001b", "must not contain control characters other than tab (U+0001 at index 1)"],
        ["a\u007f", "must not contain control characters other than tab (U+007F at index 1)"],
        [" 42", "must not begin or end with a space or tab"],
        ["42\t", "must not begin or end with a space or tab"],
        ["\uD800", "must not contain a lone surrogate (U+D800 at index 0)"],
      ];
      const thrown: unknown[][] = [];
      const { app } = appWith(async (_req, res) => {
        for (const [id] of refused) {
          thrown.push([
            thrownBy(() => res.sse.send("x", { id })),
            thrownBy(() => res.sse.sendFrame(Frame.event("x", { id }))),
            await rejectionOf(res.sse.pipe(["x"], { id: () => id })),
          ]);
        }
        res.sse.send("ok", { id: "a\tb ☃" });
      });
      const { raw, events } = await collectEvents(app, { path: "/s", count: 1 });
      expect(raw).toBe(OPEN + "id: a\tb ☃\ndata: ok\n\n");
      expect(events).toEqual([{ event: "message", data: "ok", id: "a\tb ☃" }]);
      // send(), sendFrame() of a Frame and pipe() all refuse each id, with the reason (and then
      // what would go wrong with it).
      expect(thrown.map((errors) => errors.map(errorShape))).toEqual(
        refused.map(([, why]) =>
          Array(3).fill({
            name: "TypeError",
            message: expect.stringContaining(`The "id" field ${why}: `),
          }),
        ),
      );
    });

    test("data the default serializer cannot handle is a TypeError that names the value and says why", async () => {
      const circular: Record<string, unknown> = { list: [1] };
      (circular["list"] as unknown[]).push({ back: circular });
      const cases: Array<[unknown, string]> = [
        [
          { user: { id: 7n } },
          "Cannot serialize the event data: JSON has no BigInt, and .user.id is 7n (convert it " +
            "to a string or a number first, or pass a serialize option)",
        ],
        [
          circular,
          "Cannot serialize the event data: it is circular, .list[1].back refers back to the " +
            "data itself (send a copy without the cycle, or pass a serialize option)",
        ],
        [
          Symbol("token"),
          "The serializer must return a string, got undefined (the data is a symbol, " +
            "Symbol(token), and JSON.stringify returns undefined for symbols: send a string instead)",
        ],
      ];
      const thrown: unknown[] = [];
      const { app } = appWith((_req, res) => {
        for (const [data] of cases) thrown.push(thrownBy(() => res.sse.send(data)));
        res.sse.send("still fine");
      });
      const { raw } = await collectEvents(app, { path: "/s", count: 1 });
      expect(raw).toBe(OPEN + "data: still fine\n\n");
      expect(thrown.map(errorShape)).toEqual(
        cases.map(([, message]) => ({ name: "TypeError", message })),
      );
    });

    test("data cannot inject fields or events: every line stays data", async () => {
      const hostile = "hi\n\nevent: admin\ndata: x\r\nid: 99\rretry: 1";
      const { app } = appWith((_req, res) => res.sse.send(hostile));
      const { events, retries } = await collectEvents(app, { path: "/s", count: 1, timeout: 2000 });
      expect(events).toEqual([
        { event: "message", data: hostile.replace(/\r\n|\r/g, "\n"), id: "" },
      ]);
      expect(retries).toEqual([]);
    });

    test("sendFrame() writes a prebuilt frame, byte for byte", async () => {
      const frame = Frame.event("shared", { event: "news", id: "3" });
      let thrown: unknown;
      const { app } = appWith((_req, res) => {
        res.sse.sendFrame(frame);
        thrown = thrownBy(() => res.sse.sendFrame("event: x\n\n" as unknown as Frame));
      });
      const { raw } = await collectEvents(app, { path: "/s", count: 1 });
      expect(raw).toBe(OPEN + "event: news\nid: 3\ndata: shared\n\n");
      expect(errorShape(thrown)).toEqual({
        name: "TypeError",
        message: "sendFrame() takes a Frame, got a string",
      });
    });
  });

  describe("#comment() and #retry()", () => {
    test("write comment lines and a retry field", async () => {
      const { app } = appWith((_req, res) => {
        res.sse.comment("hello");
        res.sse.comment("two\nlines");
        res.sse.retry(0);
        res.sse.send("end");
      });
      const { raw, comments, retries } = await collectEvents(app, { path: "/s", count: 1 });
      expect(raw).toBe(OPEN + ": hello\n\n: two\n: lines\n\nretry: 0\n\ndata: end\n\n");
      expect(comments).toEqual(["", "hello", "two", "lines"]); // "" is the opening comment
      expect(retries).toEqual([0]);
    });
  });

  describe("with the eventsource client", () => {
    test("named events reach addEventListener and lastEventId follows the ids", async () => {
      const { app } = appWith((_req, res) => {
        res.sse.send({ t: 1 }, { event: "time", id: "e1" });
        res.sse.send("plain", { id: "e2" });
      });
      const { url } = await listen(app);
      const es = new EventSource(`${url}/s`);
      try {
        const seen: Array<[string, string, string]> = [];
        const done = new Promise<void>((resolve) => {
          es.addEventListener("time", (e) => seen.push(["time", e.data, e.lastEventId]));
          es.addEventListener("message", (e) => {
            seen.push(["message", e.data, e.lastEventId]);
            resolve();
          });
        });
        await done;
        expect(seen).toEqual([
          ["time", '{"t":1}', "e1"],
          ["message", "plain", "e2"],
        ]);
      } finally {
        es.close();
      }
    });

    test("lastEventId exposes the Last-Event-ID header", async () => {
      const seen = deferred<string | undefined>();
      const { app } = appWith((_req, res) => {
        seen.resolve(res.sse.lastEventId);
        res.sse.send("x");
      });
      await collectEvents(app, { path: "/s", count: 1, headers: { "Last-Event-ID": "41" } });
      expect(await seen.promise).toBe("41");
    });

    test("lastEventId decodes a UTF-8 header, as browsers send an id they got from id:", async () => {
      const seen = deferred<string | undefined>();
      const { app } = appWith((_req, res) => {
        seen.resolve(res.sse.lastEventId);
        res.sse.send("x", { id: "é✓" });
      });
      const { port } = await listen(app);
      // A raw socket writes the header as UTF-8 bytes, as a browser does with a non-ASCII id.
      const socket = await rawRequest(port, "/s", { headers: { "Last-Event-ID": "é✓" } });
      let received = "";
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => (received += chunk));
      expect(await seen.promise).toBe("é✓");
      await waitFor(() => received.includes("id: é✓\n"), { what: "the id sent back" });
      socket.destroy();
    });

    test.each([
      // undici's EventSource (Node's own) and Node's fetch write header values as Latin-1 bytes.
      ["Latin-1 bytes (undici, Node's fetch)", "latin1", "café", "café"],
      ["Latin-1 bytes with a C1 control and ÿ", "latin1", "\u0085ÿ", "\u0085ÿ"],
      ["UTF-8 bytes (browsers)", "utf8", "café ☃ 🎉", "café ☃ 🎉"],
      ["ASCII", "latin1", "a\tb", "a\tb"],
      // The one ambiguity: Latin-1 bytes that are valid UTF-8 are read as UTF-8.
      ["Latin-1 bytes that are valid UTF-8", "latin1", "Ã©", "é"],
    ] as const)(
      "lastEventId decodes %s: UTF-8 when the bytes are valid UTF-8, else Latin-1",
      async (_, encoding, sent, decoded) => {
        const seen = deferred<string | undefined>();
        const { app } = appWith((_req, res) => {
          seen.resolve(res.sse.lastEventId);
          res.sse.close();
        });
        const { port } = await listen(app);
        const socket = await rawRequest(port, "/s", {
          headers: { "Last-Event-ID": sent },
          headerEncoding: encoding,
        });
        expect(await seen.promise).toBe(decoded);
        socket.destroy();
      },
    );
  });

  describe("#close(), #signal and #onClose()", () => {
    test("close() ends the response; later writes are no-ops returning false; close is idempotent", async () => {
      const reasons: string[] = [];
      let after: Record<string, unknown> = {};
      const { app, middleware } = appWith((_req, res) => {
        res.sse.onClose((r) => reasons.push(r.type));
        res.sse.send("one");
        res.sse.close();
        res.sse.close();
        after = {
          closed: res.sse.closed,
          send: res.sse.send("two"),
          comment: res.sse.comment("c"),
          aborted: res.sse.signal.aborted,
          reason: res.sse.signal.reason,
        };
      });
      const result = await collectEvents(app, { path: "/s" });
      expect(after).toEqual({
        closed: true,
        send: false,
        comment: false,
        aborted: true,
        reason: expect.any(StreamClosedError),
      });
      expect((after["reason"] as StreamClosedError).type).toBe("closed");
      expect(result.ended).toBe(true);
      expect(result.raw).toBe(OPEN + "data: one\n\n");
      expect(reasons).toEqual(["closed"]);
      expect(middleware.streams.size).toBe(0);
    });

    test("close() before any event sends the headers and an empty stream", async () => {
      const { app } = appWith((_req, res) => res.sse.close());
      const result = await collectEvents(app, { path: "/s" });
      expect(result.status).toBe(200);
      expect(result.headers["content-type"]).toBe("text/event-stream; charset=utf-8");
      expect(result.ended).toBe(true);
      expect(result.raw).toBe(OPEN);
    });

    test("a client disconnect aborts signal with client-disconnected and runs onClose once", async () => {
      const stream = deferred<SseStream>();
      const { app, middleware } = appWith((_req, res) => {
        res.sse.send("hello");
        stream.resolve(res.sse);
      });
      const { port } = await listen(app);
      const socket = await rawRequest(port, "/s");
      const s = await stream.promise;
      const calls: string[] = [];
      s.onClose((r) => calls.push(r.type));
      const removed = jest.fn();
      s.onClose(removed)();
      const aborted = new Promise<unknown>((resolve) =>
        s.signal.addEventListener("abort", () => resolve(s.signal.reason)),
      );
      socket.destroy();
      const reason = (await aborted) as StreamClosedError;
      expect(reason.type).toBe("client-disconnected");
      expect(reason.message).toBe("The client disconnected");
      expect(calls).toEqual(["client-disconnected"]);
      expect(removed).not.toHaveBeenCalled();
      expect(s.closed).toBe(true);
      expect(middleware.streams.size).toBe(0);
      const late = deferred<string>();
      s.onClose((r) => late.resolve(r.type));
      expect(await late.promise).toBe("client-disconnected");
    });

    test("a response ended behind the stream's back makes send() return false, not throw", async () => {
      let after: Record<string, unknown> = {};
      const { app } = appWith((_req, res) => {
        res.sse.send("a");
        res.end();
        after = { send: res.sse.send("b"), closed: res.sse.closed };
      });
      const { raw, ended } = await collectEvents(app, { path: "/s" });
      expect(after).toEqual({ send: false, closed: true });
      expect(ended).toBe(true);
      expect(raw).toBe(OPEN + "data: a\n\n");
    });

    test("using res.sse after headers were sent elsewhere is a clear error", async () => {
      const error = deferred<unknown>();
      const { app } = appWith((_req, res) => {
        res.writeHead(200, { "Content-Type": "text/plain" });
        try {
          res.sse.send("x");
        } catch (err) {
          error.resolve(err);
        }
        res.end("plain");
      });
      const { url } = await listen(app);
      await (await fetch(`${url}/s`)).text();
      expect(await error.promise).toEqual(
        new Error(
          "Cannot start an event stream: the response headers were already sent. Use res.sse before anything else writes to the response.",
        ),
      );
    });
  });

  describe("maxConnections", () => {
    test("past the bound new streams get 503 with Retry-After; open ones are unaffected", async () => {
      const streams: SseStream[] = [];
      const { app, middleware } = appWith(
        (_req, res) => {
          res.sse.send("hi");
          streams.push(res.sse);
        },
        { maxConnections: 2, retry: 2500 },
      );
      const { url } = await listen(app);
      const a = await collectEvents(url, { path: "/s", count: 1 }).catch((e) => e);
      expect(a.status).toBe(200);
      // keep two open
      const es1 = new EventSource(`${url}/s`);
      const es2 = new EventSource(`${url}/s`);
      try {
        await waitFor(() => middleware.streams.size === 2, { what: "two open streams" });
        const error = await collectEvents(url, { path: "/s" }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(NotAnEventStreamError);
        const rejected = (error as NotAnEventStreamError).result;
        expect(rejected.status).toBe(503);
        expect(rejected.headers["retry-after"]).toBe("3");
        expect(rejected.events).toEqual([]);
        expect(streams.at(-1)?.closeReason?.type).toBe("max-connections");
        expect(middleware.streams.size).toBe(2);
        es1.close();
        await waitFor(() => middleware.streams.size === 1, { what: "one stream closed" });
        const accepted = await collectEvents(url, { path: "/s", count: 1 });
        expect(accepted.status).toBe(200);
      } finally {
        es1.close();
        es2.close();
      }
    });
  });
});

describe("sse() without Express", () => {
  test("a bare node:http response gets res.sse; Node's own prototype is left alone", async () => {
    const middleware = sse({ retry: 500 });
    const handler = (req: IncomingMessage, res: ServerResponse) =>
      middleware(req, res, () => (res as unknown as { sse: SseStream }).sse.send("bare"));
    const { events, retries } = await collectEvents(handler, { count: 1 });
    expect(events.map((e) => e.data)).toEqual(["bare"]);
    expect(retries).toEqual([500]);
    expect(Object.getOwnPropertyDescriptor(ServerResponse.prototype, "sse")).toBeUndefined();
  });
});

describe("sse().stats()", () => {
  test("counts streams, events, bytes, heartbeats, slow clients and 503s", async () => {
    const app = express5();
    const middleware = sse({ heartbeat: 100, maxConnections: 1 });
    app.use(middleware);
    app.get("/s", (_req, res) => {
      res.sse.send("one");
      res.sse.send({ two: 2 }, { event: "e" });
      res.sse.comment("not an event");
    });
    const { url } = await listen(app);
    const held = collectEvents(url, { path: "/s", duration: 350 });
    await waitFor(() => middleware.stats().open === 1, { what: "one open stream" });
    const refused = await collectEvents(url, { path: "/s" }).then(
      () => ({ status: 200 }),
      (error: NotAnEventStreamError) => error.result,
    );
    expect(refused.status).toBe(503);
    const { raw, comments } = await held;
    const heartbeats = comments.filter((c) => c === "ping").length;
    expect(heartbeats).toBeGreaterThanOrEqual(1);
    await waitFor(() => middleware.stats().open === 0, { what: "stream closed" });
    expect(middleware.stats()).toEqual({
      open: 0,
      opened: 1,
      events: 2,
      bytes: Buffer.byteLength(raw),
      heartbeats,
      slowClientsDropped: 0,
      rejected: 1,
    });
  });
});

describe("sse() options", () => {
  test.each([
    [
      { heartbeat: -1 },
      new RangeError('The "heartbeat" option must be a non-negative safe integer, got -1'),
    ],
    [
      { heartbeat: 50 },
      new RangeError('The "heartbeat" option must be 0 (off) or at least 100 ms, got 50'),
    ],
    [{ heartbeat: "15s" }, new TypeError('The "heartbeat" option must be a number, got a string')],
    [
      { retry: 1.5 },
      new RangeError('The "retry" option must be a non-negative safe integer, got 1.5'),
    ],
    [{ retry: "1000" }, new TypeError('The "retry" option must be a number, got a string')],
    [
      { serialize: "json" },
      new TypeError('The "serialize" option must be a function, got a string'),
    ],
    [{ maxBufferedBytes: 0 }, new RangeError('The "maxBufferedBytes" option must be at least 1')],
    [
      { maxBufferedBytes: Infinity },
      new RangeError(
        'The "maxBufferedBytes" option must be a non-negative safe integer, got Infinity',
      ),
    ],
    [
      { maxConnections: -5 },
      new RangeError('The "maxConnections" option must be a non-negative safe integer, got -5'),
    ],
    [
      { headers: { "X-A": {} } },
      new TypeError('The "headers" option\'s "X-A" must be a string, number or array'),
    ],
    [{ heartBeat: 1000 }, new TypeError('Unknown sse() option "heartBeat"')],
  ])("sse(%j) throws at the call", (options, error) => {
    expect(() => sse(options as never)).toThrow(error);
  });

  test("the caller's options object is not mutated", () => {
    const options = Object.freeze({ heartbeat: 1000, headers: Object.freeze({ "X-A": "1" }) });
    expect(() => sse(options)).not.toThrow();
    expect(options).toEqual({ heartbeat: 1000, headers: { "X-A": "1" } });
  });
});
