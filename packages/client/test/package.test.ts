import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { startFixtureServer, type FixtureServer } from "./helpers/fixture-server";

// These tests run the *built* package (dist/), as users get it. `pnpm test` builds first.
const root = path.resolve(__dirname, "..");
const dist = path.join(root, "dist");
const run = promisify(execFile);

let server: FixtureServer;

beforeAll(async () => {
  if (!fs.existsSync(path.join(dist, "index.js"))) {
    throw new Error(`${dist} is missing: run \`pnpm build\` first (pnpm test does)`);
  }
  server = await startFixtureServer();
});
afterAll(() => server?.close());

async function node(args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, args, { cwd: root, encoding: "utf8" });
  return stdout.trim();
}

describe("the built package", () => {
  test("require() and import give the same exports", async () => {
    const cjs = await node([
      "-e",
      "console.log(Object.keys(require('@sluice/client')).sort().join())",
    ]);
    const esm = await node([
      "--input-type=module",
      "-e",
      "import * as m from '@sluice/client'; console.log(Object.keys(m).sort().join())",
    ]);
    expect(cjs).toBe("SseClient,SseError");
    expect(esm).toBe(cjs);
  });

  test("one runtime dependency, eventsource-parser, and nothing of Node in the code", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
    expect(Object.keys(pkg.dependencies)).toEqual(["eventsource-parser"]);
    expect(pkg.peerDependencies).toBeUndefined();
    for (const file of ["index.js", "index.mjs"]) {
      const code = fs.readFileSync(path.join(dist, file), "utf8");
      const imports = [...code.matchAll(/(?:require\(|from )["']([^"']+)["']/g)].map((m) => m[1]);
      expect(`${file}: ${[...new Set(imports)].join()}`).toBe(`${file}: eventsource-parser`);
    }
  });

  test.each([
    ["CommonJS", ["-e"], "const { SseClient } = require('@sluice/client');"],
    ["ES module", ["--input-type=module", "-e"], "import { SseClient } from '@sluice/client';"],
  ])("works from %s against a Sluice server", async (_kind, flags, load) => {
    const script = `${load}
      const out = [];
      const client = new SseClient(process.argv[1], {});
      client.addEventListener("open", (e) => out.push("open " + e.response.status));
      client.addEventListener("close", (e) => out.push("close " + (e.error ? e.error.code : "")));
      (async () => {
        for await (const event of client) out.push(event.type + " " + JSON.stringify(event.data));
        console.log(JSON.stringify(out));
      })();`;
    const output = await node([...flags, script, `${server.url}/typed/package`]);
    expect(JSON.parse(output)).toEqual([
      "open 200",
      'price {"symbol":"ACME","price":12.5}',
      "token 42",
      'token "hello"',
      'token "{not json"',
      'price {"symbol":"ACME","price":13}',
      "close ",
    ]);
  });

  test("its declarations type-check, typed events included, for CommonJS and ES module consumers with Node's types only, and for a browser app without them", async () => {
    const tsc = require.resolve("typescript/bin/tsc");
    const fixture = (file: string) => path.join(__dirname, "fixtures", file);
    // The declarations, copied to a .ts file: checked as source, so a type they use that one of
    // these settings lacks (a DOM type for Node, a Node type for a browser) is an error, while
    // skipLibCheck spares the minutes of checking all of @types/node.
    const work = path.join(root, "node_modules", ".cache", "client-declarations");
    fs.mkdirSync(work, { recursive: true });
    const declarations = path.join(work, "declarations.ts");
    fs.copyFileSync(path.join(dist, "index.d.ts"), declarations);
    const browserConfig = path.join(work, "tsconfig.browser.json");
    // A browser app's settings: the DOM library, no Node types at all.
    fs.writeFileSync(
      browserConfig,
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          lib: ["ES2022", "DOM", "DOM.Iterable"],
          module: "ESNext",
          moduleResolution: "Bundler",
          types: [],
          strict: true,
          noEmit: true,
          skipLibCheck: true,
        },
        files: [declarations, fixture("browser.ts")],
      }),
    );
    const runs: Array<[string, string[]]> = [
      [
        "Node",
        // prettier-ignore
        ["--noEmit", "--strict", "--skipLibCheck", "--module", "node16", "--moduleResolution", "node16", "--target", "es2022", "--lib", "es2022", "--types", "node", declarations, fixture("consumer.cts"), fixture("consumer.mts")],
      ],
      ["browser", ["-p", browserConfig]],
    ];
    const results = await Promise.all(
      runs.map(([name, args]) =>
        run(process.execPath, [tsc, ...args], { cwd: root, encoding: "utf8" }).then(
          ({ stdout, stderr }) => `${name}: ${stdout}${stderr}`,
          (error: { stdout: string; stderr: string }) => `${name}: ${error.stdout}${error.stderr}`,
        ),
      ),
    );
    expect(results).toEqual(runs.map(([name]) => `${name}: `));
  }, 60_000);
});
