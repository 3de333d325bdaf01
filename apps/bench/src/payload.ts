/**
 * The event every variant publishes: ~100 bytes of JSON carrying the publish time (the server's
 * clock) and a sequence number. Every variant is handed the same object and serializes it the
 * way its library does (JSON.stringify in all of them), so serialization is part of the cost.
 */

export interface Payload {
  /** `now()` when the event was published. */
  t: number;
  /** 1, 2, 3… per server process. */
  seq: number;
  msg: string;
}

const MSG = "x".repeat(56);

/**
 * Milliseconds on one clock shared by every process of the machine, with sub-millisecond
 * resolution: each process's `timeOrigin` is taken from the wall clock when it starts.
 */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

export function makePayload(seq: number): Payload {
  return { t: now(), seq, msg: MSG };
}
