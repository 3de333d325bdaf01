/**
 * The server every client of the matrix reads: one Express app with `sse()`, on 127.0.0.1. Each
 * case runs under its own URL (`/conformance/c/<case>/<run>`), and the server keeps a record of
 * every request of a run (its `Last-Event-ID`, as Sluice decodes it and as raw bytes) and of the
 * requests Node's HTTP parser refused before any handler saw them (400).
 */
import express, { type Request, type Response } from "express";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { sse, type SseMiddleware, type SseOptions } from "../../src";
import { decodeLastEventId } from "../../src/http";

/** The page a browser client opens first, so that its sources are same-origin. */
export const PAGE_PATH = "/conformance/page";

/** The reconnection delay every stream of the matrix starts with, unless a case says otherwise. */
export const RETRY_MS = 20;

export interface RequestRecord {
  /** The header as `res.sse.lastEventId` decodes it. */
  lastEventId: string | undefined;
  /** The header's bytes, one char per byte (Node reads them as Latin-1). */
  rawLastEventId: string | undefined;
  /** `performance.now()` when the handler ran. */
  at: number;
}

export interface RunRecord {
  readonly id: string;
  readonly requests: RequestRecord[];
  /** Requests Node's HTTP parser answered with an error status before any handler ran. */
  refusedByNode: number;
  /** What a case's server side noted (times, values). */
  readonly notes: Record<string, unknown>;
  /** Exceptions thrown by the case's server side (a failed assertion there fails the case). */
  readonly serverErrors: string[];
}

export interface ServeContext {
  req: Request;
  res: Response;
  run: RunRecord;
  /** 1 for the run's first request, 2 for the first reconnection, … */
  n: number;
  /** The case's `sse()` instance (its stats, its streams). */
  middleware: SseMiddleware;
}

export interface ServedCase {
  name: string;
  options?: SseOptions;
  serve(ctx: ServeContext): void | Promise<void>;
}

export interface ConformanceServer {
  readonly url: string;
  /** A fresh run of `name`: its URL and its record. */
  newRun(name: string): { url: string; run: RunRecord };
  close(): Promise<void>;
}

let runs = 0;

export async function startConformanceServer(
  cases: readonly ServedCase[],
): Promise<ConformanceServer> {
  const app = express();
  const byName = new Map<string, { served: ServedCase; middleware: SseMiddleware }>();
  for (const served of cases) {
    byName.set(served.name, {
      served,
      middleware: sse({
        heartbeat: 0,
        retry: RETRY_MS,
        // 1 MB events: room for a whole one in the process while the client reads it.
        maxBufferedBytes: 8 * 1024 * 1024,
        ...served.options,
      }),
    });
  }
  const records = new Map<string, RunRecord>();

  app.get(PAGE_PATH, (_req, res) => {
    res.type("html").send("<!doctype html><title>Sluice conformance</title>");
  });
  app.get("/favicon.ico", (_req, res) => res.sendStatus(204));
  app.get("/conformance/c/:case/:run", (req: Request, res: Response) => {
    const entry = byName.get(String(req.params["case"]));
    const run = records.get(String(req.params["run"]));
    if (entry === undefined || run === undefined) return res.sendStatus(404);
    entry.middleware(req, res, () => {
      const raw = rawHeader(req, "last-event-id");
      run.requests.push({
        // What res.sse.lastEventId gives (the same function), read without creating the stream
        // here: a case may still hand the response to another sse() (the 503 case does).
        lastEventId: raw === undefined ? undefined : decodeLastEventId(raw),
        rawLastEventId: raw,
        at: performance.now(),
      });
      const ctx: ServeContext = {
        req,
        res,
        run,
        n: run.requests.length,
        middleware: entry.middleware,
      };
      Promise.resolve()
        .then(() => entry.served.serve(ctx))
        .catch((error: unknown) => {
          run.serverErrors.push(error instanceof Error ? error.message : String(error));
          if (!res.headersSent) res.sendStatus(500);
          else res.destroy();
        });
    });
    return undefined;
  });

  const server = http.createServer(app);
  // Node answers a request its parser refuses (a control character in a header value) with 400
  // before any handler runs; count those for the run they belong to, and answer as Node would.
  server.on(
    "clientError",
    (error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket) => {
      // The request line names the run; without one (a bare reset), nothing is counted.
      const line = /^GET \/conformance\/c\/[^/ ]+\/(r\d+)[ ?]/.exec(
        error.rawPacket?.toString("latin1") ?? "",
      );
      const run = line === null ? undefined : records.get(line[1] as string);
      if (run !== undefined) run.refusedByNode++;
      if (!socket.writable) {
        socket.destroy();
        return;
      }
      const status =
        error.code === "HPE_HEADER_OVERFLOW"
          ? "431 Request Header Fields Too Large"
          : "400 Bad Request";
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    newRun(name) {
      const id = `r${++runs}`;
      const run: RunRecord = { id, requests: [], refusedByNode: 0, notes: {}, serverErrors: [] };
      records.set(id, run);
      return { url: `${url}/conformance/c/${encodeURIComponent(name)}/${id}`, run };
    },
    async close() {
      for (const { middleware } of byName.values()) {
        for (const stream of middleware.streams) stream.close();
      }
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A request header's value as Node read it (one char per byte), from rawHeaders. */
function rawHeader(req: Request, name: string): string | undefined {
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() === name) return raw[i + 1];
  }
  return undefined;
}
