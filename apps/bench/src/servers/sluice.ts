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

export async function start(port: number): Promise<ServerVariant> {
  const channel = new Channel("bench");
  const app = express();
  app.use(sse({ heartbeat: 0 }));
  app.get(PATH, (_req, res) => channel.subscribe(res));
  const server = createServer(app);
  return {
    port: await listen(server, port),
    path: PATH,
    preludeFrames: 1, // the opening ":" comment every stream starts with
    broadcast(payload: Payload) {
      // Delivery is synchronous up to the end of this run (one batched write per client, in a
      // microtask); the promise only carries the id.
      channel.publish(payload).catch((err: unknown) => {
        console.error("sluice: publish failed:", err);
      });
    },
    clients: () => channel.size,
    close: async () => {
      await channel.close();
      await close(server);
    },
  };
}
