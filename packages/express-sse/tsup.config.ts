import { defineConfig } from "tsup";

// One build, in CommonJS (dist/*.js, dist/*.d.ts). `import` gets dist/*.mjs, which re-exports it
// (scripts/esm-entries.mjs writes them after this build): one copy of the library's state for both
// module systems. The reason is in that script.
export default defineConfig({
  entry: ["src/index.ts", "src/testing.ts", "src/adapter-contract.ts"],
  format: ["cjs"],
  dts: true,
  clean: true,
  target: "node20",
  platform: "node",
  sourcemap: true,
  splitting: false,
  treeshake: true,
});
