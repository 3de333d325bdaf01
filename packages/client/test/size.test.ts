import fs from "node:fs";
import path from "node:path";

// The size promise, on the real build: dist/index.mjs bundled and minified by esbuild, then
// gzipped, as scripts/size.cjs measures it (and `pnpm build` prints it). `pnpm test` builds first.
const { LIMIT, measure, report } = require("../scripts/size.cjs") as {
  LIMIT: number;
  measure(): Promise<{ own: number; ownMinified: number; withParser: number }>;
  report(sizes: object): string;
};

const dist = path.join(__dirname, "..", "dist");

test("the package's own code stays under 3 KB minified and gzipped", async () => {
  if (!fs.existsSync(path.join(dist, "index.mjs"))) {
    throw new Error(`${dist} is missing: run \`pnpm build\` first (pnpm test does)`);
  }
  const sizes = await measure();
  process.stdout.write(`${report(sizes)}\n`);
  expect(LIMIT).toBe(3072);
  expect(sizes.own).toBeLessThan(LIMIT);
  // The parser is the one dependency; together they are still small.
  expect(sizes.withParser).toBeGreaterThan(sizes.own);
  expect(sizes.withParser).toBeLessThan(5 * 1024);
});
