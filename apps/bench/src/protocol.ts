/**
 * What the harness, the server worker and the client worker say to each other over IPC: one
 * entry per command, `[argument, result]`.
 */

export const VARIANTS = [
  "raw",
  "raw-socket",
  "express-raw",
  "better-sse",
  "sluice",
  "sse-channel",
  "express-sse",
] as const;
export type VariantName = (typeof VARIANTS)[number];

export function isVariantName(name: unknown): name is VariantName {
  return (VARIANTS as readonly unknown[]).includes(name);
}

/**
 * Server variants that only some scenarios run: `sluice-redis` (a channel on the Redis adapter,
 * the URL in `BENCH_REDIS_URL`) needs a Redis, which only the cross-process scenario starts.
 */
export const SERVER_VARIANTS = [...VARIANTS, "sluice-redis"] as const;
export type ServerVariantName = (typeof SERVER_VARIANTS)[number];

export function isServerVariantName(name: unknown): name is ServerVariantName {
  return (SERVER_VARIANTS as readonly unknown[]).includes(name);
}

/** Where the server worker's variant listens, and what a client gets before any event. */
export interface ServerInfo {
  port: number;
  path: string;
  /** Frames every client receives on connect before the first event (a `retry:`, a comment). */
  preludeFrames: number;
}

export interface PublishResult {
  /** Clock (`performance.timeOrigin + performance.now()`) when the first event was published. */
  startedAt: number;
  /** How long publishing took; for a burst, how long the event loop was blocked by it. */
  publishMs: number;
}

export interface MemorySample {
  heapUsed: number;
  rss: number;
  external: number;
  clients: number;
}

export type ServerCommands = {
  info: [undefined, ServerInfo];
  /** Resolves once the variant has exactly `n` registered clients. */
  waitClients: [{ n: number; timeoutMs: number }, number];
  /** Publishes `events` events, yielding to the event loop (setImmediate) after each. */
  fanout: [{ events: number }, PublishResult];
  /** Publishes `size` events in one synchronous loop (one tick). */
  burst: [{ size: number }, PublishResult];
  /** Publishes `events` events at `hz` per second. */
  rate: [{ events: number; hz: number }, PublishResult];
  /** CPU ms (user + system) the server used since the last publish command started. */
  cpu: [undefined, number];
  /** Heap and RSS after forced full garbage collections. */
  memory: [undefined, MemorySample];
  /** CPU ms (user + system) used while idle for `ms` (timers such as the heartbeat only). */
  idle: [{ ms: number }, number];
};

export interface ConnectArgs {
  port: number;
  path: string;
  n: number;
  preludeFrames: number;
  /** Parse timestamps on every `sampleEvery`-th connection (0: none). */
  sampleEvery: number;
  concurrency: number;
  timeoutMs: number;
}

export interface ConnectResult {
  connected: number;
  failed: number;
  ms: number;
  errors: string[];
}

export interface LatencySummary {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

/** What the client saw between `reset` and the end of `wait`. */
export interface DeliveryReport {
  /** Every open connection got at least the expected number of events. */
  done: boolean;
  /** Why not, when `done` is false. */
  reason: string | undefined;
  clients: number;
  expectedPerClient: number;
  /** Events received, all connections together. */
  received: number;
  /** Connections that got fewer / more events than expected. */
  short: number;
  over: number;
  /** Connections that closed. */
  closed: number;
  /** Clock when the last expected event arrived (0 if it never did). */
  doneAt: number;
  /** CPU ms the client used from the reset until `doneAt` (or the end of the wait). */
  cpuMs: number;
  /** Body bytes received (after HTTP chunk decoding). */
  bytes: number;
  /** Sampled connections whose `seq` did not go up by one (gap, duplicate, reorder). */
  seqErrors: number;
  latency: LatencySummary | undefined;
}

export interface ChurnArgs {
  port: number;
  path: string;
  cycles: number;
  preludeFrames: number;
  concurrency: number;
  timeoutMs: number;
}

export interface ChurnResult {
  completed: number;
  failed: number;
  ms: number;
  errors: string[];
}

export type ClientCommands = {
  connect: [ConnectArgs, ConnectResult];
  /** Starts counting: each connection must now receive `target` events. */
  reset: [{ target: number; latency: boolean }, undefined];
  wait: [{ timeoutMs: number; stallMs: number; graceMs: number }, DeliveryReport];
  churn: [ChurnArgs, ChurnResult];
  /** Destroys every connection; resolves with how many there were. */
  closeAll: [undefined, number];
};

export type CommandMap = Record<string, [unknown, unknown]>;

/** The channel-count sweep's worker (`src/channels-worker.ts`): a reader or a publisher. */
export interface ChannelsOpenArgs {
  url: string;
  channels: number;
  /**
   * Reader: every channel listens and is active (subscribed), all in one tick; publisher: only
   * opened.
   */
  listen: boolean;
}

export interface ChannelsOpened {
  /** Clock (`now()`) just before the first channel was opened. */
  startedAt: number;
  /** How long opening (and activating) every channel took: one synchronous loop. */
  openMs: number;
}

export interface PublishRun {
  /** Events published, and how many of them Redis refused or did not confirm. */
  published: number;
  failed: number;
  /** `seq` of the first and the last event published (every event has its own). */
  firstSeq: number;
  lastSeq: number;
  /** Clock when the first event was published, and when the last confirmation came back. */
  startedAt: number;
  endedAt: number;
  errors: string[];
}

/** What the reader saw between `expect` and the end of `wait`. */
export interface ChannelsReport {
  /** Every expected event arrived. */
  done: boolean;
  reason: string | undefined;
  expected: number;
  /** Events of this round received (each one delivered to its channel's listener). */
  received: number;
  /** Events from before the round, events whose `seq` did not go up on their channel, bad data. */
  stale: number;
  outOfOrder: number;
  malformed: number;
  /** Clock when the last expected event arrived (0 if it never did). */
  doneAt: number;
  /** Reader CPU ms (user + system) from `expect` until the last expected event arrived. */
  cpuMs: number;
  latency: LatencySummary | undefined;
  /** The adapter's counters over the round (`stats()`; `NaN` if it has no such counter). */
  gapReads: number;
  resets: number;
  /** Errors the adapter reported (its 'error' event) during the round, at most 10. */
  errors: string[];
}

/** A sweep worker's garbage-collection pauses since its last `gcStats` with `reset`. */
export interface GcStats {
  pauses: number;
  totalMs: number;
  maxMs: number;
}

export type ChannelsCommands = {
  /** Creates the adapter (waits for `ready()`), then opens `channels` channels. */
  open: [ChannelsOpenArgs, ChannelsOpened];
  /** Reader: count the next `events` events, all with a `seq` above `afterSeq`. */
  expect: [{ events: number; afterSeq: number; latency: boolean }, undefined];
  /** Reader: resolves once every expected event arrived (then `graceMs` more), or stalled. */
  wait: [{ timeoutMs: number; stallMs: number; graceMs: number }, ChannelsReport];
  /** Publisher: one event on every channel, `concurrency` unconfirmed at a time. */
  publishEach: [{ concurrency: number }, PublishRun];
  /** Publisher: `hz` events/s on random channels for `seconds`, what is due every `tickMs`. */
  publishRate: [{ hz: number; seconds: number; tickMs: number }, PublishRun];
  /** The GC pauses since the last call with `reset` (then counts again from zero). */
  gcStats: [{ reset: boolean }, GcStats];
  /** V8 heap used (MiB) before and after full garbage collections (after: what is live). */
  heap: [undefined, { beforeMB: number; afterMB: number }];
};
