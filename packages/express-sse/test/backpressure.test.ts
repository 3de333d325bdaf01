import compression from "compression";
import express from "express";
import http from "node:http";
import zlib from "node:zlib";
import { sse, type SseStream, type StreamClosedError } from "../src";
import { createParser, type ParsedEvent } from "../src/testing";
import { closeAllServers, deferred, listen, rawRequest, waitFor } from "./helpers/server";

afterEach(closeAllServers);

describe("slow clients", () => {
  test("a client that stops reading is cut off at maxBufferedBytes while a healthy one keeps up", async () => {
    const maxBufferedBytes = 256 * 1024;
    const app = express();
    const middleware = sse({ maxBufferedBytes, heartbeat: 0 });
    app.use(middleware);
    const streams: SseStream[] = [];
    app.get("/s", (_req, res) => {
      res.sse.start();
      streams.push(res.sse);
    });
    const { port, url } = await listen(app);

    const slow = await rawRequest(port, "/s", { paused: true });
    const healthyEvents: ParsedEvent[] = [];
    const healthyDone = deferred<void>();
    http.get(`${url}/s`, (res) => {
      res.setEncoding("utf8");
      const parser = createParser({ onEvent: (e) => healthyEvents.push(e) });
      res.on("data", (text: string) => parser.feed(text));
      res.on("close", () => healthyDone.resolve());
    });
    await waitFor(() => streams.length === 2, { what: "two streams" });
    const [slowStream, healthyStream] = streams as [SseStream, SseStream];
    const slowClosed = deferred<StreamClosedError>();
    slowStream.onClose(slowClosed.resolve);

    const payload = "y".repeat(16 * 1024);
    const frameSize = Buffer.byteLength(`data: ${payload}\n\n`);
    let maxSeen = 0;
    let sent = 0;
    // Bounded: 4,000 x 16 KiB = 64 MiB, far beyond any kernel buffer on loopback.
    for (let i = 0; i < 4000 && !slowStream.closed; i++) {
      slowStream.send(payload, { id: String(i) });
      healthyStream.send(payload, { id: String(i) });
      sent++;
      maxSeen = Math.max(maxSeen, slowStream.bufferedBytes);
      await new Promise((r) => setImmediate(r));
    }
    const reason = await slowClosed.promise;
    expect(reason.type).toBe("max-buffered-bytes");
    expect(slowStream.signal.reason).toBe(reason);
    // Memory held for the slow client never passed the bound by more than one frame.
    expect(maxSeen).toBeLessThanOrEqual(maxBufferedBytes + frameSize);
    expect(healthyStream.closed).toBe(false);

    await waitFor(() => healthyEvents.length === sent, {
      what: "healthy client to get every event",
    });
    expect(healthyEvents.map((e) => e.id)).toEqual(
      Array.from({ length: sent }, (_, i) => String(i)),
    );
    expect(middleware.streams.size).toBe(1);
    healthyStream.close();
    await healthyDone.promise;
    slow.destroy();
  });

  test("send() returns false when the client is behind and drain() resolves true once it catches up", async () => {
    const stream = deferred<SseStream>();
    const app = express();
    app.use(sse({ maxBufferedBytes: 64 * 1024 * 1024 }));
    app.get("/s", (_req, res) => stream.resolve(res.sse.start()));
    const { port } = await listen(app);
    const socket = await rawRequest(port, "/s", { paused: true });
    const s = await stream.promise;
    const payload = "z".repeat(64 * 1024);
    let ok = true;
    for (let i = 0; i < 1000 && ok; i++) ok = s.send(payload);
    expect(ok).toBe(false);
    expect(s.bufferedBytes).toBeGreaterThan(0);
    const drained = s.drain();
    socket.resume();
    expect(await drained).toBe(true);
    expect(await s.drain()).toBe(true);
    socket.destroy();
    await waitFor(() => s.closed, { what: "close" });
    expect(await s.drain()).toBe(false);
  });

  test("drain() resolves false when the client leaves while it waits", async () => {
    const stream = deferred<SseStream>();
    const app = express();
    app.use(sse({ maxBufferedBytes: 64 * 1024 * 1024 }));
    app.get("/s", (_req, res) => stream.resolve(res.sse.start()));
    const { port } = await listen(app);
    const socket = await rawRequest(port, "/s", { paused: true });
    const s = await stream.promise;
    while (s.send("w".repeat(64 * 1024)));
    const drained = s.drain();
    socket.destroy();
    expect(await drained).toBe(false);
  });
});

describe("under the compression middleware", () => {
  test("events are not compressed or held back (Cache-Control: no-transform)", async () => {
    const app = express();
    app.use(compression());
    app.use(sse());
    const stream = deferred<SseStream>();
    app.get("/s", (_req, res) => {
      res.sse.send("first");
      stream.resolve(res.sse);
    });
    const { url } = await listen(app);
    const received = deferred<{ encoding: string | undefined; text: string }>();
    const req = http.get(`${url}/s`, { headers: { "Accept-Encoding": "gzip" } }, (res) => {
      res.setEncoding("utf8");
      let text = "";
      res.on("data", (chunk: string) => {
        text += chunk;
        if (text.includes("data: first\n\n")) {
          received.resolve({ encoding: res.headers["content-encoding"], text });
        }
      });
    });
    const { encoding, text } = await received.promise;
    expect(encoding).toBeUndefined();
    expect(text).toBe(":\n\ndata: first\n\n");
    req.destroy();
  });

  test("when compression is allowed, each event is flushed through gzip at once", async () => {
    const app = express();
    app.use(compression());
    // Dropping no-transform lets compression gzip the stream; res.flush() after each event must
    // still push every event out immediately.
    app.use(sse({ headers: { "Cache-Control": "no-cache" } }));
    const stream = deferred<SseStream>();
    app.get("/s", (_req, res) => {
      stream.resolve(res.sse);
      res.sse.send("one");
    });
    const { url } = await listen(app);
    const events: ParsedEvent[] = [];
    let encoding: string | undefined;
    const req = http.get(`${url}/s`, { headers: { "Accept-Encoding": "gzip" } }, (res) => {
      encoding = res.headers["content-encoding"];
      const gunzip = zlib.createGunzip();
      const parser = createParser({ onEvent: (e) => events.push(e) });
      res.pipe(gunzip);
      gunzip.setEncoding("utf8");
      gunzip.on("data", (text: string) => parser.feed(text));
    });
    await waitFor(() => events.length === 1, { what: "first gzip event" });
    expect(encoding).toBe("gzip");
    (await stream.promise).send("two");
    await waitFor(() => events.length === 2, { timeout: 1000, what: "second gzip event" });
    expect(events.map((e) => e.data)).toEqual(["one", "two"]);
    req.destroy();
  });
});
