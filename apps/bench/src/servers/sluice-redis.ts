/**
 * `sluice-redis`: the `sluice` variant with the channel on the Redis Streams adapter
 * (`@sluice/redis`), so that every process serving the channel delivers every event. The Redis
 * URL comes from `BENCH_REDIS_URL`; only the cross-process scenario runs it (it starts the Redis).
 */
import { Channel } from "@sluice/express-sse";
import { createRedisAdapter } from "@sluice/redis";
import { serveChannel } from "./sluice";
import type { ServerVariant } from "./types";

export async function start(port: number): Promise<ServerVariant> {
  const url = process.env["BENCH_REDIS_URL"];
  if (url === undefined || url === "") throw new Error("sluice-redis needs BENCH_REDIS_URL");
  const adapter = createRedisAdapter({ url });
  adapter.on("error", (err: Error) => console.error("sluice-redis: redis:", err.message));
  const channel = new Channel("bench", { adapter });
  await adapter.ready();
  return serveChannel(port, "sluice-redis", channel, () => adapter.close());
}
