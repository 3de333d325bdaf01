/**
 * `raw-socket`: the limit. Each broadcast is framed once as one HTTP/1.1 chunk
 * (`<size>\r\n data: …\n\n \r\n`) and written straight to every client's socket, under
 * `ServerResponse`: what is left is the kernel's one write per client per event. No library can
 * do less work for a broadcast over HTTP/1.1; the other variants are also compared with it.
 */
import { createServer } from "node:http";
import type { Socket } from "node:net";
import type { Payload } from "../payload";
import { PATH, SSE_HEADERS, close, listen } from "./http";
import type { ServerVariant } from "./types";

export async function start(port: number): Promise<ServerVariant> {
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    if (req.url !== PATH) {
      res.writeHead(404).end();
      return;
    }
    // Headers through Node (it adds Transfer-Encoding: chunked), then the body by hand.
    res.writeHead(200, SSE_HEADERS);
    res.flushHeaders();
    const socket = res.socket as Socket;
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  return {
    port: await listen(server, port),
    path: PATH,
    preludeFrames: 0,
    broadcast(payload: Payload) {
      const frame = Buffer.from(`data: ${JSON.stringify(payload)}\n\n`);
      const chunk = Buffer.concat([
        Buffer.from(`${frame.length.toString(16)}\r\n`),
        frame,
        Buffer.from("\r\n"),
      ]);
      for (const socket of sockets) socket.write(chunk);
    },
    clients: () => sockets.size,
    close: () => close(server),
  };
}
