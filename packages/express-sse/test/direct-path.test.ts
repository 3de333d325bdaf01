import compression from "compression";
import express from "express";
import type { Socket } from "node:net";
import { Channel, sse, type SseStream } from "../src";
import { collectEvents } from "../src/testing";
import { closeAllServers, deferred, listen, rawRequest, waitFor } from "./helpers/server";

afterEach(closeAllServers);

// Plain HTTP/1.1 chunked responses get their frames handed to the socket as ready-made chunks;
// everything else (compression, anything that wraps res.write) goes through res.write(). These
// tests pin which path is taken and that both put the same bytes on the wire.

const socketOf = (s: SseStream) => (s as unknown as { _socket: Socket | undefined })._socket;

function app(options: { compress?: boolean } = {}) {
  const a = express();
  if (options.compress) a.use(compression());
  a.use(sse({ heartbeat: 0 }));
  return a;
}

describe("the direct socket path", () => {
  const script = (res: express.Response) => {
    res.sse.send("a");
    res.sse.send({ b: 2 }, { event: "e", id: "1" });
    res.sse.comment("c");
    res.sse.retry(5);
    res.sse.send("multi\nline ünïcödé 🎉");
    res.sse.close();
  };

  test("is taken for plain HTTP/1.1 and not under compression, with byte-identical output", async () => {
    const paths: Array<boolean> = [];
    const plain = app();
    plain.get("/s", (_req, res) => {
      res.sse.start();
      paths.push(socketOf(res.sse) !== undefined);
      script(res);
    });
    const wrapped = app({ compress: true });
    wrapped.get("/s", (_req, res) => {
      res.sse.start();
      paths.push(socketOf(res.sse) !== undefined);
      script(res);
    });
    const direct = await collectEvents(plain, { path: "/s" });
    const viaWrite = await collectEvents(wrapped, {
      path: "/s",
      headers: { "Accept-Encoding": "gzip" },
    });
    expect(paths).toEqual([true, false]);
    expect(direct.raw).toBe(viaWrite.raw);
    expect(direct.raw).toBe(
      ':\n\ndata: a\n\nevent: e\nid: 1\ndata: {"b":2}\n\n: c\n\nretry: 5\n\ndata: multi\ndata: line ünïcödé 🎉\n\n',
    );
    expect(direct.ended && viaWrite.ended).toBe(true);
  });

  test("a response the app ends itself gets nothing more, even from a broadcast in the same tick; the connection's next response is intact", async () => {
    const channel = new Channel("ended");
    const a = app();
    let first = true;
    let direct: unknown;
    a.get("/s", (_req, res) => {
      if (!first) {
        res.type("text/plain").send("second response");
        return;
      }
      first = false;
      void channel.subscribe(res);
      direct = socketOf(res.sse);
      res.end(); // the app's own end, not res.sse.close()
      void channel.publish("after the end"); // flushed in a microtask: must not reach the socket
    });
    const { url } = await listen(a);
    const socket = await rawRequest(Number(new URL(url).port), "/s");
    let received = "";
    socket.setEncoding("latin1").on("data", (chunk: string) => (received += chunk));
    await waitFor(() => received.includes("0\r\n\r\n"), { what: "the end of the first response" });
    await new Promise((resolve) => setImmediate(resolve));
    socket.write(`GET /s HTTP/1.1\r\nHost: x\r\n\r\n`);
    await waitFor(() => received.includes("second response"), { what: "the second response" });
    socket.destroy();
    expect(direct).toBeDefined(); // the stream was on the direct path when the app ended it
    expect(received).not.toContain("after the end");
    // The first body is the opening comment and the terminating chunk, nothing in between.
    const firstBody = received.slice(
      received.indexOf("\r\n\r\n") + 4,
      received.indexOf("0\r\n\r\n") + 5,
    );
    expect(firstBody).toBe("3\r\n:\n\n\r\n0\r\n\r\n");
    expect(received).toMatch(/HTTP\/1\.1 200 OK[\s\S]*HTTP\/1\.1 200 OK[\s\S]*second response$/);
    expect(channel.size).toBe(0);
    await channel.close();
  });

  test("keeps the order of writes made with res.write() in between", async () => {
    const a = app();
    a.get("/s", (_req, res) => {
      res.sse.send("1");
      res.write("data: 2\n\n");
      res.sse.send("3");
      setImmediate(() => {
        res.write("data: 4\n\n");
        res.sse.send("5");
        res.sse.close();
      });
    });
    const { events } = await collectEvents(a, { path: "/s" });
    expect(events.map((e) => e.data)).toEqual(["1", "2", "3", "4", "5"]);
  });

  test("a burst published in one tick reaches each client in one write", async () => {
    const channel = new Channel("burst");
    const a = app();
    const sockets: Socket[] = [];
    a.get("/c", (_req, res) => {
      void channel.subscribe(res);
      sockets.push(socketOf(res.sse)!);
    });
    const { url } = await listen(a);
    const collectors = [1, 2, 3].map(() => collectEvents(url, { path: "/c", count: 100 }));
    await waitFor(() => channel.size === 3, { what: "three subscribers" });
    const spies = sockets.map((s) => jest.spyOn(s, "write"));
    const ids: Array<Promise<string>> = [];
    for (let i = 0; i < 100; i++) ids.push(channel.publish(String(i)));
    await Promise.all(ids);
    for (const spy of spies) {
      expect(spy).toHaveBeenCalledTimes(1);
      spy.mockRestore();
    }
    for (const { events } of await Promise.all(collectors)) {
      expect(events.map((e) => e.data)).toEqual(Array.from({ length: 100 }, (_, i) => String(i)));
    }
  });

  test("a channel's broadcasts, bursts and replays reach a plain client and one behind compression() alike, and both count in stats()", async () => {
    const channel = new Channel("both-paths");
    const plain = app();
    const middleware = sse({ heartbeat: 0 });
    const wrapped = express().use(compression()).use(middleware);
    const paths: boolean[] = [];
    const handler = (_req: express.Request, res: express.Response) => {
      void channel.subscribe(res).then(() => paths.push(socketOf(res.sse) !== undefined));
    };
    plain.get("/c", handler);
    wrapped.get("/c", handler);
    const gzip = { "Accept-Encoding": "gzip" };
    const [a, b] = await Promise.all([listen(plain), listen(wrapped)]);
    const direct = collectEvents(a.url, { path: "/c", count: 6 });
    const viaWrite = collectEvents(b.url, { path: "/c", count: 6, headers: gzip });
    await waitFor(() => paths.length === 2, { what: "two subscribers" });
    void channel.publish("one");
    void channel.publish({ two: 2 }, { event: "e" }); // a burst: one batch for both paths
    await channel.publish("three");
    for (const data of ["four", "five", "six"]) await channel.publish(data);
    const [got, gotWrapped] = await Promise.all([direct, viaWrite]);
    expect(paths.sort()).toEqual([false, true]); // one on each path
    const shape = (r: typeof got) => r.events.map((e) => [e.event, e.id, e.data]);
    expect(shape(gotWrapped)).toEqual(shape(got));
    expect(got.events.map((e) => e.data)).toEqual([
      "one",
      '{"two":2}',
      "three",
      "four",
      "five",
      "six",
    ]);
    // Resuming behind compression() replays from history on the same path.
    const resumed = await collectEvents(b.url, {
      path: "/c",
      count: 3,
      headers: { ...gzip, "Last-Event-ID": got.events[2]!.id! },
    });
    expect(resumed.events.map((e) => e.data)).toEqual(["four", "five", "six"]);
    // The compressed streams' events were counted by their own middleware, every one of them.
    expect(middleware.stats().events).toBe(9);
    // The channel counts what it wrote: each stream's body but its opening comment (":\n\n").
    const body = (r: typeof got) => Buffer.byteLength(r.raw) - 3;
    expect(channel.stats().bytes).toBe(2 * body(got) + body(resumed));
    await channel.close();
  });
});

describe("drain() on the res.write() path", () => {
  test("resolves true once a client behind compression() catches up", async () => {
    const stream = deferred<SseStream>();
    const a = express();
    a.use(compression());
    a.use(sse({ maxBufferedBytes: 64 * 1024 * 1024 }));
    a.get("/s", (_req, res) => stream.resolve(res.sse.start()));
    const { port } = await listen(a);
    const socket = await rawRequest(port, "/s", {
      paused: true,
      headers: { "Accept-Encoding": "gzip" },
    });
    const s = await stream.promise;
    expect(socketOf(s)).toBeUndefined();
    let ok = true;
    for (let i = 0; i < 1000 && ok; i++) ok = s.send("q".repeat(64 * 1024));
    expect(ok).toBe(false);
    const drained = s.drain();
    socket.resume();
    expect(await drained).toBe(true);
    socket.destroy();
  });
});
