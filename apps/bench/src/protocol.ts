/**
 * What the harness, the server worker and the client worker say to each other over IPC: one
 * entry per command, `[argument, result]`.
 */

export const VARIANTS = [
  "raw",
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
