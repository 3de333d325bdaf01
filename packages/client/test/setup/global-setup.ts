import { ensurePrograms } from "../../../../test-support/system";

/**
 * jest globalSetup for the client: the browser run of the suite needs Debian's chromium. It is
 * installed with apt-get when running as root on Debian; otherwise the run fails, naming the
 * package to install. It is never skipped.
 */
export default function globalSetup(): void {
  ensurePrograms([{ program: "chromium", debianPackage: "chromium" }]);
}
