/**
 * `@sluice/express-sse/testing`'s `collectEvents`: what a test written with it can rely on, for
 * each kind of target (an app, a listening server, a URL), and for answers that are no stream.
 */
import express from "express";
import { sse } from "../src";
import { collectEvents, NotAnEventStreamError } from "../src/testing";
import { closeAllServers, listen } from "./helpers/server";

afterEach(closeAllServers);

/** An app with a stream at /api/time and /api/time?n=2 (two events), and a JSON route. */
function app() {
  const app = express();
  app.use(sse());
  app.get("/api/time", (req, res) => {
    const n = Number(req.query["n"] ?? 1);
    for (let i = 1; i <= n; i++) res.sse.send(`t${i}`, { event: "time" });
  });
  app.get("/api/json", (_req, res) => {
    res.json({ not: "a stream" });
  });
  app.get("/api/busy", (_req, res) => {
    res.status(503).set("Retry-After", "7").send("busy, come back later");
  });
  return app;
}

describe("collectEvents: the request", () => {
  test("a URL keeps its own path and query (the default path does not replace them)", async () => {
    const { url } = await listen(app());
    const { status, events } = await collectEvents(`${url}/api/time?n=2`, { count: 2 });
    expect(status).toBe(200);
    expect(events.map((e) => [e.event, e.data])).toEqual([
      ["time", "t1"],
      ["time", "t2"],
    ]);
    const fromUrlObject = await collectEvents(new URL(`${url}/api/time`), { count: 1 });
    expect(fromUrlObject.events.map((e) => e.data)).toEqual(["t1"]);
  });

  test("a path given with a URL is resolved against it", async () => {
    const { url } = await listen(app());
    const { events } = await collectEvents(url, { path: "/api/time?n=2", count: 2 });
    expect(events.map((e) => e.data)).toEqual(["t1", "t2"]);
  });

  test("an app (started and closed by the helper) or a listening server: the path, / by default", async () => {
    const fromApp = await collectEvents(app(), { path: "/api/time", count: 1 });
    expect(fromApp.events.map((e) => e.data)).toEqual(["t1"]);
    const { server } = await listen(app());
    const fromServer = await collectEvents(server, { path: "/api/time?n=2", count: 2 });
    expect(fromServer.events.map((e) => e.data)).toEqual(["t1", "t2"]);
    expect(server.listening).toBe(true); // not the helper's to close
  });
});

describe("collectEvents: answers that are not an event stream reject, naming what came", () => {
  test("a 404 (the wrong path) rejects instead of resolving with no events", async () => {
    const { url } = await listen(app());
    const error = await collectEvents(`${url}/api/nope`, { count: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotAnEventStreamError);
    const { result, message } = error as NotAnEventStreamError;
    expect(result.status).toBe(404);
    expect(result.events).toEqual([]);
    expect(message).toMatch(
      new RegExp(
        `^collectEvents: GET ${url}/api/nope answered 404 with text/html.*, not an event stream: "`,
      ),
    );
  });

  test("a 200 that is not text/event-stream rejects, with the body in the message and the result", async () => {
    const error = await collectEvents(app(), { path: "/api/json", count: 1 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NotAnEventStreamError);
    const { result, message } = error as NotAnEventStreamError;
    expect(result.status).toBe(200);
    expect(result.headers["content-type"]).toMatch(/^application\/json/);
    expect(result.raw).toBe('{"not":"a stream"}');
    expect(message).toContain(
      'with application/json; charset=utf-8, not an event stream: "{\\"not\\":\\"a stream\\"}"',
    );
  });

  test("a refusal (503 + Retry-After) is there to assert on: status, headers and body", async () => {
    const error = await collectEvents(app(), { path: "/api/busy" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotAnEventStreamError);
    const { result } = error as NotAnEventStreamError;
    expect(result).toMatchObject({ status: 503, raw: "busy, come back later", ended: true });
    expect(result.headers["retry-after"]).toBe("7");
  });

  test("with duration, a refusal still rejects (a test asserting silence is not fooled)", async () => {
    const error = await collectEvents(app(), { path: "/api/nope", duration: 200 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NotAnEventStreamError);
  });
});
