import type { IncomingMessage, ServerResponse } from "node:http";
import { Heartbeat } from "./heartbeat";
import { resolveOptions, type SseOptions } from "./options";
import { SseStream, kStream, type StreamContext, type StreamStats } from "./stream";

declare global {
  // Declaration merging (as @types/compression adds `res.flush`): `res.sse` is typed in every
  // Express handler of a project that imports this package, with no cast.
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Response {
      /** The Server-Sent Events stream of this response, created on first access. */
      readonly sse: SseStream;
    }
  }
}

/** The middleware `sse()` returns: Express-compatible, typed on Node's own request/response. */
export type SseMiddleware = ((
  req: IncomingMessage,
  res: ServerResponse,
  next: (err?: unknown) => void,
) => void) & {
  /** The streams currently open through this middleware instance. */
  readonly streams: ReadonlySet<SseStream>;
  /** A snapshot of this instance's counters (for metrics). */
  stats(): StreamStats;
};

type ContextResponse = ServerResponse & { [kStream]?: SseStream | undefined };

/**
 * Express middleware that gives every response a lazy `res.sse` stream.
 *
 * Use it app-wide (`app.use(sse())`) or per route (`app.get("/events", sse(), handler)`); a route's
 * own `sse()` wins over an app-wide one as long as the stream has not been created yet. Options
 * are validated here, once: a bad value throws at start-up.
 *
 * @example
 * app.use(sse({ heartbeat: 15_000, retry: 3_000 }));
 * app.get("/time", (req, res) => {
 *   const t = setInterval(() => res.sse.send(new Date().toISOString(), { event: "time" }), 1000);
 *   res.sse.onClose(() => clearInterval(t));
 * });
 */
export function sse(options?: SseOptions): SseMiddleware {
  const resolved = resolveOptions(options);
  const context: StreamContext = {
    options: resolved,
    heartbeat: new Heartbeat<SseStream>(resolved.heartbeat),
    stats: { opened: 0, events: 0, bytes: 0, heartbeats: 0, slowClientsDropped: 0, rejected: 0 },
  };

  // The res.sse getter of this instance: one closure per sse() call, not per request, and no
  // per-request property to find the options (each added property costs heap on every response).
  function getSse(this: ContextResponse): SseStream {
    const existing = this[kStream];
    if (existing !== undefined) return existing;
    if (this.req === undefined) {
      throw new Error("res.sse is only available on responses of an HTTP server");
    }
    return new SseStream(this.req, this, context);
  }

  function sseMiddleware(
    _req: IncomingMessage,
    res: ServerResponse,
    next: (err?: unknown) => void,
  ): void {
    // A stream that already exists keeps its options; otherwise the innermost sse() wins.
    if ((res as ContextResponse)[kStream] === undefined) {
      const own = Object.getOwnPropertyDescriptor(res, "sse");
      if (own === undefined || own.get !== getSse) {
        Object.defineProperty(res, "sse", { get: getSse, configurable: true, enumerable: false });
      }
    }
    next();
  }

  return Object.defineProperties(sseMiddleware, {
    streams: { value: context.heartbeat.streams, enumerable: true },
    stats: {
      value: function stats(): StreamStats {
        return { open: context.heartbeat.size, ...context.stats };
      },
      enumerable: true,
    },
  }) as SseMiddleware;
}
