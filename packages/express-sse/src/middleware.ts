import { ServerResponse, type IncomingMessage } from "node:http";
import { StreamRegistry } from "./registry";
import { resolveOptions, type SseOptions } from "./options";
import { kStream, type StreamContext, type StreamStats } from "./context";
import { SseStream } from "./stream";

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

/**
 * A response's slot, `res[kStream]`: the context of the innermost `sse()` that ran for it until
 * the stream is created, then the stream itself. One slot for both: every property added to a
 * response costs heap on every response.
 */
type SlotResponse = ServerResponse & { [kStream]?: SseStream | StreamContext | undefined };

/**
 * The `res.sse` getter, one function for every `sse()` instance. It is defined once on Express's
 * response prototype (`express.response`, which every app's `app.response` inherits, sub-apps
 * included) rather than on each response: a per-response accessor costs an accessor pair and a
 * hidden class of its own per response (~100 bytes per open stream). A response that did not pass
 * through an `sse()` middleware has an empty slot and reads `undefined`, as before.
 */
function sseGetter(this: SlotResponse): SseStream | undefined {
  const slot = this[kStream];
  if (slot === undefined || slot instanceof SseStream) return slot;
  if (this.req === undefined) {
    throw new Error("res.sse is only available on responses of an HTTP server");
  }
  return SseStream._create(this, slot); // replaces the slot's context with the stream
}

const SSE_PROPERTY: PropertyDescriptor = { get: sseGetter, configurable: true, enumerable: false };

/** Prototypes known to carry `sseGetter` (directly or through their own prototype). */
const withGetter = new WeakSet<object>();

/**
 * Makes `res.sse` reach `sseGetter`. Express responses get it through Express's shared response
 * prototype, the object of the chain whose own prototype is Node's `ServerResponse.prototype`
 * (checked once per app prototype). A response straight from `node:http` (no Express), or one
 * whose chain has someone else's `sse`, gets an own property instead: Node's prototypes are never
 * modified.
 */
function installGetter(res: ServerResponse): void {
  const proto = Object.getPrototypeOf(res) as object;
  if (!withGetter.has(proto)) {
    const base = expressBase(proto);
    if (base !== undefined && !Object.prototype.hasOwnProperty.call(base, "sse")) {
      Object.defineProperty(base, "sse", SSE_PROPERTY);
    }
    if (findGetter(proto) === sseGetter) withGetter.add(proto);
  }
  const own = Object.getOwnPropertyDescriptor(res, "sse");
  if (own === undefined ? !withGetter.has(proto) : own.get !== sseGetter) {
    Object.defineProperty(res, "sse", SSE_PROPERTY);
  }
}

/** The prototype just above Node's `ServerResponse.prototype` (Express's `response`), if any. */
function expressBase(proto: object): object | undefined {
  for (let o: object | null = proto; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    if (o === ServerResponse.prototype) return undefined;
    if (Object.getPrototypeOf(o) === ServerResponse.prototype) return o;
  }
  return undefined;
}

/** The getter `sse` resolves to along `proto`'s chain, if any. */
function findGetter(proto: object): unknown {
  for (let o: object | null = proto; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    const own = Object.getOwnPropertyDescriptor(o, "sse");
    if (own !== undefined) return own.get;
  }
  return undefined;
}

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
    registry: new StreamRegistry<SseStream>(resolved.heartbeat),
    stats: { opened: 0, events: 0, bytes: 0, heartbeats: 0, slowClientsDropped: 0, rejected: 0 },
  };

  function sseMiddleware(
    _req: IncomingMessage,
    res: ServerResponse,
    next: (err?: unknown) => void,
  ): void {
    // A stream that already exists keeps its options; otherwise the innermost sse() wins.
    const slotted = res as SlotResponse;
    if (!(slotted[kStream] instanceof SseStream)) {
      slotted[kStream] = context;
      installGetter(res);
    }
    next();
  }

  return Object.defineProperties(sseMiddleware, {
    streams: { value: context.registry.streams, enumerable: true },
    stats: {
      value: function stats(): StreamStats {
        return { open: context.registry.size, ...context.stats };
      },
      enumerable: true,
    },
  }) as SseMiddleware;
}
