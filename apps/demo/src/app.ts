import path from "node:path";
import express, { type Express, type NextFunction, type Request, type Response } from "express";
import type { Adapter, ChannelStats, SseOptions } from "@sluice/express-sse";
import type { Registry } from "prom-client";
import { mountLogin } from "./auth/login";
import { checkSecret, randomSecret } from "./auth/token";
import { mountChat, type ChatFeed } from "./feeds/chat";
import { mountClientCount, type ClientCountFeed } from "./feeds/client-count";
import { mountClock } from "./feeds/clock";
import { mountDemo } from "./feeds/demo";
import { logChannelError, type Feed, type FeedContext, type StreamName } from "./feeds/feed";
import { mountMetrics } from "./feeds/metrics";
import { mountPrivate, type PrivateFeed } from "./feeds/private";
import { mountProgress, type ProgressFeed } from "./feeds/progress";
import { mountTicker, type TickerFeed } from "./feeds/ticker";
import { mountUpdates, type UpdatesFeed } from "./feeds/updates";

/** Knobs for tests (to run in milliseconds what takes seconds in the demo); defaults are production's. */
export interface DemoOptions {
  /**
   * Every channel's errors (a presence push or a filter that failed; a failed publish is the
   * route's, answered 503). @defaultValue `console.error("channel:", error.message)`
   */
  onChannelError?: (error: Error) => void;
  /** Milliseconds between `time` events. @defaultValue 1000 */
  tickMs?: number;
  /** Milliseconds between ticker prices. @defaultValue 100 (ten a second) */
  tickerIntervalMs?: number;
  /** Each `dataUpdate` comes a random [min, max) ms after the previous one. @defaultValue [5000, 20000] */
  updateIntervalMs?: readonly [min: number, max: number];
  /** Milliseconds between two steps of a progress job. @defaultValue 250 */
  progressStepMs?: number;
  /** Percent per progress step. @defaultValue 5 */
  progressStep?: number;
  /** Heartbeat interval of every stream (ms; 0 turns it off). @defaultValue 15000 */
  heartbeatMs?: number;
  /** `retry:` sent to every stream (ms). @defaultValue 3000 */
  retryMs?: number;
  /**
   * Where the chat and updates channels keep their events. Default: in memory (one process).
   * `src/main.ts` passes a Redis adapter when `REDIS_URL` is set, so replicas share them.
   */
  adapter?: Adapter;
  /**
   * Signs session cookies and stream tokens (HMAC-SHA256), at least 32 characters. Every replica
   * behind one load balancer needs the same one. `src/main.ts` passes `STREAM_SECRET`.
   * @defaultValue a random secret for this app only
   */
  streamSecret?: string;
  /** Lifetime of a stream token (of `/api/me/events`), ms. @defaultValue 60000 */
  streamTokenTtlMs?: number;
  /** Lifetime of the session cookie, ms. @defaultValue 28800000 (8 h) */
  sessionTtlMs?: number;
  /**
   * A user's channel with no subscriber and no publish for this long is closed (ms).
   * @defaultValue 600000 (10 min)
   */
  userChannelIdleMs?: number;
  /** Per-user channels open at most (the least recently used idle one makes room). @defaultValue 1000 */
  maxUserChannels?: number;
  /**
   * A private stream is closed after this long (×0.8–1.0) and reconnects, so it re-authenticates
   * (a whole number of ms: it is the channels' `maxLifetime`). @defaultValue 900000 (15 min)
   */
  privateStreamLifetimeMs?: number;
}

/** Every feed, for tests and for the metrics. */
export interface DemoFeeds {
  time: Feed;
  clientCount: ClientCountFeed;
  sse: Feed;
  chat: ChatFeed;
  updates: UpdatesFeed;
  ticker: TickerFeed;
  progress: ProgressFeed;
  private: PrivateFeed;
}

/** The Express app, plus what it owns besides routes. */
export interface DemoApp extends Express {
  readonly feeds: DemoFeeds;
  /** The app's own Prometheus registry (served at `/metrics`). */
  readonly registry: Registry;
  /**
   * Releases everything the app started: the updates publisher and the ticker timers, the
   * channels, and every open event stream (their per-client timers go with them). Later requests
   * to the streams get 503. Safe to call twice. Call it after `shutdown(server)` (or in a test's
   * `afterEach`); it does not close the HTTP server, which the app does not own.
   */
  close(): Promise<void>;
}

/**
 * The demo app, without `listen()`, so tests can import it. Each stream has its own `sse()`
 * instance, so `/metrics` reports every counter per stream.
 */
export function createApp(options: DemoOptions = {}): DemoApp {
  const {
    tickMs = 1000,
    tickerIntervalMs = 100,
    updateIntervalMs = [5_000, 20_000],
    progressStepMs = 250,
    progressStep = 5,
    heartbeatMs = 15_000,
    retryMs = 3_000,
    adapter,
    streamSecret = randomSecret(),
    streamTokenTtlMs = 60_000,
    sessionTtlMs = 8 * 60 * 60_000,
    userChannelIdleMs = 10 * 60_000,
    maxUserChannels = 1000,
    privateStreamLifetimeMs = 15 * 60_000,
    onChannelError = logChannelError,
  } = options;
  positive("tickMs", tickMs);
  positive("tickerIntervalMs", tickerIntervalMs);
  positive("progressStepMs", progressStepMs);
  positive("progressStep", progressStep);
  const [updateMin, updateMax] = updateIntervalMs;
  positive("updateIntervalMs[0]", updateMin);
  positive("updateIntervalMs[1]", updateMax);
  if (updateMax < updateMin) {
    throw new RangeError(`"updateIntervalMs" must be [min, max] with min <= max`);
  }
  const secret = checkSecret(streamSecret);
  positive("streamTokenTtlMs", streamTokenTtlMs);
  positive("sessionTtlMs", sessionTtlMs);
  positive("userChannelIdleMs", userChannelIdleMs);
  positiveInteger("privateStreamLifetimeMs", privateStreamLifetimeMs);
  positiveInteger("maxUserChannels", maxUserChannels);
  const sse: SseOptions = { heartbeat: heartbeatMs, retry: retryMs };

  const app = express();
  app.disable("x-powered-by");

  let closed = false;
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (closed && (req.path === "/sse" || req.path.startsWith("/api/"))) {
      res.status(503).set("Retry-After", "5").json({ error: "the server is shutting down" });
      return;
    }
    next();
  });

  app.get("/healthz", (_req, res) => {
    res.set("Cache-Control", "no-store").json({ ok: true });
  });

  mountLogin(app, { secret, tokenTtlMs: streamTokenTtlMs, sessionTtlMs });
  // What every feed shares: the streams' options, where channels keep events, where their errors go.
  const shared: FeedContext = { sse, adapter, onChannelError };
  const feeds: DemoFeeds = {
    time: mountClock(app, { ...shared, tickMs }),
    clientCount: mountClientCount(app, shared),
    sse: mountDemo(app, shared),
    chat: mountChat(app, shared),
    updates: mountUpdates(app, { ...shared, intervalMs: [updateMin, updateMax] }),
    ticker: mountTicker(app, { ...shared, intervalMs: tickerIntervalMs }),
    progress: mountProgress(app, { ...shared, stepMs: progressStepMs, step: progressStep }),
    private: mountPrivate(app, {
      ...shared,
      secret,
      idleMs: userChannelIdleMs,
      maxChannels: maxUserChannels,
      lifetimeMs: privateStreamLifetimeMs,
    }),
  };
  const all = Object.values(feeds);
  const registry = mountMetrics(app, {
    streams: new Map(all.map((feed): [StreamName, Feed["events"]] => [feed.stream, feed.events])),
    channels: new Map<string, { stats(): ChannelStats }>([
      ["chat", feeds.chat.channel],
      ["updates", feeds.updates.channel],
      // Every per-user channel summed: one series, whatever the number of users.
      ["private", feeds.private.channels],
    ]),
  });

  app.use(express.static(path.join(__dirname, "..", "public")));

  // Errors after the stream routes (which never reach here): JSON, and no stack trace.
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const status = (err as { status?: unknown }).status;
    const code = typeof status === "number" && status >= 400 && status < 600 ? status : 500;
    res.status(code).json({ error: code < 500 ? "bad request" : "internal error" });
  });

  let closing: Promise<void> | undefined;
  return Object.assign(app, {
    feeds,
    registry,
    close(): Promise<void> {
      closed = true;
      closing ??= Promise.all(all.map((feed) => feed.close())).then(() => undefined);
      return closing;
    },
  });
}

/** Checked here, not when the first user's channel is opened in the middle of a request. */
function positiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`"${name}" must be a positive integer, got ${String(value)}`);
  }
}

function positive(name: string, value: number): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(
      `"${name}" must be a positive number of milliseconds, got ${String(value)}`,
    );
  }
}
