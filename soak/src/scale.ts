/**
 * How big a soak run is. `pnpm test:soak` runs the full setting (the numbers, minutes);
 * `pnpm test` runs the same cases at SOAK_SCALE=short (seconds each), so CI proves the cases
 * still hold without paying for the full load on every run.
 */
export type Scale = "full" | "short";

function readScale(): Scale {
  const value = process.env["SOAK_SCALE"] ?? "full";
  if (value !== "full" && value !== "short") {
    throw new Error(`SOAK_SCALE must be "full" or "short", got ${JSON.stringify(value)}`);
  }
  return value;
}

export const SCALE: Scale = readScale();

/** Picks the figure for this run's scale. */
export function scaled<T>(values: { full: T; short: T }): T {
  return values[SCALE];
}
