import { defineConfig } from "tsup";

// Same shape as @sluice/express-sse: CommonJS for `require`, ES modules for `import`, each with its
// own declarations; eventsource-parser (the one dependency) stays external. Private members
// (`_name`) are renamed to short names: they are the bulk of what a minifier cannot shorten.
// After the build, the minified and gzipped size is measured and printed (scripts/size.cjs).
export default defineConfig({
  entry: ["src/index.ts"],
  tsconfig: "tsconfig.build.json",
  format: ["cjs", "esm"],
  dts: true,
  clean: true,
  target: "es2022",
  platform: "neutral",
  sourcemap: true,
  splitting: false,
  treeshake: true,
  esbuildOptions(options) {
    options.mangleProps = /^_[a-z]/;
  },
  onSuccess: "node scripts/size.cjs",
});
