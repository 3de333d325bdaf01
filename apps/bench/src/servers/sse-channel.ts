/**
 * `sse-channel`: `channel.addClient(req, res)` in an Express route, `channel.send({ data })` with
 * `jsonEncode` so it serializes the payload itself (once per event). Its defaults otherwise (an
 * `:ok` comment on connect, no ids, no history without ids); the ping is pushed out of reach.
 */
import { createServer } from "node:http";
import express from "express";
import SseChannel from "sse-channel";
import type { Payload } from "../payload";
import { PATH, close, listen } from "./http";
import type { ServerVariant } from "./types";

/** setInterval's maximum: sse-channel has no way to turn its ping off. */
const NO_PING = 2 ** 31 - 1;

export async function start(port: number): Promise<ServerVariant> {
  const channel = new SseChannel({ pingInterval: NO_PING, jsonEncode: true });
  const app = express();
  app.get(PATH, (req, res) => channel.addClient(req, res));
  const server = createServer(app);
  return {
    port: await listen(server, port),
    path: PATH,
    preludeFrames: 1, // ":ok"
    broadcast(payload: Payload) {
      channel.send({ data: payload });
    },
    clients: () => channel.getConnectionCount(),
    close: async () => {
      channel.close();
      await close(server);
    },
  };
}
