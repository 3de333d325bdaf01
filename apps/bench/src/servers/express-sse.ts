/**
 * `express-sse`: `sse.init` as the route handler, `sse.send(payload)`. It serializes and writes
 * each event per client (an `id:` line, then the data); it has no heartbeat.
 *
 * One non-default, `isSerialized: false`, and the line it then needs: with the default (`true`),
 * every new connection re-sends the initial data (an empty list here) to *every* connected
 * client, one empty `res.write` each, so connecting N clients costs O(N²): 2,050 clients took
 * 15.6 s to connect against 0.8 s for `raw`, and 10,000 would take minutes per cell. Those empty
 * writes are also what sends a new client's response headers; without them the headers would
 * wait for the first event, so the route flushes them after `sse.init`. `send()`, the broadcast
 * path measured here, is the same either way.
 */
import { createServer } from "node:http";
import express from "express";
import SSE from "express-sse";
import type { Payload } from "../payload";
import { PATH, close, listen } from "./http";
import type { ServerVariant } from "./types";

export async function start(port: number): Promise<ServerVariant> {
  const sse = new SSE([], { isSerialized: false });
  const app = express();
  app.get(PATH, (req, res) => {
    sse.init(req, res);
    res.flushHeaders();
  });
  const server = createServer(app);
  return {
    port: await listen(server, port),
    path: PATH,
    preludeFrames: 0,
    broadcast(payload: Payload) {
      sse.send(payload);
    },
    clients: () => sse.listenerCount("data"),
    close: () => close(server),
  };
}
