/**
 * The client's suite against a real Sluice server, defined once and run twice: in Node
 * (test/node.test.ts) and in headless Chromium (test/browser.test.ts). A runner executes a
 * scenario (test/shared/scenarios.ts) where the client lives; the checks here combine what the
 * client saw with what the server saw.
 */
import type { ScenarioName, scenarios } from "../shared/scenarios";
import type { FixtureServer } from "./fixture-server";

export type ScenarioResult<N extends ScenarioName> = Awaited<ReturnType<(typeof scenarios)[N]>>;

export interface Runner {
  run<N extends ScenarioName>(name: N, run: string, arg?: unknown): Promise<ScenarioResult<N>>;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** `true` when every value is the previous one plus one. */
const consecutive = (values: number[]) =>
  values.every((v, i) => i === 0 || v === values[i - 1]! + 1);

export function defineClientSuite(
  environment: string,
  context: () => { runner: Runner; server: FixtureServer; closedPort: number },
): void {
  /** An origin where nothing listens: connections are refused. */
  const closedOrigin = () => `http://127.0.0.1:${context().closedPort}`;
  let next = 0;
  const runId = (name: string) => `${environment.toLowerCase()}-${name}-${++next}`;
  const start = async <N extends ScenarioName>(name: N, arg?: unknown) => {
    const { runner, server } = context();
    const run = runId(name);
    const result = await runner.run(name, run, arg);
    return { result, server, run, log: server.log(run) };
  };

  describe(`${environment}: against a real Sluice server`, () => {
    test("resumes across forced disconnects: 1,000 events, each once and in order, with the latest Last-Event-ID on every reconnect", async () => {
      const { result, server, run, log } = await start("resume");
      expect(server.problems(run)).toEqual([]);
      expect(result.values).toEqual(range(1000));
      expect(server.drops(run)).toHaveLength(9);
      expect(result.errors).toEqual(Array(9).fill("network"));
      // Every reconnect carried the client's latest id at the time of the drop: the id of the
      // 100th, 200th, ... event, the last each connection delivered before it was destroyed.
      expect(log).toHaveLength(10);
      expect(log[0]!.lastEventId).toBeNull();
      expect(log.slice(1).map((r) => r.lastEventId)).toEqual(result.idsAtDrop);
      const seqs = result.idsAtDrop.map((id) => Number(id.split("-")[1]));
      expect(seqs).toEqual([100, 200, 300, 400, 500, 600, 700, 800, 900]);
    }, 30_000);

    test("honours the server's retry: field for the reconnection delay", async () => {
      const short = await start("retry", 50);
      const long = await start("retry", 600);
      const gap = (s: typeof short) => s.log[1]!.at - s.server.drops(s.run)[0]!;
      // The client's own retry is 3000 ms (at least 2250 with the jitter): a gap under 2000 ms
      // can only come from the server's retry: 50 (the margin is for a loaded machine).
      expect(gap(short)).toBeLessThan(2000);
      // At least 600 ms scaled by the jitter (0.75 to 1): retry: 600 was used, not 50 or 3000.
      expect(gap(long)).toBeGreaterThanOrEqual(445);
      expect(gap(long)).toBeLessThan(2000);
      expect(long.log[1]!.lastEventId).toMatch(/^\d+$/); // and it resumed
    });

    test("network errors back off: from retry, doubling, capped at maxRetryDelay, with jitter", async () => {
      const { runner } = context();
      const result = await runner.run("backoff", runId("backoff"), closedOrigin());
      expect(result.codes).toEqual(Array(6).fill("network:false"));
      const nominal = [100, 200, 400, 400, 400];
      // Each delay is its nominal value scaled by 0.75-1, plus the few ms a refused connection
      // takes (150 ms of margin for a loaded machine: doubling past the cap would take 600).
      result.gaps.forEach((gap, i) => {
        expect(gap).toBeGreaterThanOrEqual(nominal[i]! * 0.75 - 1);
        expect(gap).toBeLessThan(nominal[i]! + 150);
      });
      // The scale is random: not every delay at its nominal value.
      expect(result.gaps.some((gap, i) => gap / nominal[i]! < 0.97)).toBe(true);
    });

    test("a clean end reconnects only when asked: reconnectOnEnd against Sluice's maxLifetime", async () => {
      const { result, log } = await start("lifetime");
      expect(result.opens).toBeGreaterThanOrEqual(3);
      expect(result.errors).toEqual([]); // a clean end is not an error
      expect(consecutive(result.values)).toBe(true); // resumed: nothing lost, nothing twice
      expect(log[0]!.lastEventId).toBeNull();
      for (const record of log.slice(1)) expect(record.lastEventId).toMatch(/^[0-9a-f]+-\d+$/);
      // The server's `retry: 20` before each end set the delay, not the client's 3000 ms.
      for (let i = 1; i < log.length; i++) {
        expect(log[i]!.at - log[i - 1]!.closedAt!).toBeLessThan(1500);
      }
    });

    test("503 from maxConnections: waits for Retry-After, then connects", async () => {
      const { result, log } = await start("busy");
      expect(result.errors).toEqual([
        { code: "http", fatal: false, status: 503, message: "HTTP 503", state: 0 },
      ]);
      expect(log.map((r) => r.status)).toEqual([200, 503, 200]);
      // Retry-After: 1 (the server's retry of 1000 ms, rounded up to seconds).
      expect(log[2]!.at - log[1]!.at).toBeGreaterThanOrEqual(1000);
    });

    test("503 with Retry-After: 0 on every attempt backs off instead of looping", async () => {
      const { result, log } = await start("overloaded");
      // The backoff from retry: 10 is 10, 200 (the 100 ms floor, doubled), 400 ms, each scaled
      // by 0.75-1: at most 4 requests in 400 ms; a client that took Retry-After: 0 at its word
      // would have made hundreds.
      expect(log.length).toBeGreaterThanOrEqual(2);
      expect(log.length).toBeLessThanOrEqual(4);
      expect(result.errors.every((e) => e.code === "http" && e.status === 503 && !e.fatal)).toBe(
        true,
      );
      expect(result.errors.length).toBe(log.length);
    });

    test("204 stops for good: close without an error, no second request", async () => {
      const { result, log } = await start("gone");
      expect(result).toEqual({ errors: [], closed: true, closeError: null, state: 2 });
      expect(log).toHaveLength(1);
    });

    test("401 with an expired token: the hook refreshes it and the stream resumes with Last-Event-ID", async () => {
      const { result, log } = await start("unauthorized");
      expect(result.values).toEqual(range(10));
      expect(result.hook).toEqual([
        { status: 401, body: { error: "the stream token has expired" } },
      ]);
      expect(log.map((r) => [r.status, r.authorization])).toEqual([
        [200, "Bearer one"],
        [401, "Bearer one"],
        [200, "Bearer two"],
      ]);
      expect(log[1]!.lastEventId).not.toBeNull();
      expect(log[2]!.lastEventId).toBe(log[1]!.lastEventId);
      // The retry after a successful refresh is immediate; backing off would have taken at least
      // 750 ms (the client's retry of 500 ms, doubled for a second failure, scaled by 0.75).
      expect(log[2]!.at - log[1]!.at).toBeLessThan(600);
      expect(result.errors.map((e) => [e.code, e.status, e.fatal])).toEqual([
        ["network", null, false],
        ["http", 401, false],
      ]);
    });

    test("403 with a hook that gives up, and 401 without a hook: fatal, no retry", async () => {
      const { result, server, run, log } = await start("forbidden");
      expect(result.calls).toEqual([403]);
      for (const [seen, status] of [
        [result.withHook, 403],
        [result.noHook, 401],
      ] as const) {
        expect(seen.closed).toBe(true);
        expect(seen.closeError).toBe("http");
        expect(seen.errors).toEqual([
          { code: "http", fatal: true, status, message: `HTTP ${status}`, state: 2 },
        ]);
      }
      expect(log).toHaveLength(1);
      expect(server.log(`${run}-nohook`)).toHaveLength(1);
    });

    test("a Sluice reset reaches the app as a typed event, and the client resumes after it", async () => {
      const { result } = await start("reset");
      expect(result.resets).toHaveLength(1);
      const [reset] = result.resets;
      expect(reset!.reason).toBe("unknown");
      expect(reset!.oldestId).toMatch(/-16$/);
      expect(reset!.newestId).toMatch(/-20$/);
      expect(result.idsAfterReset).toEqual([reset!.newestId]);
      expect(result.values).toEqual([20]);
      expect(result.tooOld).toBe("too-old");
    });

    test("abort: mid-stream, while waiting to reconnect, and before the start", async () => {
      const { result, server, run, log } = await start("abort");
      expect(result.received).toBe(3); // nothing after the abort, not even from the same chunk
      expect(result.states).toEqual([2, 2, 2]);
      for (const seen of [result.streaming, result.waiting, result.early]) {
        expect(seen.closed).toBe(true);
        expect(seen.closeError).toBeNull();
      }
      expect(result.waiting.errors.map((e) => [e.code, e.status, e.fatal])).toEqual([
        ["http", 500, false],
      ]);
      expect(log).toHaveLength(1);
      expect(server.log(`${run}-waiting`)).toHaveLength(1);
      expect(server.log(`${run}-early`)).toHaveLength(0);
      // The server saw the aborted stream go.
      await waitUntil(() => server.openCount(run) === 0, "the server to see the stream close");
    });

    test("a body over POST: the answer streams back through for await, which ends with the stream; nothing is sent again", async () => {
      const { result, log } = await start("post");
      expect(result.tokens).toEqual(["the", "quick", "brown", "fox"]);
      expect(result.state).toBe(2);
      expect(log).toHaveLength(1);
      expect(log[0]).toMatchObject({
        method: "POST",
        contentType: "application/json",
        body: JSON.stringify({ prompt: "the quick brown fox" }),
      });
    });

    test("data is typed and parsed once: default JSON-or-text, a replaced parser, a parser that throws, off()", async () => {
      const { result } = await start("typed");
      expect(result.seenDefault).toEqual([
        { type: "price", data: { symbol: "ACME", price: 12.5 }, lastEventId: "p1" },
        { type: "token", data: 42, lastEventId: "p1" }, // "42" is JSON: see the README
        { type: "token", data: "hello", lastEventId: "t2" },
        { type: "token", data: "{not json", lastEventId: "t2" },
        { type: "price", data: { symbol: "ACME", price: 13 }, lastEventId: "t2" },
      ]);
      expect(result.calls).toBe(5); // once per event, whatever the number of listeners
      expect(result.prices).toEqual([12.5, 1250, 13, 1300]);
      expect(result.tokens).toEqual(["42", "hello"]);
      expect(result.offTokens).toEqual(["42"]);
      expect(result.openStatus).toBe(200);
      expect(result.errors.map((e) => [e.code, e.fatal])).toEqual([["parse", false]]);
      expect(result.errors[0]!.message).toContain('"token" event');
    });

    test("bad input ends in a typed, fatal error, never in a reconnect loop", async () => {
      const { result, server, run } = await start("bad");
      const [json, plain, missing] = result;
      expect(json!.errors).toEqual([
        {
          code: "content-type",
          fatal: true,
          status: 200,
          message: "Expected text/event-stream, got application/json; charset=utf-8",
          state: 2,
        },
      ]);
      expect(plain!.errors.map((e) => [e.code, e.status])).toEqual([["content-type", 200]]);
      expect(missing!.errors.map((e) => [e.code, e.status, e.fatal])).toEqual([
        ["http", 404, true],
      ]);
      for (const seen of result) expect(seen.closed).toBe(true);
      expect(server.log(run)).toHaveLength(3); // one request per route, none repeated
    });

    test("a malformed retry: is a typed error and ignored; a huge one is capped, not a hot loop", async () => {
      const { result, server, run, log } = await start("badRetry");
      expect(result.data).toEqual(["one", "two"]);
      expect(result.errors.map((e) => [e.code, e.fatal])).toEqual([
        ["invalid-retry", false],
        ["invalid-retry", false],
        ["network", false],
        ["network", false],
      ]);
      expect(result.errors[0]!.message).toBe("Ignored retry: abc: not a number of ms");
      expect(result.errors[1]!.message).toBe("Ignored retry: -5: not a number of ms");
      // The client's own 40 ms (scaled by 0.75-1) stayed in force after the malformed fields...
      expect(log[1]!.at - server.drops(run)[0]!).toBeGreaterThanOrEqual(29);
      // ...and 99999999999999999999 ms is clamped to about 24.8 days, not an instant retry.
      expect(log).toHaveLength(2);
      expect(result.state).toBe(0);
    });

    test("pauseWhenHidden: closed while the page is hidden, no retries then, resumed with Last-Event-ID when visible", async () => {
      const { result, server, run, log } = await start("hidden");
      expect(result.stateWhenHidden).toBe(0);
      expect(result.receivedWhileHidden).toBe(0);
      expect(consecutive(result.values)).toBe(true); // nothing lost across the pause
      expect(log).toHaveLength(2);
      expect(log[0]!.closedAt).toBeLessThanOrEqual(log[1]!.at);
      expect(log[1]!.at - log[0]!.closedAt!).toBeGreaterThanOrEqual(150); // paused, not retried
      expect(log[1]!.lastEventId).toBe(result.idWhenHidden);
      expect(result.opensWhileHidden).toBe(1);
      const pending = server.log(`${run}-pending`);
      expect(pending.map((r) => r.lastEventId)).toEqual([null, "a"]);
    });

    test("heartbeatTimeout: a silent connection is dropped and resumed; heartbeats keep an idle one; a hung request is dropped", async () => {
      const { result, server, run, log } = await start("silence");
      // Dropped once it had been silent for 300 ms, then resumed from the last id.
      expect(result.values).toEqual([1, 2]);
      expect(result.errors.map((e) => [e.code, e.fatal, e.state])).toEqual([["timeout", false, 0]]);
      expect(result.errors[0]!.message).toMatch(/^Silent for \d+ ms$/);
      expect(log.map((r) => r.lastEventId)).toEqual([null, "s1"]);
      // The client closed the first connection, not before 300 ms after its one event (the
      // margin is for a loaded machine).
      expect(log[0]!.closedAt).toBeDefined();
      const silentFor = log[0]!.closedAt! - log[0]!.at;
      expect(silentFor).toBeGreaterThanOrEqual(295);
      expect(silentFor).toBeLessThan(2000);
      // Pings count: one connection, no error, still open after two timeouts without an event.
      expect(result.pinged).toEqual({ errors: [], events: 1, state: 1 });
      expect(server.log(`${run}-pinged`)).toHaveLength(1);
      // Headers that never come: each attempt dropped after 200 ms, retried, never fatal.
      expect(result.hung.every((e) => e.code === "timeout" && !e.fatal)).toBe(true);
      const hung = server.log(`${run}-hang`);
      expect(hung.length).toBeGreaterThanOrEqual(2);
      expect(hung[0]!.closedAt).toBeDefined(); // the client left the first request
      // Not before its 200 ms (a browser's performance.now() is coarsened: a few ms of margin).
      expect(result.firstTimeoutAfter).toBeGreaterThanOrEqual(195);
    });

    test("without heartbeatTimeout, a Sluice server's Sluice-Heartbeat sets the watch (cross-origin too): a stream whose pings stop is dropped and resumed, a pinged one kept; 0 turns it off", async () => {
      const { result, server, run, log } = await start("auto", context().server.otherUrl);
      expect(result.values).toEqual([1, 2]);
      expect(result.errors.map((e) => [e.code, e.fatal])).toEqual([["timeout", false]]);
      expect(log.map((r) => r.lastEventId)).toEqual([null, "f1"]);
      // Twice the header's 100 ms after the event; the margin is for a loaded machine.
      const silentFor = log[0]!.closedAt! - log[0]!.at;
      expect(silentFor).toBeGreaterThanOrEqual(195);
      expect(silentFor).toBeLessThan(2000);
      expect(result.off).toEqual({ errors: [], events: 1, state: 1 });
      expect(server.log(`${run}-off`)).toHaveLength(1);
      expect(result.pinged).toEqual({ errors: [], events: 1, state: 1 });
      expect(server.log(`${run}-pinged`)).toHaveLength(1);
    });

    test("10,000 events through for await, in order, without growth in heap", async () => {
      const { result } = await start("many", 12_000);
      expect(result.received).toBe(12_000);
      expect(result.inOrder).toBe(true);
      expect(result.heaps).toHaveLength(2);
      const growth = result.heaps[1]! - result.heaps[0]!;
      process.stdout.write(
        `${environment}: heap after 1,000 events ${result.heaps[0]} B, after 11,000 ${result.heaps[1]} B (growth ${growth} B)\n`,
      );
      // Keeping the 10,000 events would add about 2 MB (measured by keeping them on purpose), and
      // anything kept per event over 50 bytes would pass the bound; the noise is about 300 KB.
      expect(growth).toBeLessThan(512 * 1024);
    }, 30_000);
  });
}

async function waitUntil(predicate: () => boolean, what: string, timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
