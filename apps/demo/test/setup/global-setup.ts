import { execFileSync } from "node:child_process";
import path from "node:path";
import { ensurePrograms } from "../../../../test-support/system";
import { DEMO_TEST_PROGRAMS } from "../helpers/programs";

/**
 * jest globalSetup for the demo project:
 * - the nginx e2e tests, the compose check and the browser tests need nginx, openssl,
 *   docker-compose and chromium. Missing ones are installed with apt-get when running as root on
 *   Debian; otherwise the run fails, naming the packages to install.
 * - the page's private panel imports public/vendor/sluice-client.js: bundled here with the
 *   demo's own script, as `pnpm demo` and the Dockerfile do, so the browser tests run the client
 *   as it is in the source tree. (A child process: the script is an ES module, this file is not.)
 */
export default function globalSetup(): void {
  ensurePrograms(DEMO_TEST_PROGRAMS);
  execFileSync(
    process.execPath,
    [path.join(__dirname, "..", "..", "scripts", "build-client.mjs")],
    {
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
}
