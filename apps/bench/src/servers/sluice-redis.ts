/**
 * `sluice-redis`: the `sluice` variant with the channel on the Redis Streams adapter
 * (`@sluice/redis`), so that every process serving the channel delivers every event. The Redis
 * URL comes from `BENCH_REDIS_URL`; only the cross-process scenario runs it (it starts the Redis).
 */
import { createServer } from "node:http";
import express from "express";
import { Channel, sse } from "@sluice/express-sse";
import { createRedisAdapter } from "@sluice/redis";
import type { Payload } from "../payload";
import { PATH, close, listen } from "./http";
import type { ServerVariant } from "./types";

export async function start(port: number): Promise<ServerVariant> {
  const url = process.env["BENCH_REDIS_URL"];
  if (url === undefined || url === "") throw new Error("sluice-redis needs BENCH_REDIS_URL");
  const adapter = createRedisAdapter({ url });
  adapter.on("error", (err: Error) => console.error("sluice-redis: redis:", err.message));
  const channel = new Channel("bench", { adapter });
  await adapter.ready();
  const app = express();
  app.use(sse({ heartbeat: 0 }));
  app.get(PATH, (_req, res) => channel.subscribe(res));
  const server = createServer(app);
  return {
    port: await listen(server, port),
    path: PATH,
    preludeFrames: 1, // the opening ":" comment every stream starts with
    broadcast(payload: Payload) {
      // Appended to the Redis stream; every process (this one too) delivers it from there.
      channel.publish(payload).catch((err: unknown) => {
        console.error("sluice-redis: publish failed:", err);
      });
    },
    clients: () => channel.size,
    close: async () => {
      await channel.close();
      await adapter.close();
      await close(server);
    },
  };
}
