import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

// These tests run the *built* package (dist/), as users get it. `pnpm test` builds first.
const root = path.resolve(__dirname, "..");
const dist = path.join(root, "dist");

beforeAll(() => {
  if (!fs.existsSync(path.join(dist, "index.js"))) {
    throw new Error(`${dist} is missing: run \`pnpm build\` first (pnpm test does)`);
  }
});

function node(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: root, encoding: "utf8" });
}

describe("the built package", () => {
  test("require() and import give the same exports", () => {
    const cjs = node([
      "-e",
      "console.log(Object.keys(require('@sluice/express-sse')).sort().join())",
    ]);
    const esm = node([
      "--input-type=module",
      "-e",
      "import * as m from '@sluice/express-sse'; console.log(Object.keys(m).sort().join())",
    ]);
    expect(cjs.trim()).toBe(
      "Channel,Frame,MAX_MEMBER_BYTES,MemoryAdapter,SseStream,StreamClosedError,shutdown,sse",
    );
    expect(esm.trim()).toBe(cjs.trim());
    const testing = node([
      "-e",
      "console.log(Object.keys(require('@sluice/express-sse/testing')).sort().join())",
    ]);
    expect(testing.trim()).toBe(
      "NotAnEventStreamError,collectEvents,createParser,parseEventStream",
    );
    const contract = node([
      "--input-type=module",
      "-e",
      "import * as m from '@sluice/express-sse/adapter-contract'; console.log(Object.keys(m).join())",
    ]);
    expect(contract.trim()).toBe("adapterContract");
  });

  test.each(["esm-middleware", "cjs-middleware"])(
    "import and require share one library (%s): res.sse, Channel, stats().open, maxConnections and shutdown() work across them",
    (order) => {
      const out = node([path.join(__dirname, "fixtures", "mixed-builds.mjs"), order]);
      const seen = JSON.parse(out) as Record<string, unknown> & { shutdownMs: number };
      // Every export is the same object whichever way it was loaded.
      expect(Object.values(seen["same"] as Record<string, boolean>).every(Boolean)).toBe(true);
      expect(seen).toMatchObject({
        isOtherBuildsStream: true, // res.sse from one entry is an SseStream of the other
        status: 200,
        received: true, // the other entry's Channel subscribed it and delivered
        open: 1, // the middleware's count sees the stream
        secondStatus: 503, // maxConnections: 1
        ended: "end", // shutdown() of the other entry ended the stream cleanly...
        openAfter: 0,
      });
      expect(seen["subscribeError"]).toBeUndefined();
      expect(seen.shutdownMs).toBeLessThan(1000); // ...at once, not after its 1,500 ms timeout
    },
  );

  test("the ES module entries re-export the CommonJS build (no second copy of the code)", () => {
    for (const entry of ["index", "testing", "adapter-contract"]) {
      const mjs = fs.readFileSync(path.join(dist, `${entry}.mjs`), "utf8");
      expect(mjs).toContain(`import cjs from "./${entry}.js";`);
      expect(mjs.split("\n").length).toBeLessThan(40);
    }
  });

  test("has no runtime dependencies", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
    expect(pkg.dependencies ?? {}).toEqual({});
    const bundle = fs.readFileSync(path.join(dist, "index.js"), "utf8");
    const required = [...bundle.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]);
    expect(
      required.every((name) => name?.startsWith("node:") || ["http", "net"].includes(name ?? "")),
    ).toBe(true);
  });

  test("its declarations type-check for CommonJS and ES module consumers, with res.sse typed", () => {
    const tsc = require.resolve("typescript/bin/tsc");
    for (const file of ["consumer.cts", "consumer.mts"]) {
      const result = spawnSync(
        process.execPath,
        [
          tsc,
          "--noEmit",
          "--strict",
          "--module",
          "node16",
          "--moduleResolution",
          "node16",
          "--types",
          "node",
          "--skipLibCheck",
          "false",
          path.join(__dirname, "fixtures", file),
        ],
        { cwd: root, encoding: "utf8" },
      );
      expect(`${file}: ${result.stdout}${result.stderr}`).toBe(`${file}: `);
    }
  }, 60_000);

  test("an onClose callback that throws still lets the others run, and surfaces as an uncaught exception", () => {
    const script = `
      const express = require("express");
      const http = require("node:http");
      const { sse } = require("@sluice/express-sse");
      const app = express();
      app.use(sse());
      const calls = [];
      process.on("uncaughtException", (err) => {
        console.log(JSON.stringify({ uncaught: err.message, calls }));
        process.exit(0);
      });
      app.get("/", (req, res) => {
        res.sse.onClose(() => { calls.push("first"); throw new Error("callback failed"); });
        res.sse.onClose(() => calls.push("second"));
        res.sse.send("x");
      });
      const server = app.listen(0, "127.0.0.1", () => {
        const req = http.get("http://127.0.0.1:" + server.address().port + "/", (res) => {
          res.once("data", () => req.destroy());
        });
        req.on("error", () => {});
      });
      setTimeout(() => { console.log("timeout"); process.exit(1); }, 5000).unref();
    `;
    const out = node(["-e", script]);
    expect(JSON.parse(out)).toEqual({ uncaught: "callback failed", calls: ["first", "second"] });
  });
});
