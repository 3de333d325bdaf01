import { shutdown } from "@sluice/express-sse";
import { createRedisAdapter } from "@sluice/redis";
import { createApp } from "./app";
import { MIN_SECRET_LENGTH, randomSecret } from "./auth/token";

const port = Number(process.env["PORT"] ?? 3000);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(
    `PORT must be an integer from 0 to 65535, got ${JSON.stringify(process.env["PORT"])}`,
  );
  process.exit(1);
}

// STREAM_SECRET signs session cookies and stream tokens. Replicas must share it: a token minted by
// one is checked by whichever replica the browser's next request reaches.
let streamSecret = process.env["STREAM_SECRET"];
if (streamSecret === undefined || streamSecret === "") {
  streamSecret = randomSecret();
  console.warn(
    "STREAM_SECRET is not set: using a random secret for this process; replicas behind one load balancer need one shared STREAM_SECRET",
  );
} else if (streamSecret.length < MIN_SECRET_LENGTH) {
  console.error(
    `STREAM_SECRET must be at least ${MIN_SECRET_LENGTH} characters, got ${streamSecret.length}`,
  );
  process.exit(1);
}

// REDIS_URL (or REDIS_CLUSTER: comma-separated root node URLs of a Redis Cluster) switches the
// channels (chat, updates, each user's) to Redis, so every replica behind nginx shares them;
// without either, everything stays in this process.
const redisUrl = process.env["REDIS_URL"];
const redisCluster = process.env["REDIS_CLUSTER"];
const adapter = redisCluster
  ? createRedisAdapter({ rootNodes: redisCluster.split(",").map((url) => url.trim()) })
  : redisUrl
    ? createRedisAdapter({ url: redisUrl })
    : undefined;
adapter?.on("error", (err) => console.error("redis adapter:", err.message));

const app = createApp({ streamSecret, ...(adapter === undefined ? {} : { adapter }) });
const server = app.listen(port, (err?: Error) => {
  if (err) {
    console.error(`Cannot listen on port ${port}: ${err.message}`);
    process.exit(1);
  }
  console.log(
    `Sluice demo on http://localhost:${port}  (${redisCluster ? `channels on the Redis Cluster ${redisCluster}` : redisUrl ? `channels on ${redisUrl}` : "in memory"}; Ctrl+C to stop)`,
  );
});

// Open event streams would keep server.close() waiting forever; shutdown() ends them (clients
// reconnect elsewhere and resume) and resolves once the server is closed. Then app.close()
// releases the app's own timers (the updates publisher, the ticker) and its channels.
//
// Ctrl+C under `pnpm demo` delivers SIGINT twice within milliseconds: the terminal sends it to
// every process of the foreground group (this one included), and tsx, which runs this file,
// relays its own copy. One shutdown is one shutdown: a second signal counts as "stop now" only
// once a second has passed (someone pressing Ctrl+C again because shutdown hangs).
let stoppingSince: number | undefined;
async function stop(signal: string): Promise<void> {
  if (stoppingSince !== undefined) {
    if (Date.now() - stoppingSince < 1000) return; // the same Ctrl+C, relayed
    console.log(`${signal} again: exiting now`);
    process.exit(1);
  }
  stoppingSince = Date.now();
  console.log(`${signal}: closing event streams and the server`);
  try {
    await shutdown(server, { timeout: 5000 });
    await app.close();
    await adapter?.close();
    process.exit(0);
  } catch (err) {
    console.error("Shutdown failed:", err);
    process.exit(1);
  }
}
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));
