/**
 * `sluice`: `app.use(sse())`, `channel.subscribe(res)`, `channel.publish(payload)`; the library's
 * defaults (bounded history of 1,000 events, ids on every event) except the heartbeat, which is
 * off in every variant.
 */
import { createServer } from "node:http";
import express from "express";
import { Channel, sse } from "@sluice/express-sse";
import type { Payload } from "../payload";
import { PATH, close, listen } from "./http";
import type { ServerVariant } from "./types";

export function start(port: number): Promise<ServerVariant> {
  return serveChannel(port, "sluice", new Channel("bench"));
}

/** Serves `channel` the same way for every Sluice variant; `release` runs after the server closes. */
export async function serveChannel(
  port: number,
  name: string,
  channel: Channel,
  release: () => Promise<void> = async () => {},
): Promise<ServerVariant> {
  const app = express();
  // Off as in every variant, except where a scenario measures it (BENCH_HEARTBEAT_MS: the scale
  // scenarios run Sluice's default, 15 s).
  app.use(sse({ heartbeat: Number(process.env["BENCH_HEARTBEAT_MS"] ?? 0) }));
  app.get(PATH, (_req, res) => channel.subscribe(res));
  const server = createServer(app);
  return {
    port: await listen(server, port),
    path: PATH,
    preludeFrames: 1, // the opening ":" comment every stream starts with
    broadcast(payload: Payload) {
      // In memory, delivery is synchronous up to the end of this run (one batched write per
      // client, in a microtask); on Redis every process delivers it from the stream. The promise
      // only carries the id.
      channel.publish(payload).catch((err: unknown) => {
        console.error(`${name}: publish failed:`, err);
      });
    },
    clients: () => channel.size,
    close: async () => {
      await channel.close();
      await release();
      await close(server);
    },
  };
}
