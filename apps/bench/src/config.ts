/** How big each scenario is: the full benchmark (~15 min on 2 cores) and the --quick smoke run. */

export interface FanoutSize {
  clients: number;
  events: number;
  /** Events published (and checked) before measuring, to warm up the JIT and the sockets. */
  warmup: number;
}

export interface Config {
  mode: "full" | "quick";
  runs: number;
  /** Connections the client opens at a time. */
  connectConcurrency: number;
  fanout: FanoutSize[];
  burst: { clients: number; size: number; bursts: number };
  memory: { clients: number; warmup: number };
  latency: {
    clients: number;
    hz: number;
    seconds: number;
    warmupSeconds: number;
    /** Read timestamps on every n-th connection. */
    sampleEvery: number;
  };
  churn: { cycles: number; concurrency: number; warmup: number };
  /** `clients` on each of `processes` server processes sharing one channel through Redis. */
  crossProcess: {
    processes: number;
    clients: number;
    events: number;
    warmup: number;
    sampleEvery: number;
    /** Then a paced run, as in the latency scenario: `hz` events/s for `seconds`. */
    hz: number;
    seconds: number;
  };
  /**
   * Channel-count sweep: one reader process with `channels[i]` open channels on one Redis
   * adapter, another process publishing `hz` events/s to random ones among them for `seconds`.
   */
  /** As many idle streams as one process may hold here, every variant side by side. */
  scaleOne: { clients: number; warmup: number; idleSeconds: number; broadcasts: number };
  /** `clients` streams over `workers` cluster workers on Redis, from `clientProcesses` clients. */
  scaleCluster: {
    clients: number;
    workers: number;
    clientProcesses: number;
    idleSeconds: number;
    broadcasts: number;
  };
  redisChannels: {
    channels: number[];
    hz: number;
    seconds: number;
    /** At the same rate, after one warm-up event per channel and before measuring. */
    warmupSeconds: number;
    /** The publisher publishes what is due every `tickMs` (2,000/s: 10 events every 5 ms). */
    tickMs: number;
    /** Warm-up publishes (one per channel) in flight at a time. */
    concurrency: number;
  };
}

export const FULL: Config = {
  mode: "full",
  runs: 3,
  connectConcurrency: 200,
  fanout: [
    { clients: 1_000, events: 2_000, warmup: 100 },
    { clients: 10_000, events: 200, warmup: 10 },
  ],
  burst: { clients: 1_000, size: 100, bursts: 10 },
  memory: { clients: 10_000, warmup: 100 },
  latency: { clients: 1_000, hz: 50, seconds: 10, warmupSeconds: 0.5, sampleEvery: 10 },
  churn: { cycles: 20_000, concurrency: 50, warmup: 500 },
  crossProcess: {
    processes: 2,
    clients: 1_000,
    events: 1_000,
    warmup: 50,
    sampleEvery: 10,
    hz: 50,
    seconds: 5,
  },
  scaleOne: { clients: 19_000, warmup: 100, idleSeconds: 20, broadcasts: 5 },
  scaleCluster: {
    clients: 100_000,
    workers: 6,
    clientProcesses: 6,
    idleSeconds: 20,
    broadcasts: 5,
  },
  redisChannels: {
    channels: [10, 1_000, 10_000, 100_000],
    hz: 2_000,
    seconds: 5,
    warmupSeconds: 1,
    tickMs: 5,
    concurrency: 500,
  },
};

export const QUICK: Config = {
  mode: "quick",
  runs: 1,
  connectConcurrency: 200,
  fanout: [
    { clients: 200, events: 300, warmup: 30 },
    { clients: 1_000, events: 30, warmup: 5 },
  ],
  burst: { clients: 200, size: 100, bursts: 5 },
  memory: { clients: 1_000, warmup: 50 },
  latency: { clients: 200, hz: 50, seconds: 1, warmupSeconds: 0.2, sampleEvery: 10 },
  churn: { cycles: 1_000, concurrency: 50, warmup: 100 },
  crossProcess: {
    processes: 2,
    clients: 200,
    events: 200,
    warmup: 20,
    sampleEvery: 10,
    hz: 50,
    seconds: 1,
  },
  scaleOne: { clients: 2_000, warmup: 50, idleSeconds: 2, broadcasts: 3 },
  scaleCluster: { clients: 6_000, workers: 3, clientProcesses: 2, idleSeconds: 2, broadcasts: 3 },
  redisChannels: {
    channels: [10, 1_000, 10_000],
    hz: 2_000,
    seconds: 1,
    warmupSeconds: 0.2,
    tickMs: 5,
    concurrency: 500,
  },
};
