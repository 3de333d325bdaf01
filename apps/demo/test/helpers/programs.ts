import type { ProgramRequirement } from "../../../../test-support/system";

/** What the demo's tests need: nginx and openssl for the e2e tests, docker-compose to validate the compose file, chromium for the browser test. */
export const DEMO_TEST_PROGRAMS: readonly ProgramRequirement[] = [
  { program: "nginx", debianPackage: "nginx" },
  { program: "openssl", debianPackage: "openssl" },
  { program: "docker-compose", debianPackage: "docker-compose" },
  { program: "chromium", debianPackage: "chromium" },
];
