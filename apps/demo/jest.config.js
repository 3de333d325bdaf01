/** @type {import('jest').Config} */
module.exports = {
  displayName: "demo",
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  transform: {
    "^.+\\.ts$": ["ts-jest", { tsconfig: "<rootDir>/tsconfig.json", diagnostics: false }],
  },
  // Tests run the library from source, so they need no build.
  moduleNameMapper: {
    "^@sluice/express-sse$": "<rootDir>/../../packages/express-sse/src/index.ts",
    "^@sluice/express-sse/testing$": "<rootDir>/../../packages/express-sse/src/testing.ts",
    "^@sluice/redis$": "<rootDir>/../../packages/redis/src/index.ts",
    "^@sluice/client$": "<rootDir>/../../packages/client/src/index.ts",
  },
  // Installs (as root on Debian) or demands nginx, openssl, docker-compose and chromium.
  globalSetup: "<rootDir>/test/setup/global-setup.ts",
  testTimeout: 30_000,
};
