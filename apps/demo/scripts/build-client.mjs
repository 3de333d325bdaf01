#!/usr/bin/env node
/**
 * Bundles `@sluice/client` for the page: public/vendor/sluice-client.js, one minified ES module
 * (the client and its one dependency, eventsource-parser), with its source map. The page's script
 * imports it when the private notifications panel opens (public/client.js).
 *
 * Run by `pnpm demo` (the demo's `start`), by the Dockerfile's build stage and by the demo tests'
 * global setup; the output is build output, so git and the Docker context ignore it.
 *
 * Bundled from the workspace package's TypeScript source, not its dist/: the page then never
 * depends on the order in which packages were built (the tests run without a build), and esbuild
 * compiles the same code the package's own build ships.
 *
 * Usage: node scripts/build-client.mjs [--quiet]
 */
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const demoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(path.join(demoRoot, "package.json"));
const clientRoot = path.dirname(require.resolve("@sluice/client/package.json"));
const outfile = path.join(demoRoot, "public", "vendor", "sluice-client.js");

export async function buildClient({ quiet = false } = {}) {
  mkdirSync(path.dirname(outfile), { recursive: true });
  const result = await esbuild.build({
    entryPoints: [path.join(clientRoot, "src", "index.ts")],
    outfile,
    bundle: true,
    format: "esm",
    // Every browser with fetch streaming and EventTarget subclassing; the page needs no more.
    target: ["es2020"],
    platform: "browser",
    minify: true,
    sourcemap: true,
    legalComments: "eof",
    metafile: true,
    logLevel: "warning",
  });
  const bytes = result.metafile.outputs[path.relative(process.cwd(), outfile)]?.bytes;
  if (!quiet) {
    const size = bytes === undefined ? "" : ` (${bytes.toLocaleString("en-US")} bytes)`;
    console.log(`demo: bundled @sluice/client into ${path.relative(demoRoot, outfile)}${size}`);
  }
  return outfile;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  buildClient({ quiet: process.argv.includes("--quiet") }).catch((err) => {
    console.error(`demo: bundling @sluice/client failed: ${err.message}`);
    process.exit(1);
  });
}
