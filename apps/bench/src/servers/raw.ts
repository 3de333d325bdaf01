/**
 * `raw`: plain node:http, the frame serialized and encoded once per event, `res.write` to every
 * client. The hand-written limit the libraries are measured against.
 */
import { createServer, type ServerResponse } from "node:http";
import type { Payload } from "../payload";
import { PATH, SSE_HEADERS, close, listen } from "./http";
import type { ServerVariant } from "./types";

export async function start(port: number): Promise<ServerVariant> {
  const clients = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    if (req.url !== PATH) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, SSE_HEADERS);
    res.flushHeaders();
    clients.add(res);
    res.on("close", () => clients.delete(res));
  });
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
