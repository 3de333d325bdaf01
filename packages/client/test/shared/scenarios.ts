/**
 * The client's scenarios, written once for both environments: jest runs them in Node
 * (test/node.test.ts), and the browser test bundles this file with the client for headless
 * Chromium (test/browser.test.ts). Only web APIs here, nothing from Node. Each scenario drives the
 * client against the fixture server (test/helpers/fixture-server.ts) and returns what the client
 * saw, as JSON; the jest side checks it together with what the server saw.
 */
import type { EventMap, SseClient as Client } from "../../src";

export interface Env {
  SseClient: typeof Client;
  /** The fixture server's origin. */
  base: string;
  /** The run id: the scenario's routes are `/<route>/<run>`. */
  run: string;
  /** Makes the page hidden or visible and fires `visibilitychange`. */
  setHidden(hidden: boolean): void;
  /** Bytes of heap in use right after a full garbage collection (synchronous). */
  heap(): number;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitFor(predicate: () => boolean, what: string, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeout} ms waiting for ${what}`);
    await sleep(2);
  }
}

/**
 * How long a negative check watches. The clients in those scenarios have `retry: 10`, so one that
 * looped would make about 20 requests in this time; a correct one makes none.
 */
const QUIET_MS = 200;

interface ErrorSeen {
  code: string;
  fatal: boolean;
  status: number | null;
  message: string;
  /** readyState when the error event fired. */
  state: number;
}

/** Records a client's `error` events and its `close`. */
function watch<Events extends EventMap>(client: Client<Events>) {
  const errors: ErrorSeen[] = [];
  const seen = { errors, closed: false, closeError: null as string | null };
  client.addEventListener("error", ({ error }) => {
    errors.push({
      code: error.code,
      fatal: error.fatal,
      status: error.status ?? null,
      message: error.message,
      state: client.readyState,
    });
  });
  client.addEventListener("close", ({ error }) => {
    seen.closed = true;
    seen.closeError = error?.code ?? null;
  });
  return seen;
}

type Numbered = { message: { n: number } };

/**
 * Tells the fixture server the client has dispatched an event, for the routes that destroy the
 * connection after it (the server waits for this instead of a timer: see its `acknowledged`).
 */
function ack(base: string, run: string): void {
  void fetch(`${base}/ack/${run}`, { method: "POST" });
}

/** Reads a client until its second connection's event (the first one was dropped), then closes it. */
async function resumedOnce(client: Client<Numbered>) {
  const values: number[] = [];
  client.on("message", (data) => values.push(data.n));
  const seen = watch(client);
  await waitFor(() => values.length >= 2, "the event of the second connection");
  client.close();
  return { values, errors: seen.errors };
}

/** After the client's first event, waits `ms` without events and tells how the client is then. */
async function openAfter(client: Client<Numbered>, ms: number) {
  const seen = watch(client);
  let events = 0;
  client.on("message", () => events++);
  await waitFor(() => events === 1, "the stream's event");
  await sleep(ms);
  const state = client.readyState;
  client.close();
  return { errors: seen.errors, events, state };
}

export const scenarios = {
  /**
   * 1,000 events on a channel whose server drops the connection after every 100th event, once
   * the client has acknowledged it (a drop on the server's own schedule could take a whole
   * connection's events with it in a browser, leaving no id to resume from: see `ack`).
   */
  async resume({ SseClient, base, run }: Env) {
    const client = new SseClient<Numbered>(`${base}/resume/${run}`, { retry: 10 });
    const values: number[] = [];
    const idsAtDrop: string[] = [];
    client.on("message", (data) => {
      values.push(data.n);
      if (data.n % 100 === 99) ack(base, run);
    });
    const seen = watch(client);
    client.addEventListener("error", () => idsAtDrop.push(client.lastEventId));
    await waitFor(() => values.length >= 1000, "1,000 events", 20_000);
    client.close();
    return { values, idsAtDrop, errors: seen.errors.map((e) => e.code) };
  },

  /** The server sends `retry: ms` and drops the connection: when does the client come back? */
  async retry({ SseClient, base, run }: Env, ms: number) {
    const client = new SseClient(`${base}/retry/${run}?ms=${ms}`, { retry: 3000 });
    client.on("message", () => ack(base, run));
    let opens = 0;
    client.addEventListener("open", () => opens++);
    await waitFor(() => opens >= 2, "the reconnect");
    client.close();
    return { opens };
  },

  /** A real Sluice 503 (maxConnections) with Retry-After: 1. */
  async busy({ SseClient, base, run }: Env) {
    const first = new SseClient(`${base}/busy/${run}`);
    let firstHello = false;
    first.on("hello", () => (firstHello = true));
    await waitFor(() => firstHello, "the first stream");
    const second = new SseClient(`${base}/busy/${run}`);
    const seen = watch(second);
    let hello = false;
    second.on("hello", () => (hello = true));
    await waitFor(() => seen.errors.length > 0, "the 503");
    first.close(); // room for the second one, which must still wait for Retry-After
    await waitFor(() => hello, "the second stream", 5000);
    second.close();
    return { errors: seen.errors };
  },

  /** 503 with Retry-After: 0 on every attempt: the backoff still applies. */
  async overloaded({ SseClient, base, run }: Env) {
    const client = new SseClient(`${base}/overloaded/${run}`, { retry: 10 });
    const seen = watch(client);
    await sleep(400);
    client.close();
    return { errors: seen.errors };
  },

  /** 204: stop for good, without an error. */
  async gone({ SseClient, base, run }: Env) {
    const client = new SseClient(`${base}/gone/${run}`, { retry: 10 });
    const seen = watch(client);
    await waitFor(() => seen.closed, "close");
    await sleep(QUIET_MS);
    return { ...seen, state: client.readyState };
  },

  /** 401 after the token expired: the hook refreshes it and the stream resumes. */
  async unauthorized({ SseClient, base, run }: Env) {
    let token = "one";
    const hook: Array<{ status: number; body: unknown }> = [];
    const client = new SseClient<Numbered>(`${base}/private/${run}`, {
      retry: 500,
      headers: () => ({ Authorization: `Bearer ${token}` }),
      onUnauthorized: async (response) => {
        hook.push({ status: response.status, body: await response.json() });
        token = "two";
        return true;
      },
    });
    const values: number[] = [];
    client.on("message", (data) => {
      values.push(data.n);
      if (data.n === 4) ack(base, run); // the server drops the first stream after it
    });
    const seen = watch(client);
    await waitFor(() => values.length >= 10, "10 events");
    client.close();
    return { values, hook, errors: seen.errors };
  },

  /** 403 with a hook that gives up, and 401 without a hook: both fatal, no retry. */
  async forbidden({ SseClient, base, run }: Env) {
    const calls: number[] = [];
    const withHook = new SseClient(`${base}/forbidden/${run}`, {
      retry: 10,
      onUnauthorized: (response) => void calls.push(response.status),
    });
    const noHook = new SseClient(`${base}/private/${run}-nohook`, { retry: 10 });
    const a = watch(withHook);
    const b = watch(noHook);
    await waitFor(() => a.closed && b.closed, "both to close");
    await sleep(QUIET_MS);
    return { calls, withHook: a, noHook: b };
  },

  /** Sluice's `event: reset`, typed, then live events after it. */
  async reset({ SseClient, base, run }: Env) {
    type Events = Numbered;
    const resets: Array<{ reason: string; oldestId: string | null; newestId: string | null }> = [];
    const idsAfterReset: string[] = [];
    const values: number[] = [];
    const client = new SseClient<Events>(`${base}/reset/${run}`, { lastEventId: "stale-1" });
    client.on("reset", (data, event) => {
      const { reason, oldestId, newestId } = data; // ResetData, typed
      resets.push({ reason, oldestId, newestId });
      idsAfterReset.push(event.lastEventId);
    });
    client.on("message", (data) => values.push(data.n));
    await waitFor(() => values.length >= 1, "a live event");
    client.close();
    // From the same channel, an id it has dropped from history: "too-old".
    const epoch = resets[0]!.newestId!.split("-")[0];
    const old = new SseClient<Events>(`${base}/reset/${run}`, { lastEventId: `${epoch}-1` });
    const reasons: string[] = [];
    old.on("reset", (data) => reasons.push(data.reason));
    await waitFor(() => reasons.length >= 1, "the second reset");
    old.close();
    return { resets, idsAfterReset, values, tooOld: reasons[0] };
  },

  /** Abort: mid-stream from a listener, while waiting to reconnect, and before the start. */
  async abort({ SseClient, base, run }: Env) {
    const streaming = new AbortController();
    const client = new SseClient<Numbered>(`${base}/ticks/${run}`, { signal: streaming.signal });
    let received = 0;
    client.on("message", () => {
      if (++received === 3) streaming.abort();
    });
    const a = watch(client);
    await waitFor(() => a.closed, "the abort mid-stream");

    const waiting = new AbortController();
    const retrying = new SseClient(`${base}/down/${run}-waiting`, {
      signal: waiting.signal,
      retry: 10,
    });
    retrying.addEventListener("error", () => waiting.abort(), { once: true });
    const b = watch(retrying);
    await waitFor(() => b.closed, "the abort while waiting");

    const early = new AbortController();
    early.abort();
    const never = new SseClient(`${base}/ticks/${run}-early`, { signal: early.signal });
    const c = watch(never);
    await waitFor(() => c.closed, "the abort before the start");
    await sleep(QUIET_MS);
    return {
      received,
      states: [client.readyState, retrying.readyState, never.readyState],
      streaming: a,
      waiting: b,
      early: c,
    };
  },

  /** The LLM pattern: POST a prompt, read the answer with `for await`, and it ends. */
  async post({ SseClient, base, run }: Env) {
    const client = new SseClient<{ token: string }>(`${base}/chat/${run}`, {
      retry: 10,
      fetch: globalThis.fetch, // a fetch passed in is called as browsers require (unbound)
      body: JSON.stringify({ prompt: "the quick brown fox" }),
      headers: { "Content-Type": "application/json" },
    });
    const tokens: string[] = [];
    for await (const event of client) {
      if (event.type === "token") tokens.push(event.data);
    }
    const state = client.readyState;
    await sleep(QUIET_MS);
    return { tokens, state };
  },

  /**
   * `count` events through `for await`; the heap is measured after 1,000 events and again
   * 10,000 events later.
   */
  async many({ SseClient, base, run, heap }: Env, count: number) {
    const client = new SseClient<Numbered>(`${base}/many/${run}?count=${count}`);
    let expected = 0;
    let inOrder = true;
    const heaps: number[] = [];
    for await (const event of client) {
      if (event.type !== "message" || event.data.n !== expected++) inOrder = false;
      if (expected === 1000 || expected === 11_000) heaps.push(heap());
    }
    return { received: expected, inOrder, heaps };
  },

  /** Data typed and parsed once: default parser, a replaced one, a parser that throws, `off`. */
  async typed({ SseClient, base, run }: Env) {
    type Events = { price: { symbol: string; price: number }; token: string };
    const seenDefault: Array<{ type: string; data: unknown; lastEventId: string }> = [];
    for await (const event of new SseClient<Events>(`${base}/typed/${run}`)) {
      // `event.type` narrows `event.data`.
      const data: unknown = event.type === "price" ? { ...event.data } : event.data;
      seenDefault.push({ type: event.type, data, lastEventId: event.lastEventId });
    }

    let calls = 0;
    const client = new SseClient<Events>(`${base}/typed/${run}-custom`, {
      parse: (data, type) => {
        calls++;
        if (data === "{not json") throw new Error("not what this app sends");
        return type === "token" ? data : JSON.parse(data);
      },
    });
    const prices: number[] = [];
    const tokens: string[] = [];
    const offTokens: string[] = [];
    let openStatus = 0;
    client.addEventListener("open", (event) => (openStatus = event.response.status));
    client.on("price", (data) => prices.push(data.price));
    client.addEventListener("price", (event) => prices.push(event.data.price * 100));
    client.on("token", (data) => tokens.push(data));
    const off = client.on("token", (data) => {
      offTokens.push(data);
      off();
    });
    const seen = watch(client);
    await waitFor(() => seen.closed, "the end of the stream");
    return { seenDefault, calls, prices, tokens, offTokens, openStatus, errors: seen.errors };
  },

  /** Bad input: fatal errors with their codes, and no second request. */
  async bad({ SseClient, base, run }: Env) {
    const watched = ["json", "plain", "missing"].map((route) =>
      watch(new SseClient(`${base}/${route}/${run}`, { retry: 10 })),
    );
    await waitFor(() => watched.every((w) => w.closed), "every client to stop");
    await sleep(QUIET_MS);
    return watched;
  },

  /** Malformed and huge `retry:` fields. */
  async badRetry({ SseClient, base, run }: Env) {
    const client = new SseClient(`${base}/badretry/${run}`, { retry: 40 });
    const data: unknown[] = [];
    client.on("message", (value) => {
      data.push(value);
      ack(base, run);
    });
    const seen = watch(client);
    await waitFor(() => seen.errors.filter((e) => e.code === "network").length >= 2, "two drops");
    await sleep(QUIET_MS);
    const state = client.readyState;
    client.close();
    return { data, errors: seen.errors, state };
  },

  /** A server that ends streams on purpose (Sluice's maxLifetime), with reconnectOnEnd. */
  async lifetime({ SseClient, base, run }: Env) {
    const client = new SseClient<Numbered>(`${base}/lifetime/${run}`, {
      reconnectOnEnd: true,
      retry: 3000,
    });
    const values: number[] = [];
    let opens = 0;
    client.addEventListener("open", () => opens++);
    client.on("message", (data) => values.push(data.n));
    const seen = watch(client);
    await waitFor(() => opens >= 3 && values.length >= 30, "three streams and 30 events");
    client.close();
    return { values, opens, errors: seen.errors };
  },

  /**
   * Network errors against a port where nothing listens: the delays grow from `retry` (100 ms),
   * doubling, up to `maxRetryDelay` (400 ms), each scaled by a random 0.75-1.
   */
  async backoff({ SseClient }: Env, closedOrigin: string) {
    const client = new SseClient(`${closedOrigin}/nothing`, { retry: 100, maxRetryDelay: 400 });
    const at: number[] = [];
    const codes: string[] = [];
    client.addEventListener("error", ({ error }) => {
      at.push(performance.now());
      codes.push(`${error.code}:${error.fatal}`);
    });
    await waitFor(() => at.length >= 6, "six failed attempts", 10_000);
    client.close();
    return { gaps: at.slice(1).map((t, i) => t - at[i]!), codes };
  },

  /**
   * heartbeatTimeout: a stream gone silent is dropped and resumed; one the server's heartbeat
   * pings is kept however long it carries no event; a request whose headers never come is
   * dropped too.
   */
  async silence({ SseClient, base, run }: Env) {
    const silent = new SseClient<Numbered>(`${base}/silent/${run}`, {
      heartbeatTimeout: 300,
      retry: 10,
    });
    const dropped = await resumedOnce(silent);
    const pinged = new SseClient<Numbered>(`${base}/pinged/${run}-pinged`, {
      heartbeatTimeout: 1000, // ten heartbeats: room for a loaded machine's stalls
      retry: 10,
    });
    const kept = await openAfter(pinged, 2000); // two timeouts without an event; ~16 pings
    // Timed here, from before the first request: the server sees the request later than the
    // client sends it (by a few ms on a loaded machine), so its log cannot time the watch.
    const hungFrom = performance.now();
    const hung = new SseClient(`${base}/hang/${run}-hang`, { heartbeatTimeout: 200, retry: 10 });
    const hungSeen = watch(hung);
    let firstTimeoutAfter = 0;
    hung.addEventListener("error", () => (firstTimeoutAfter = performance.now() - hungFrom), {
      once: true,
    });
    await waitFor(() => hungSeen.errors.length >= 2, "two timeouts");
    hung.close();
    return { ...dropped, pinged: kept, hung: hungSeen.errors, firstTimeoutAfter };
  },

  /**
   * No heartbeatTimeout: a Sluice server's Sluice-Heartbeat header sets the watch (twice its
   * interval). A stream whose pings stop reaching the client is dropped and resumed; one whose
   * pings arrive is kept; `heartbeatTimeout: 0` turns the watch off. `origin` is the server's
   * second origin: cross-origin in a browser, where CORS must expose the header.
   */
  async auto({ SseClient, base, run }: Env, origin: string) {
    const frozen = new SseClient<Numbered>(`${origin}/frozen/${run}`, { retry: 10 });
    const dropped = await resumedOnce(frozen);
    const off = new SseClient<Numbered>(`${origin}/frozen/${run}-off`, {
      heartbeatTimeout: 0,
      retry: 10,
    });
    const unwatched = await openAfter(off, 600); // three times the 200 ms the header would set
    const pinged = new SseClient<Numbered>(`${base}/pinged-slow/${run}-pinged`, { retry: 10 });
    // 1.5 times the 2 s watch the header set: kept alive by three pings.
    const kept = await openAfter(pinged, 3000);
    return { ...dropped, off: unwatched, pinged: kept };
  },

  /** pauseWhenHidden: closed while hidden (no reconnects either), resumed when visible. */
  async hidden({ SseClient, base, run, setHidden }: Env) {
    setHidden(false);
    const client = new SseClient<Numbered>(`${base}/feed/${run}`, {
      pauseWhenHidden: true,
      retry: 10,
    });
    const values: number[] = [];
    client.on("message", (data) => values.push(data.n));
    await waitFor(() => values.length >= 2, "two events");
    setHidden(true);
    const idWhenHidden = client.lastEventId;
    const stateWhenHidden = client.readyState;
    const countWhenHidden = values.length;
    await sleep(QUIET_MS);
    const receivedWhileHidden = values.length - countWhenHidden;
    setHidden(false);
    await waitFor(() => values.length >= countWhenHidden + 3, "events after the resume");
    client.close();

    // Hidden while a reconnect is pending: it waits for the page to be visible.
    const flaky = new SseClient(`${base}/flaky/${run}-pending`, {
      pauseWhenHidden: true,
      retry: 100,
    });
    flaky.on("message", () => ack(base, `${run}-pending`));
    flaky.addEventListener("error", () => setHidden(true), { once: true });
    const opens: number[] = [];
    flaky.addEventListener("open", () => opens.push(Date.now()));
    await waitFor(() => opens.length === 1, "the first stream");
    await sleep(QUIET_MS + 100); // past the 100 ms retry: still hidden, so no request
    const opensWhileHidden = opens.length;
    setHidden(false);
    await waitFor(() => opens.length === 2, "the reconnect once visible");
    flaky.close();
    return {
      values,
      idWhenHidden,
      stateWhenHidden,
      receivedWhileHidden,
      opensWhileHidden,
    };
  },
};

export type ScenarioName = keyof typeof scenarios;
