/** `express-raw`: the `raw` loop inside an Express 5 route: what Express itself costs. */
import { createServer, type ServerResponse } from "node:http";
import express from "express";
import type { Payload } from "../payload";
import { PATH, SSE_HEADERS, close, listen } from "./http";
import type { ServerVariant } from "./types";

export async function start(port: number): Promise<ServerVariant> {
  const clients = new Set<ServerResponse>();
  const app = express();
  app.get(PATH, (_req, res) => {
    res.writeHead(200, SSE_HEADERS);
    res.flushHeaders();
    clients.add(res);
    res.on("close", () => clients.delete(res));
  });
  const server = createServer(app);
  return {
    port: await listen(server, port),
    path: PATH,
    preludeFrames: 0,
    broadcast(payload: Payload) {
      const frame = Buffer.from(`data: ${JSON.stringify(payload)}\n\n`);
      for (const res of clients) res.write(frame);
    },
    clients: () => clients.size,
    close: () => close(server),
  };
}
