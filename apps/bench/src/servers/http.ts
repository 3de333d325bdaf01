/** What the variants share: the path, the headers of the hand-written ones, listen and close. */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";

export const PATH = "/events";

/** The headers Sluice sends, for the hand-written variants (minus X-Accel-Buffering). */
export const SSE_HEADERS = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache, no-transform",
  Connection: "keep-alive",
};

const HOST = "127.0.0.1";

/** Listens on 127.0.0.1 with a backlog large enough for bursts of connects; resolves the port. */
export function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port, host: HOST, backlog: 4096 }, () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Drops every connection (event streams never end by themselves) and closes the server. */
export function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
