// The client's size as an app pays for it: the built ES module, bundled and minified by esbuild,
// then gzipped (zlib's default level). Measured twice: the package's own code (eventsource-parser
// left out, as the limit is about what this package adds) and with the parser bundled in.
// `pnpm build` prints it; test/size.test.ts fails when the package's own code passes the limit.
const path = require("node:path");
const zlib = require("node:zlib");
const esbuild = require("esbuild");

/** The bound on the package's own minified and gzipped code, in bytes. */
const LIMIT = 3 * 1024;
const dist = path.join(__dirname, "..", "dist");

async function minified(file, external) {
  const result = await esbuild.build({
    entryPoints: [path.join(dist, file)],
    bundle: true,
    minify: true,
    format: "esm",
    platform: "neutral",
    external,
    write: false,
    logLevel: "silent",
  });
  return result.outputFiles[0].contents;
}

/** `{ own, withParser }`: minified and gzipped bytes of dist/index.mjs. */
async function measure() {
  const own = await minified("index.mjs", ["eventsource-parser"]);
  const all = await minified("index.mjs", []);
  return {
    own: zlib.gzipSync(own).length,
    ownMinified: own.length,
    withParser: zlib.gzipSync(all).length,
  };
}

function report({ own, ownMinified, withParser }) {
  const kb = (n) => `${(n / 1024).toFixed(2)} KB`;
  return (
    `@sluice/client size: ${own} B (${kb(own)}) minified + gzipped ` +
    `(${ownMinified} B minified; limit ${LIMIT} B); ` +
    `${withParser} B (${kb(withParser)}) with eventsource-parser bundled in`
  );
}

module.exports = { LIMIT, measure, report };

if (require.main === module) {
  measure().then((sizes) => console.log(report(sizes)));
}
