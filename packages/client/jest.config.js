/** @type {import('jest').Config} */
module.exports = {
  displayName: "client",
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  transform: {
    "^.+\\.ts$": ["ts-jest", { tsconfig: "<rootDir>/tsconfig.json", diagnostics: false }],
  },
  // The test servers run the library from source, so they need no build.
  moduleNameMapper: {
    "^@sluice/express-sse$": "<rootDir>/../express-sse/src/index.ts",
  },
  // Installs (as root on Debian) or demands chromium, for the browser run of the suite.
  globalSetup: "<rootDir>/test/setup/global-setup.ts",
  testTimeout: 30_000,
};
