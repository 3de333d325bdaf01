/**
 * `better-sse`: `createSession(req, res)` registered on a `createChannel()` channel,
 * `channel.broadcast(payload)`. Its defaults (a `retry:` field on connect, a random UUID id and
 * `event: message` on every event) except the keep-alive, which is off in every variant.
 */
import { createServer } from "node:http";
import express from "express";
import { createChannel, createSession } from "better-sse";
import type { Payload } from "../payload";
import { PATH, close, listen } from "./http";
import type { ServerVariant } from "./types";

export async function start(port: number): Promise<ServerVariant> {
  const channel = createChannel();
  const app = express();
  app.get(PATH, async (req, res) => {
    const session = await createSession(req, res, { keepAlive: null });
    channel.register(session);
  });
  const server = createServer(app);
  return {
    port: await listen(server, port),
    path: PATH,
    preludeFrames: 1, // "retry:2000"
    broadcast(payload: Payload) {
      channel.broadcast(payload);
    },
    clients: () => channel.sessionCount,
    close: () => close(server),
  };
}
