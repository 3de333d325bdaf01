/**
 * Key names. Pure: no I/O. Every channel is one Redis stream, `<prefix><channel name>`.
 */

/** The default key prefix: channel "chat" lives in the stream `sluice:chat`. */
export const DEFAULT_PREFIX = "sluice:";

/** Validates the `prefix` option once, in the factory. */
export function resolvePrefix(prefix: unknown): string {
  if (prefix === undefined) return DEFAULT_PREFIX;
  if (typeof prefix !== "string") {
    throw new TypeError(`The "prefix" option must be a string, got ${typeof prefix}`);
  }
  return prefix;
}

/** The stream key that holds channel `name`. */
export function streamKey(prefix: string, name: string): string {
  return prefix + name;
}
