import * as esbuild from "esbuild";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { chromiumLaunchOptions } from "../../../test-support/chromium";
import { freePort } from "../../../test-support/system";
import { startFixtureServer, type FixtureServer } from "./helpers/fixture-server";
import { defineClientSuite, type Runner } from "./helpers/suite";

// The shared suite again, with the client in headless Chromium (Debian's, driven by
// playwright-core): the page, served by the fixture server, loads the client and the scenarios
// bundled by esbuild from source, and each scenario runs there.

let server: FixtureServer;
let closedPort: number;
let browser: Browser;
let page: Page;

async function bundle(): Promise<string> {
  const result = await esbuild.build({
    entryPoints: [path.join(__dirname, "shared", "browser-entry.ts")],
    bundle: true,
    format: "iife",
    target: "chrome120",
    platform: "browser",
    write: false,
    logLevel: "silent",
  });
  return result.outputFiles[0]!.text;
}

const runner: Runner = {
  run(name, run, arg) {
    return page.evaluate(
      ([name, run, arg]) =>
        (
          window as unknown as {
            runScenario(name: string, run: string, arg: unknown): Promise<never>;
          }
        ).runScenario(name, run, arg),
      [name, run, arg] as const,
    );
  },
};

beforeAll(async () => {
  const script = await bundle();
  server = await startFixtureServer({ script: () => script });
  closedPort = await freePort();
  browser = await chromium.launch(
    // For the heap check: window.gc() and exact performance.memory figures.
    chromiumLaunchOptions(["--js-flags=--expose-gc", "--enable-precise-memory-info"]),
  );
  page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(server.url);
  await page.waitForFunction(() => "runScenario" in window);
  expect(errors).toEqual([]);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

defineClientSuite("Chromium", () => ({ runner, server, closedPort }));
