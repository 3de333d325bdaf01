#!/usr/bin/env node
/**
 * Writes the package's ES module entries after tsup has built the CommonJS ones:
 * dist/<entry>.mjs re-exports dist/<entry>.js, and dist/<entry>.d.mts re-exports its declarations.
 *
 * Why not a second, ES module build of the source: the library keeps module state (the open
 * streams that shutdown() and stats() walk, the closing servers, the res.sse slot) and checks
 * `instanceof` (SseStream, Frame). Two builds would be two copies of both, and an app whose code
 * `import`s the package while a dependency `require`s it (or the other way round) would get two
 * worlds: shutdown() from one would not see the other's streams, and a Channel from one would
 * refuse the other's res.sse. One implementation, loaded by both `import` and `require`, is
 * the fix Node's documentation gives for this "dual package hazard". The cost: bundlers cannot
 * tree-shake the package (a server library, used whole).
 *
 * The named exports are read from the built CommonJS module itself, so they cannot drift from it.
 *
 * Usage: node scripts/esm-entries.mjs <entry>...   (from the package's root; e.g. index testing)
 */
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
const dist = path.resolve("dist");
const entries = process.argv.slice(2);
if (entries.length === 0) {
  console.error("usage: node scripts/esm-entries.mjs <entry>...");
  process.exit(2);
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

for (const entry of entries) {
  const cjs = require(path.join(dist, `${entry}.js`));
  const names = Object.keys(cjs).sort();
  const bad = names.filter((name) => !IDENTIFIER.test(name) || name === "default");
  if (bad.length > 0) throw new Error(`dist/${entry}.js exports names an ES module cannot: ${bad}`);
  const header =
    `// ES module entry: the CommonJS build re-exported, so that import and require share one\n` +
    `// copy of the library and its state (written by scripts/esm-entries.mjs).\n`;
  writeFileSync(
    path.join(dist, `${entry}.mjs`),
    `${header}import cjs from "./${entry}.js";\n\nexport const {\n${names.map((n) => `  ${n},\n`).join("")}} = cjs;\n`,
  );
  writeFileSync(path.join(dist, `${entry}.d.mts`), `${header}export * from "./${entry}.js";\n`);
}
