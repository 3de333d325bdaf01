import { ensureRedisServer } from "../helpers/redis-server";

/**
 * jest globalSetup for @sluice/redis: every test file starts its own redis-server, so make sure
 * the program is there first (installed with apt-get as root on Debian, else a clear failure
 * naming the package).
 */
export default function globalSetup(): void {
  ensureRedisServer();
}
