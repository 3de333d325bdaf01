import { SseClient } from "../src";
import { freePort } from "../../../test-support/system";
import { startFixtureServer, type FixtureServer } from "./helpers/fixture-server";
import { defineClientSuite, type Runner } from "./helpers/suite";
import { scenarios, type Env } from "./shared/scenarios";

// The shared suite, with the client running in this Node process (its global fetch).

let server: FixtureServer;
let closedPort: number;

/** A stand-in for the page's `document`: Node has none, and the client reads only these. */
class FakeDocument extends EventTarget {
  hidden = false;
}

function heap(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== "function") {
    throw new Error("The heap check needs global.gc(): run jest through `node --expose-gc`");
  }
  gc();
  return process.memoryUsage().heapUsed;
}

const runner: Runner = {
  async run(name, run, arg) {
    const g = globalThis as { document?: FakeDocument };
    const env: Env = {
      SseClient,
      base: server.url,
      run,
      setHidden(hidden) {
        const doc = (g.document ??= new FakeDocument());
        doc.hidden = hidden;
        doc.dispatchEvent(new Event("visibilitychange"));
      },
      heap,
    };
    try {
      const scenario = scenarios[name] as (env: Env, arg?: unknown) => Promise<never>;
      return await scenario(env, arg);
    } finally {
      delete g.document;
    }
  },
};

beforeAll(async () => {
  server = await startFixtureServer();
  closedPort = await freePort();
});
afterAll(() => server.close());

defineClientSuite("Node", () => ({ runner, server, closedPort }));
