/**
 * The real Sluice server the client's suite runs against (Express + `sse()` + `Channel`, from the
 * library's source), on 127.0.0.1. Every scenario has its routes under `/<scenario>/:run`, and
 * each run id gets its own channels and its own request log, so the Node run and the browser run
 * of a scenario never share state. It also serves the page and the bundled client for Chromium.
 */
import express, { type Request, type Response } from "express";
import type { AddressInfo } from "node:net";
import type { Server, IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { Channel, sse, type SseStream } from "@sluice/express-sse";

/** What the server saw of one request. */
export interface RequestRecord {
  method: string;
  /** `Last-Event-ID`, or `null` without one. */
  lastEventId: string | null;
  authorization: string | null;
  contentType: string | null;
  body: string;
  /** `Date.now()` when it arrived. */
  at: number;
  /** The status it was answered with. */
  status: number;
  /** `Date.now()` when its connection ended (destroyed, ended or left by the client). */
  closedAt?: number;
}

export interface FixtureServer {
  url: string;
  /**
   * The same routes on a second port: another origin, which allows every origin (CORS), so a page
   * from `url` reads its streams cross-origin, as a page reads an API on another host.
   */
  otherUrl: string;
  /** Everything seen for a run id, in arrival order (routes of one scenario share a log). */
  log(run: string): RequestRecord[];
  /** `Date.now()` of each forced disconnect of a run. */
  drops(run: string): number[];
  /**
   * What went wrong in a run's background work (the resume route's publisher timing out), kept
   * for the test to assert instead of thrown where no test is waiting for it.
   */
  problems(run: string): string[];
  /** Connections of a run that are still open. */
  openCount(run: string): number;
  /** Publishes to a run's channel of the `feed` route. */
  feed(run: string): Channel;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(predicate: () => boolean, what: string, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`fixture server: timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** Per run: a value made on first use. */
function perRun<T>(make: (run: string) => T): (run: string) => T {
  const map = new Map<string, T>();
  return (run) => {
    let value = map.get(run);
    if (value === undefined) map.set(run, (value = make(run)));
    return value;
  };
}

export interface FixtureOptions {
  /** The page's script (the bundled client and scenarios), for the browser run. */
  script?: () => string;
  /** Connections that have sent no request after this many ms are closed. */
  firstRequestTimeout?: number;
}

export async function startFixtureServer(options: FixtureOptions = {}): Promise<FixtureServer> {
  const logs = perRun<RequestRecord[]>(() => []);
  const dropLog = perRun<number[]>(() => []);
  const problems = perRun<string[]>(() => []);
  const open = perRun<Set<Response>>(() => new Set());
  const sockets = new Set<Socket>();
  const channels: Channel[] = [];
  const timers: ReturnType<typeof setInterval>[] = [];
  const app = express();
  let otherPort = 0;

  // The second origin answers CORS as an app's cors() middleware would: any origin allowed, and
  // the preflight a reconnect needs (Last-Event-ID is not a CORS-safelisted header).
  app.use((req, res, next) => {
    const origin = req.get("origin");
    if (req.socket.localPort !== otherPort || origin === undefined) return next();
    res.setHeader("Access-Control-Allow-Origin", origin);
    if (req.method !== "OPTIONS") return next();
    res.setHeader("Access-Control-Allow-Headers", "last-event-id, authorization, content-type");
    res.status(204).end();
  });

  // ack: a scenario's client posts here once it has dispatched the last event a route writes
  // before it destroys the connection (see acknowledged). A browser discards what a fetch body
  // stream has queued but not yet handed to the reader when the connection breaks (the Streams
  // spec's error()), so a drop on a timer could take events with it on a loaded machine, and the
  // client would rightly resume without them (or, with no id yet, not resume at all). Not
  // logged: it is the test's channel, not the client's traffic.
  const acked = perRun<{ count: number }>(() => ({ count: 0 }));
  /**
   * Resolves at the run's next acknowledgement (the first one after this call), or after 10 s
   * without one: then the drop happens anyway, and the test fails on what the client missed.
   */
  const acknowledged = (id: string): Promise<void> => {
    const state = acked(id);
    const want = state.count + 1;
    return until(() => state.count >= want, "the client to acknowledge an event").catch(
      () => undefined,
    );
  };
  app.post("/ack/:run", (req, res) => {
    acked(String(req.params["run"])).count++;
    res.status(204).end();
  });

  /** Records every request of a run: headers, body, status, and when its connection ended. */
  app.use("/:scenario/:run", express.text({ type: "*/*" }), (req, res, next) => {
    const run = String(req.params["run"]);
    const record: RequestRecord = {
      method: req.method,
      lastEventId: req.get("last-event-id") ?? null,
      authorization: req.get("authorization") ?? null,
      contentType: req.get("content-type") ?? null,
      body: typeof req.body === "string" ? req.body : "",
      at: Date.now(),
      status: 0,
    };
    logs(run).push(record);
    open(run).add(res);
    const done = () => {
      record.closedAt ??= Date.now();
      open(run).delete(res);
    };
    res.once("close", done);
    const writeHead = res.writeHead;
    res.writeHead = function (this: Response, ...args: unknown[]) {
      record.status = args[0] as number;
      return (writeHead as (...a: unknown[]) => Response).apply(this, args);
    } as typeof res.writeHead;
    next();
  });

  const events = sse();
  const run = (req: Request) => String(req.params["run"]);
  /** Destroys a connection of a run, as a network failure would, and logs when. */
  const dropSocket = (id: string, socket: Socket) => {
    dropLog(id).push(Date.now());
    socket.destroy();
  };
  const drop = (req: Request, stream?: SseStream) =>
    dropSocket(run(req), (stream?.request ?? (req as IncomingMessage)).socket);
  /**
   * Drops the connection once the client has acknowledged the event just written (its scenario
   * posts to /ack/<run> from the event's listener). Call it right after the write, so the count
   * it waits for cannot include an earlier acknowledgement.
   */
  const dropOnceRead = (req: Request, stream?: SseStream) => {
    void acknowledged(run(req)).then(() => drop(req, stream));
  };

  // resume: 1,000 events on a channel; after every 100th, once the client has acknowledged it,
  // the subscriber's connection is destroyed. The events published while it reconnects come back
  // through Last-Event-ID.
  const resumeChannel = perRun((id) => {
    const channel = new Channel<{ message: { n: number } }>(`resume-${id}`, {
      history: { max: 2000 },
    });
    channels.push(channel);
    const streams = new Set<SseStream>();
    channel.on("join", (s) => streams.add(s));
    channel.on("leave", (s) => streams.delete(s));
    let read = acknowledged(id); // before event 99 goes out: its ack cannot come earlier
    void (async () => {
      await until(() => streams.size > 0, "the first subscriber");
      for (let n = 0; n < 1000; n++) {
        await channel.publish({ n });
        if (n % 10 === 9) await sleep(1);
        if (n % 100 === 99 && n < 999) {
          await read;
          read = acknowledged(id);
          await until(() => streams.size > 0, "a subscriber to drop");
          for (const s of streams) dropSocket(id, s.request.socket);
        }
      }
    })().catch((error: unknown) => problems(id).push(String(error)));
    return channel;
  });
  app.get("/resume/:run", events, (req, res) => void resumeChannel(run(req)).subscribe(res));

  // retry: sends `retry: <ms>` and one event, then drops the connection once the client has it.
  app.get("/retry/:run", events, (req, res) => {
    const ms = Number(req.query["ms"]);
    res.sse.send({ n: logs(run(req)).length }, { retry: ms, id: String(Date.now()) });
    dropOnceRead(req);
  });

  // busy: a Sluice instance with room for one stream; the next one gets 503 + Retry-After.
  const busy = perRun(() => sse({ maxConnections: 1, retry: 1000 }));
  app.get(
    "/busy/:run",
    (req, res, next) => busy(run(req))(req, res, next),
    (_req, res) => {
      res.sse.send("welcome", { event: "hello" });
    },
  );

  // overloaded: 503 with Retry-After: 0, every time.
  app.get("/overloaded/:run", (_req, res) => {
    res.status(503).set("Retry-After", "0").send("busy");
  });

  // gone: the server says "stop" (204).
  app.get("/gone/:run", (_req, res) => void res.status(204).end());

  // private: a channel behind a bearer token that the server expires after the first stream.
  const privateState = perRun((id) => {
    const channel = new Channel(`private-${id}`);
    channels.push(channel);
    return { channel, valid: "Bearer one", published: false };
  });
  app.get(
    "/private/:run",
    (req, res, next) => {
      const state = privateState(run(req));
      if (req.get("authorization") !== state.valid) {
        res.status(401).json({ error: "the stream token has expired" });
        return;
      }
      next();
    },
    events,
    async (req, res) => {
      const state = privateState(run(req));
      await state.channel.subscribe(res);
      if (!state.published) {
        state.published = true;
        const read = acknowledged(run(req)); // the client acknowledges the fifth event
        for (let n = 0; n < 5; n++) await state.channel.publish({ n });
        await read;
        state.valid = "Bearer two"; // the first token has expired: the reconnect gets 401
        drop(req, res.sse);
        for (let n = 5; n < 10; n++) await state.channel.publish({ n }); // missed, then replayed
      }
    },
  );
  app.get("/forbidden/:run", (_req, res) => void res.status(403).json({ error: "no" }));

  // reset: a channel keeping 5 events, 20 published before anyone subscribes.
  const resetChannel = perRun((id) => {
    const channel = new Channel(`reset-${id}`, { history: { max: 5 } });
    channels.push(channel);
    for (let n = 0; n < 20; n++) void channel.publish({ n });
    return channel;
  });
  app.get("/reset/:run", events, (req, res) => {
    const channel = resetChannel(run(req));
    void channel.subscribe(res).then(() => channel.publish({ n: 20 }));
  });

  // ticks: an endless stream, one event every 10 ms, with ids.
  app.get("/ticks/:run", events, (_req, res) => {
    let n = 0;
    const timer = setInterval(() => res.sse.send({ n }, { id: String(n++) }), 10);
    res.sse.onClose(() => clearInterval(timer));
  });

  // feed: a run's channel that the test publishes to (hidden-page scenario).
  const feedChannel = perRun((id) => {
    const channel = new Channel<{ message: { n: number } }>(`feed-${id}`);
    channels.push(channel);
    let n = 0;
    timers.push(setInterval(() => void channel.publish({ n: n++ }), 10));
    return channel;
  });
  app.get("/feed/:run", events, (req, res) => void feedChannel(run(req)).subscribe(res));

  // lifetime: Sluice's maxLifetime ends each stream cleanly after 120-150 ms, with `retry: 20`
  // just before; events every 10 ms.
  const lifetimeChannel = perRun((id) => {
    const channel = new Channel<{ message: { n: number } }>(`lifetime-${id}`, {
      maxLifetime: 150,
      lifetimeRetry: 20,
    });
    channels.push(channel);
    let n = 0;
    timers.push(setInterval(() => void channel.publish({ n: n++ }), 10));
    return channel;
  });
  app.get("/lifetime/:run", events, (req, res) => void lifetimeChannel(run(req)).subscribe(res));

  // once-then-drop: one event with id "a", then the connection is destroyed once the client has
  // it; later requests get one event with id "b" and stay open.
  app.get("/flaky/:run", events, (req, res) => {
    const first = logs(run(req)).length === 1;
    res.sse.send({ first }, { id: first ? "a" : "b" });
    if (first) dropOnceRead(req, res.sse);
  });

  // silent: a connection that dies without a word. One event with an id, then nothing at all:
  // heartbeats off, the socket left open, as a half-open TCP connection looks to the client.
  const quiet = sse({ heartbeat: 0 });
  app.get("/silent/:run", quiet, (req, res) => {
    const n = logs(run(req)).length;
    res.sse.send({ n }, { id: `s${n}` });
  });

  // pinged: the same, but Sluice's heartbeat pings the idle stream every 100 ms.
  const pinging = sse({ heartbeat: 100 });
  app.get("/pinged/:run", pinging, (req, res) => {
    res.sse.send({ n: logs(run(req)).length }, { id: "p" });
  });

  // frozen: a Sluice stream (heartbeat 100 ms, so Sluice-Heartbeat: 100) whose path dies after
  // one event: the socket is corked once that event has gone out, so the pings stay in the
  // process and the client hears nothing more, as over a dead link.
  const corked = sse({ heartbeat: 100 });
  app.get("/frozen/:run", corked, (req, res) => {
    const n = logs(run(req)).length;
    res.sse.send({ n }, { id: `f${n}` });
    const socket = res.socket!;
    const freeze = () => socket.cork();
    if (socket.writableLength === 0) freeze();
    else socket.once("drain", freeze);
  });

  // pinged-slow: one event, then Sluice's pings every second (Sluice-Heartbeat: 1000).
  const slowPings = sse({ heartbeat: 1000 });
  app.get("/pinged-slow/:run", slowPings, (req, res) => {
    res.sse.send({ n: logs(run(req)).length }, { id: "p" });
  });

  // hang: headers never come (until the client leaves).
  app.get("/hang/:run", () => undefined);

  // down: always 500.
  app.get("/down/:run", (_req, res) => void res.status(500).send("oops"));

  // chat: the LLM pattern. POST a prompt, get it back word by word, and the stream ends.
  app.post("/chat/:run", events, (req, res) => {
    const { prompt } = JSON.parse(String(req.body)) as { prompt: string };
    void res.sse.pipe(prompt.split(" "), { event: "token", closeOnEnd: true });
  });

  // many: `count` events through pipe (backpressure included), then the end.
  app.get("/many/:run", events, (req, res) => {
    const count = Number(req.query["count"]);
    function* numbers() {
      for (let n = 0; n < count; n++) yield { n };
    }
    void res.sse.pipe(numbers(), { closeOnEnd: true });
  });

  // typed: prices and text tokens, then the end.
  app.get("/typed/:run", events, (_req, res) => {
    res.sse.send({ symbol: "ACME", price: 12.5 }, { event: "price", id: "p1" });
    res.sse.send("42", { event: "token" });
    res.sse.send("hello", { event: "token", id: "t2" });
    res.sse.send("{not json", { event: "token" });
    res.sse.send({ symbol: "ACME", price: 13 }, { event: "price" });
    res.sse.close();
  });

  // Bad input, written by hand: no Sluice server sends these.
  app.get("/json/:run", (_req, res) => void res.json({ data: "not a stream" }));
  app.get("/plain/:run", (_req, res) => {
    res.type("text/plain").send("data: looks like a stream\n\n");
  });
  app.get("/missing/:run", (_req, res) => void res.status(404).type("html").send("<h1>404</h1>"));
  app.get("/badretry/:run", (req, res) => {
    const n = logs(run(req)).length;
    res.writeHead(200, { "content-type": "text/event-stream" });
    if (n === 1) res.write("retry: abc\n\nretry: -5\n\nid: 1\ndata: one\n\n");
    else res.write("retry: 99999999999999999999\n\nid: 2\ndata: two\n\n");
    dropOnceRead(req);
  });

  // The browser page and the bundled client with the shared scenarios.
  app.get("/", (_req, res) => {
    res
      .type("html")
      .send(
        '<!doctype html><meta charset="utf-8"><title>client</title><script src="/client.js"></script>',
      );
  });
  app.get("/client.js", (_req, res) => {
    if (options.script === undefined) return void res.status(404).end();
    res.type("js").send(options.script());
  });

  const used = new WeakSet<Socket>();
  /** Listens on a new port of 127.0.0.1; its sockets are tracked (and closed by close()). */
  const listen = async (): Promise<Server> => {
    const s: Server = await new Promise((resolve) => {
      const started = app.listen(0, "127.0.0.1", () => resolve(started));
    });
    s.on("request", (req: IncomingMessage) => used.add(req.socket));
    s.on("connection", (socket) => {
      const { firstRequestTimeout } = options;
      if (firstRequestTimeout !== undefined) {
        const timer = setTimeout(() => used.has(socket) || socket.destroy(), firstRequestTimeout);
        socket.once("close", () => clearTimeout(timer));
      }
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
    });
    return s;
  };
  const server = await listen();
  const other = await listen();
  otherPort = (other.address() as AddressInfo).port;
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    otherUrl: `http://127.0.0.1:${otherPort}`,
    log: logs,
    drops: dropLog,
    problems,
    openCount: (id) => open(id).size,
    feed: feedChannel,
    close: async () => {
      for (const timer of timers) clearInterval(timer);
      await Promise.all(channels.map((channel) => channel.close()));
      for (const socket of sockets) socket.destroy();
      await Promise.all(
        [server, other].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
      );
    },
  };
}
