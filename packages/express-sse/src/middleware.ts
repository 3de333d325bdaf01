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

const kContext = Symbol("sluice.context");
type ContextResponse = ServerResponse & {
  [kContext]?: StreamContext;
  [kStream]?: SseStream | undefined;
};

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

  function sseMiddleware(
    _req: IncomingMessage,
    res: ServerResponse,
    next: (err?: unknown) => void,
  ): void {
    const tagged = res as ContextResponse;
    // A stream that already exists keeps its options; otherwise the innermost sse() wins.
    if (tagged[kStream] === undefined) {
      tagged[kContext] = context;
      if (Object.getOwnPropertyDescriptor(res, "sse") === undefined) {
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

/**
 * The lazy `res.sse` getter: one shared function (no closure per request) that creates the
 * stream on first access. The stream is found again through a symbol property, never by
 * redefining `sse` as a value: reconfiguring a property turns the response into a dictionary-mode
 * object, which measured 1.6 KB more heap per open stream.
 */
function getSse(this: ContextResponse): SseStream {
  const existing = this[kStream];
  if (existing !== undefined) return existing;
  const context = this[kContext];
  if (context === undefined || this.req === undefined) {
    throw new Error("res.sse is only available on responses that passed through sse()");
  }
  return new SseStream(this.req, this, context);
}
