/**
 * Runs every case of the table against one client: the test file of each client calls
 * `runMatrix(adapter)`. A case passes when the client shows what the spec says, or, for a known
 * deviation (deviations.ts), exactly what was recorded for that client.
 */
import { CASES, END, type Case } from "./cases";
import type { ClientAdapter } from "./clients/types";
import { deviationOf } from "./deviations";
import { startConformanceServer, type ConformanceServer } from "./server";
import { waitFor } from "../helpers/server";

export function runMatrix(
  client: ClientAdapter,
  cases: readonly Case[] = CASES,
  { knownDeviations = true }: { knownDeviations?: boolean } = {},
): void {
  let server: ConformanceServer;

  beforeAll(async () => {
    server = await startConformanceServer(cases);
    await client.start(server.url);
  }, 120_000);

  afterAll(async () => {
    await client.stop();
    await server?.close();
  }, 60_000);

  test.each(cases.map((c) => [c.name, c.title, c] as const))(
    "%s: %s",
    async (_name, _title, c) => {
      const { url, run } = server.newRun(c.name);
      const session = await client.open(url, [...c.listen, END]);
      try {
        await waitFor(() => c.done({ log: session.log, run }), {
          timeout: c.timeout ?? 10_000,
          interval: 5,
          what: `${client.name} to finish "${c.name}"`,
        });
      } catch (error) {
        throw new Error(
          `${(error as Error).message}; ${run.requests.length} request(s), ` +
            `${run.refusedByNode} refused by Node; the client's last reports: ${summary(session.log)}`,
        );
      } finally {
        await session.close();
      }
      expect(run.serverErrors).toEqual([]);
      const observed = c.observe({ log: session.log, run });
      const expected = c.expected(client.name);
      const deviation = knownDeviations ? deviationOf(client.name, c.name) : undefined;
      // The case and its spec section go along, so that a failure says which rule.
      const about = { case: c.name, spec: c.spec };
      if (deviation === undefined) {
        expect({ ...about, observed }).toEqual({ ...about, observed: expected });
      } else {
        // A known deviation: exactly what was recorded, and not what the spec says.
        expect({ ...about, observed }).toEqual({ ...about, observed: deviation.observed });
        expect(observed).not.toEqual(expected);
      }
    },
    60_000,
  );
}

function summary(log: readonly unknown[]): string {
  return JSON.stringify(log.slice(-5)).slice(0, 400);
}
