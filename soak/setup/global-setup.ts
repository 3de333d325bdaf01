import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ensureRedisCluster } from "../../packages/redis/test/helpers/redis-cluster";

/**
 * jest globalSetup of the soak suite: make sure redis-server and redis-cli (which makes the Redis
 * Cluster of the chaos case) are there (installed with apt-get as root on Debian, else a clear
 * failure naming the packages) and open an empty results file for the table reporter. The
 * environment is inherited by the test files (run in band).
 */
export default function globalSetup(): void {
  ensureRedisCluster();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sluice-soak-"));
  const file = path.join(dir, "results.jsonl");
  fs.writeFileSync(file, "");
  process.env["SOAK_RESULTS_FILE"] = file;
}
