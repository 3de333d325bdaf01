/** Reconnection delays: exponential, bounded, jittered. Pure. */

export interface BackoffOptions {
  /** Delay before the first retry, in ms (the ceiling of it: jitter takes 0-50% off). */
  readonly minDelay: number;
  /** Largest delay between two attempts, in ms. */
  readonly maxDelay: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = Object.freeze({ minDelay: 50, maxDelay: 2000 });

/**
 * The delay before retry number `attempt` (0-based): `min(maxDelay, minDelay * 2^attempt)`, less a
 * random 0-50% ("equal jitter"), so that many processes that lost Redis at the same moment do
 * not all reconnect at the same moment.
 */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const ceiling = Math.min(options.maxDelay, options.minDelay * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}
