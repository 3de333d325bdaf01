/**
 * The reconnection policy's delays: the backoff after failures in a row, and a server's
 * `Retry-After`. Both are jittered, so that clients dropped together do not all come back
 * together.
 */

/** setTimeout fires at once for anything longer (a 32-bit overflow): never a hot loop. */
export const MAX_DELAY = 2 ** 31 - 1;

/**
 * The delay before the next attempt after `failures` failures in a row: `base` (the server's
 * `retry:`, or the `retry` option) after the first, then doubling from at least 100 ms up to
 * `max` (or `base`, if larger), each scaled by a random 0.75-1.
 */
export function backoff(failures: number, base: number, max: number): number {
  const delay =
    failures < 2 ? base : Math.min(Math.max(max, base), Math.max(base, 100) * 2 ** (failures - 1));
  return delay * (1 - Math.random() / 4);
}

/** `Retry-After` (seconds or an HTTP date) in ms, up to a quarter later; 0 if absent or invalid. */
export function retryAfter(response: Response): number {
  const value = response.headers.get("retry-after") ?? "";
  const ms = /^\d+$/.test(value) ? +value * 1000 : Date.parse(value) - Date.now();
  return ms > 0 ? ms * (1 + Math.random() / 4) : 0; // NaN (absent, unparsable) is not > 0
}
