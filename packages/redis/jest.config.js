/** @type {import('jest').Config} */
module.exports = {
  displayName: "redis",
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  transform: {
    "^.+\\.ts$": ["ts-jest", { tsconfig: "<rootDir>/tsconfig.json", diagnostics: false }],
  },
  // Tests run @sluice/express-sse from source, so they need no build.
  moduleNameMapper: {
    "^@sluice/express-sse$": "<rootDir>/../express-sse/src/index.ts",
    "^@sluice/express-sse/testing$": "<rootDir>/../express-sse/src/testing.ts",
    "^@sluice/express-sse/adapter-contract$": "<rootDir>/../express-sse/src/adapter-contract.ts",
  },
  // Installs (as root on Debian) or demands redis-server.
  globalSetup: "<rootDir>/test/setup/global-setup.ts",
  testTimeout: 30_000,
};
