import { defineConfig } from "tsup";

// Same shape as @sluice/express-sse: CommonJS for `require`, ES modules for `import`, each with its
// own declarations. `redis` and `@sluice/express-sse` are peers, so they stay external.
export default defineConfig({
  entry: ["src/index.ts"],
  tsconfig: "tsconfig.build.json",
  format: ["cjs", "esm"],
  dts: true,
  clean: true,
  target: "node20",
  platform: "node",
  sourcemap: true,
  splitting: false,
  treeshake: true,
});
