import { ensurePrograms } from "../../../../test-support/system";
import { DEMO_TEST_PROGRAMS } from "../helpers/programs";

/**
 * jest globalSetup for the demo project: the nginx e2e tests, the compose check and the browser
 * test need nginx, openssl, docker-compose and chromium. Missing ones are installed with apt-get
 * when running as root on Debian; otherwise the run fails, naming the packages to install.
 */
export default function globalSetup(): void {
  ensurePrograms(DEMO_TEST_PROGRAMS);
}
