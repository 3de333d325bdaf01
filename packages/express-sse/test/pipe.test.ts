import express from "express";
import type { Socket } from "node:net";
import { sse, type SseStream } from "../src";
import { collectEvents } from "../src/testing";
import { closeAllServers, deferred, listen, rawRequest, waitFor } from "./helpers/server";

/** The first frame of every stream without a `retry` option (see SseStream#start). */
const OPEN = ":\n\n";

afterEach(closeAllServers);

function appWith(handler: (res: express.Response) => void, options?: Parameters<typeof sse>[0]) {
  const app = express();
  const middleware = sse(options);
  app.use(middleware);
  app.get("/s", (_req, res) => handler(res));
  return { app, middleware };
}

describe("SseStream#pipe()", () => {
  test("sends every item of an async iterable, with event and id options, and resolves true", async () => {
    const result = deferred<boolean>();
    async function* tokens() {
      yield "Hello";
      yield ",";
      yield { word: "world" };
    }
    const { app } = appWith((res) => {
      res.sse
        .pipe(tokens(), { event: "token", id: (_item, i) => i, closeOnEnd: true })
        .then(result.resolve);
    });
    const { raw, ended } = await collectEvents(app, { path: "/s" });
    expect(ended).toBe(true);
    expect(raw).toBe(
      OPEN +
        "event: token\nid: 0\ndata: Hello\n\n" +
        "event: token\nid: 1\ndata: ,\n\n" +
        'event: token\nid: 2\ndata: {"word":"world"}\n\n',
    );
    expect(await result.promise).toBe(true);
  });

  test("accepts a sync iterable and leaves the stream open unless closeOnEnd", async () => {
    const { app } = appWith((res) => {
      void res.sse.pipe(["a", "b"]).then(() => res.sse.send("after"));
    });
    const { events } = await collectEvents(app, { path: "/s", count: 3 });
    expect(events.map((e) => e.data)).toEqual(["a", "b", "after"]);
  });

  test("calls the iterator's return() at once when the client leaves, even while next() is pending", async () => {
    const returned = deferred<void>();
    const result = deferred<boolean>();
    let nextCalls = 0;
    // A source like an upstream HTTP stream: the second next() never settles on its own.
    const source: AsyncIterable<string> = {
      [Symbol.asyncIterator]: () => ({
        next: () => {
          nextCalls++;
          return nextCalls === 1
            ? Promise.resolve({ value: "first", done: false })
            : new Promise(() => {});
        },
        return: () => {
          returned.resolve();
          return Promise.resolve({ value: undefined, done: true });
        },
      }),
    };
    const { app } = appWith((res) => void res.sse.pipe(source).then(result.resolve));
    await collectEvents(app, { path: "/s", count: 1 }); // hangs up after the first event
    await returned.promise;
    expect(await result.promise).toBe(false);
    expect(nextCalls).toBe(2);
  });

  test("an async generator's finally block runs when the client leaves", async () => {
    const cleanedUp = deferred<number>();
    async function* endless() {
      let i = 0;
      try {
        for (;;) {
          yield i++;
          await new Promise((r) => setTimeout(r, 5));
        }
      } finally {
        cleanedUp.resolve(i);
      }
    }
    const { app, middleware } = appWith((res) => void res.sse.pipe(endless()));
    const { events } = await collectEvents(app, { path: "/s", count: 3 });
    expect(events.map((e) => e.data)).toEqual(["0", "1", "2"]);
    const produced = await cleanedUp.promise;
    expect(produced).toBeLessThan(10);
    await waitFor(() => middleware.streams.size === 0, { what: "stream released" });
  });

  test("rejects with the source's error and leaves the stream usable", async () => {
    const outcome = deferred<unknown>();
    async function* failing() {
      yield "one";
      throw new Error("upstream failed");
    }
    const { app } = appWith((res) => {
      res.sse.pipe(failing()).catch((err: unknown) => {
        outcome.resolve(err);
        res.sse.send("recovered", { event: "error-handled" });
      });
    });
    const { events } = await collectEvents(app, { path: "/s", count: 2 });
    expect(await outcome.promise).toEqual(new Error("upstream failed"));
    expect(events).toEqual([
      { event: "message", data: "one", id: "" },
      { event: "error-handled", data: "recovered", id: "" },
    ]);
  });

  test("rejects bad arguments with a TypeError", async () => {
    const errors = deferred<unknown[]>();
    const { app } = appWith((res) => {
      const out: unknown[] = [];
      Promise.allSettled([
        res.sse.pipe(42 as never),
        res.sse.pipe("abc" as never),
        res.sse.pipe([], { event: 5 as never }),
      ]).then((results) => {
        for (const r of results) out.push(r.status === "rejected" ? r.reason : r.value);
        errors.resolve(out);
        res.sse.close();
      });
    });
    await collectEvents(app, { path: "/s" });
    expect(await errors.promise).toEqual([
      new TypeError("pipe() takes an async iterable or an iterable, got number 42"),
      new TypeError("pipe() takes an async iterable or an iterable, got a string"),
      new TypeError('The "event" option of pipe() must be a string or a function, got number 5'),
    ]);
  });

  test("does not pull from the source faster than the client reads", async () => {
    const payload = "x".repeat(16 * 1024);
    const total = 2000; // 32 MiB if it were all pulled at once
    let pulled = 0;
    function* source() {
      for (let i = 0; i < total; i++) {
        pulled++;
        yield payload;
      }
    }
    const stream = deferred<SseStream>();
    const result = deferred<boolean>();
    const { app } = appWith(
      (res) => {
        stream.resolve(res.sse);
        void res.sse.pipe(source(), { closeOnEnd: true }).then(result.resolve);
      },
      { maxBufferedBytes: 8 * 1024 * 1024 },
    );
    const { port } = await listen(app);
    const socket: Socket = await rawRequest(port, "/s", { paused: true });
    const s = await stream.promise;
    // Let the pipe fill the kernel buffers and stop.
    let last = -1;
    await waitFor(
      () => {
        const settled = pulled === last;
        last = pulled;
        return settled && pulled > 0;
      },
      { interval: 100, what: "pipe to stop pulling" },
    );
    expect(pulled).toBeLessThan(total);
    expect(s.bufferedBytes).toBeLessThanOrEqual(8 * 1024 * 1024);
    // Now read everything: the pipe resumes and finishes.
    let bytes = 0;
    socket.on("data", (c: Buffer) => (bytes += c.length));
    socket.resume();
    expect(await result.promise).toBe(true);
    expect(pulled).toBe(total);
    await waitFor(() => bytes >= total * payload.length, { what: "all bytes read" });
    socket.destroy();
  });
});
