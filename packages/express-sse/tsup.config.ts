import { defineConfig } from "tsup";

// One build, two formats: Express apps on Node 20 are still mostly CommonJS, so `require` gets
// dist/*.js and `import` gets dist/*.mjs, each with its own declaration file (.d.ts / .d.mts).
export default defineConfig({
  entry: ["src/index.ts", "src/testing.ts"],
  format: ["cjs", "esm"],
  dts: true,
  clean: true,
  target: "node20",
  platform: "node",
  sourcemap: true,
  splitting: false,
  treeshake: true,
});
