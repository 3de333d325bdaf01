import express from "express";
import http from "node:http";
import { performance } from "node:perf_hooks";
import { shutdown, sse, type CloseReason, type SseStream } from "../src";
import {
  closeAllServers,
  deferred,
  listen,
  sleep,
  waitFor,
  type TestServer,
} from "./helpers/server";

afterEach(closeAllServers);

interface Client {
  readonly req: http.ClientRequest;
  readonly res: http.IncomingMessage;
  /** The body received so far. */
  body: string;
  /** "end" if the server ended the response cleanly, "aborted" if the connection was cut. */
  readonly outcome: Promise<"end" | "aborted">;
}

/** Opens a stream with http.get; resolves once headers arrive. */
function openClient(url: string, agent: http.Agent): Promise<Client> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers: { Accept: "text/event-stream" } }, (res) => {
      res.setEncoding("utf8");
      const client: Client = {
        req,
        res,
        body: "",
        outcome: new Promise((settle) => {
          res.on("close", () => settle(res.complete ? "end" : "aborted"));
        }),
      };
      res.on("data", (chunk: string) => (client.body += chunk));
      res.on("error", () => undefined); // "aborted" is reported through `outcome`
      resolve(client);
    });
    req.on("error", reject);
  });
}

/** Resolves with the error of a request that should fail (or "ok" if it got a response). */
function requestError(url: string, agent?: http.Agent): Promise<NodeJS.ErrnoException | "ok"> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent }, (res) => {
      res.resume();
      res.on("end", () => resolve("ok"));
    });
    req.on("error", resolve);
  });
}

/** An app whose /s streams record their close reason, with a /hang route that never answers. */
function makeApp() {
  const app = express();
  const middleware = sse();
  const streams: SseStream[] = [];
  const reasons: CloseReason[] = [];
  const hanging = deferred<void>();
  app.use(middleware);
  app.get("/s", (_req, res) => {
    streams.push(res.sse);
    res.sse.onClose((reason) => reasons.push(reason.type));
    res.sse.send("hi");
  });
  app.get("/plain", (_req, res) => {
    res.send("plain");
  });
  app.get("/hang", () => {
    hanging.resolve(); // and never answer
  });
  return { app, middleware, streams, reasons, hanging: hanging.promise };
}

/** Expects `server` to be closed: not listening, and refusing new connections. */
async function expectClosed(server: TestServer): Promise<void> {
  expect(server.server.listening).toBe(false);
  const error = await requestError(`${server.url}/plain`);
  expect(error).toMatchObject({ code: "ECONNREFUSED" });
}

describe("shutdown", () => {
  test("with 100 open streams, resolves within 1 s; every stream closes with reason shutdown", async () => {
    const { app, middleware, reasons } = makeApp();
    const server = await listen(app);
    // keepAlive: the clients keep their connections after the responses end, as browsers do.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 200 });
    try {
      const clients = await Promise.all(
        Array.from({ length: 100 }, () => openClient(`${server.url}/s`, agent)),
      );
      await waitFor(() => clients.every((c) => c.body === ":\n\ndata: hi\n\n"), {
        what: "the first event on every stream",
      });
      expect(middleware.streams.size).toBe(100);

      const started = performance.now();
      await shutdown(server.server);
      const elapsed = performance.now() - started;

      expect(elapsed).toBeLessThan(1000);
      expect(reasons).toHaveLength(100);
      expect(new Set(reasons)).toEqual(new Set(["shutdown"]));
      expect(middleware.streams.size).toBe(0);
      const outcomes = await Promise.all(clients.map((c) => c.outcome));
      expect(outcomes.filter((o) => o === "end")).toHaveLength(100);
      // Nothing was lost or added: each client got its event, then the end of the response.
      expect(clients.map((c) => c.body)).toEqual(Array(100).fill(":\n\ndata: hi\n\n"));
      await expectClosed(server);
    } finally {
      agent.destroy();
    }
  });

  test("resolves at once on a server with no connections", async () => {
    const { app } = makeApp();
    const server = await listen(app);
    const started = performance.now();
    await shutdown(server.server);
    expect(performance.now() - started).toBeLessThan(200);
    await expectClosed(server);
  });

  test("closes idle keep-alive connections at once instead of waiting for them", async () => {
    const { app } = makeApp();
    const server = await listen(app);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 10 });
    try {
      await Promise.all([1, 2, 3].map(() => requestError(`${server.url}/plain`, agent)));
      expect(Object.values(agent.freeSockets).flat().length).toBeGreaterThan(0);
      const started = performance.now();
      await shutdown(server.server);
      expect(performance.now() - started).toBeLessThan(1000);
      await expectClosed(server);
    } finally {
      agent.destroy();
    }
  });

  test("closes only the streams of that server; another server's stream stays open", async () => {
    const { app, streams, reasons } = makeApp();
    const first = await listen(app);
    const second = await listen(app);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 10 });
    try {
      const a = await openClient(`${first.url}/s`, agent);
      const b = await openClient(`${second.url}/s`, agent);
      await waitFor(() => streams.length === 2, { what: "both streams" });
      const streamA = streams.find((s) => s.request.socket.localPort === first.port)!;
      const streamB = streams.find((s) => s.request.socket.localPort === second.port)!;
      expect(streamA).not.toBe(streamB);

      await shutdown(first.server);

      expect(await a.outcome).toBe("end");
      expect(streamA.closed).toBe(true);
      expect(reasons).toEqual(["shutdown"]);
      expect(streamB.closed).toBe(false);
      expect(second.server.listening).toBe(true);
      expect(streamB.send("still here")).toBe(true);
      await waitFor(() => b.body === ":\n\ndata: hi\n\ndata: still here\n\n", {
        what: "the event on the other server's stream",
      });
    } finally {
      agent.destroy();
    }
  });

  test("the problem it solves: a plain server.close() never completes while a stream is open", async () => {
    const { app, streams } = makeApp();
    const server = await listen(app);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 10 });
    try {
      const client = await openClient(`${server.url}/s`, agent);
      await waitFor(() => streams.length === 1, { what: "the stream" });
      const closed = new Promise<"closed">((resolve) =>
        server.server.close(() => resolve("closed")),
      );
      expect(await Promise.race([closed, sleep(300).then(() => "still open" as const)])).toBe(
        "still open",
      );
      expect(streams[0]!.closed).toBe(false);
      expect(streams[0]!.send("alive")).toBe(true);
      await waitFor(() => client.body.endsWith("data: alive\n\n"), { what: "a later event" });

      server.server.closeAllConnections();
      expect(await closed).toBe("closed");
    } finally {
      agent.destroy();
    }
  });

  describe("timeout", () => {
    test.each<[unknown, string]>([
      [
        -1,
        'The "timeout" option must be a number of milliseconds from 0 to 2147483647, or Infinity, got -1',
      ],
      [
        -Infinity,
        'The "timeout" option must be a number of milliseconds from 0 to 2147483647, or Infinity, got -Infinity',
      ],
      [
        NaN,
        'The "timeout" option must be a number of milliseconds from 0 to 2147483647, or Infinity, got NaN',
      ],
      [
        "100",
        'The "timeout" option must be a number of milliseconds from 0 to 2147483647, or Infinity, got 100',
      ],
      [
        null,
        'The "timeout" option must be a number of milliseconds from 0 to 2147483647, or Infinity, got null',
      ],
      [
        2 ** 31,
        'The "timeout" option must be a number of milliseconds from 0 to 2147483647, or Infinity, got 2147483648',
      ],
    ])(
      "timeout %p throws a RangeError at the call and closes nothing",
      async (timeout, message) => {
        const { app, streams } = makeApp();
        const server = await listen(app);
        const client = await openClient(`${server.url}/s`, new http.Agent());
        await waitFor(() => streams.length === 1, { what: "the stream" });
        const call = () => shutdown(server.server, { timeout: timeout as number });
        expect(call).toThrow(RangeError);
        expect(call).toThrow(new RangeError(message));
        expect(server.server.listening).toBe(true);
        expect(streams[0]!.closed).toBe(false);
        client.req.destroy();
      },
    );

    test("a request still being answered is destroyed after timeout, and shutdown resolves", async () => {
      const { app, reasons, hanging } = makeApp();
      const server = await listen(app);
      const agent = new http.Agent({ keepAlive: true, maxSockets: 10 });
      try {
        const stream = await openClient(`${server.url}/s`, agent);
        const pending = requestError(`${server.url}/hang`, agent);
        await hanging; // the handler has the request and will never answer it

        const started = performance.now();
        const done = shutdown(server.server, { timeout: 200 });
        expect(reasons).toEqual(["shutdown"]); // streams close at once, not after the timeout
        expect(await stream.outcome).toBe("end");
        let settled = false;
        void done.then(() => (settled = true));
        await sleep(100);
        expect(settled).toBe(false); // still waiting for the pending request

        await done;
        const elapsed = performance.now() - started;
        expect(elapsed).toBeGreaterThanOrEqual(190);
        expect(elapsed).toBeLessThan(1000);
        expect(await pending).toMatchObject({ code: "ECONNRESET", message: "socket hang up" });
        await expectClosed(server);
      } finally {
        agent.destroy();
      }
    });

    test("timeout: 0 destroys a pending request at once", async () => {
      const { app, hanging } = makeApp();
      const server = await listen(app);
      const pending = requestError(`${server.url}/hang`, new http.Agent());
      await hanging;
      const started = performance.now();
      await shutdown(server.server, { timeout: 0 });
      expect(performance.now() - started).toBeLessThan(200);
      expect(await pending).toMatchObject({ code: "ECONNRESET" });
    });

    test("by default, a pending request is waited for well past 300 ms", async () => {
      const { app, hanging } = makeApp();
      const server = await listen(app);
      const pending = requestError(`${server.url}/hang`, new http.Agent());
      await hanging;
      const done = shutdown(server.server);
      expect(await Promise.race([done, sleep(300).then(() => "waiting" as const)])).toBe("waiting");
      expect(server.server.listening).toBe(false); // no new connections meanwhile
      server.server.closeAllConnections();
      await done;
      expect(await pending).toMatchObject({ code: "ECONNRESET" });
    });
  });

  test("timeout: Infinity waits for a pending request as long as it takes (no 1 ms overflow)", async () => {
    const { app, hanging } = makeApp();
    const server = await listen(app);
    const pending = requestError(`${server.url}/hang`, new http.Agent());
    await hanging;
    const done = shutdown(server.server, { timeout: Infinity });
    expect(await Promise.race([done, sleep(200).then(() => "waiting" as const)])).toBe("waiting");
    server.server.closeAllConnections();
    await done;
    expect(await pending).toMatchObject({ code: "ECONNRESET" });
  });

  test("a handler that starts its stream after shutdown began is closed at once, not at the timeout", async () => {
    const app = express();
    app.use(sse());
    const reached = deferred<void>();
    const go = deferred<void>();
    const reasons: string[] = [];
    app.get("/late", async (_req, res) => {
      reached.resolve();
      await go.promise; // still preparing (auth, a database read) when shutdown runs
      res.sse.onClose((r) => reasons.push(r.type));
      res.sse.send("too late");
    });
    const server = await listen(app);
    const client = openClient(`${server.url}/late`, new http.Agent());
    await reached.promise;
    const started = performance.now();
    const done = shutdown(server.server, { timeout: 5000 });
    go.resolve();
    await done;
    expect(performance.now() - started).toBeLessThan(1000);
    expect(reasons).toEqual(["shutdown"]);
    const c = await client;
    expect(await c.outcome).toBe("end");
    expect(c.body).toBe("");
  });

  test("rejects when the server is not listening", async () => {
    const { app } = makeApp();
    const server = await listen(app);
    await server.close();
    await expect(shutdown(server.server)).rejects.toMatchObject({
      code: "ERR_SERVER_NOT_RUNNING",
    });
  });
});
