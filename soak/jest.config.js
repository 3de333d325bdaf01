// The soak suite. Not part of the root jest projects: `pnpm test:soak` runs it at full scale,
// `pnpm test` at SOAK_SCALE=short (see src/scale.ts). Always in band: the cases measure heap and
// latency, and two of them at once would measure each other.
/** @type {import('jest').Config} */
module.exports = {
  displayName: "soak",
  rootDir: __dirname,
  testEnvironment: "node",
  roots: ["<rootDir>/cases"],
  testMatch: ["**/*.soak.ts"],
  transform: {
    "^.+\\.ts$": ["ts-jest", { tsconfig: "<rootDir>/tsconfig.json", diagnostics: false }],
  },
  moduleNameMapper: {
    "^@sluice/express-sse$": "<rootDir>/../packages/express-sse/src/index.ts",
    "^@sluice/express-sse/testing$": "<rootDir>/../packages/express-sse/src/testing.ts",
    "^@sluice/redis$": "<rootDir>/../packages/redis/src/index.ts",
  },
  // Installs (as root on Debian) or demands redis-server; opens the run's results file.
  globalSetup: "<rootDir>/setup/global-setup.ts",
  reporters: [
    "default",
    "<rootDir>/../scripts/jest-summary-reporter.js",
    "<rootDir>/src/table-reporter.js",
  ],
  testTimeout: 10 * 60_000,
  maxWorkers: 1,
};
