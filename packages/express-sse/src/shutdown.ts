import type { Server } from "node:http";
import { populatedRegistries } from "./registry";
import { closingServers } from "./context";
import { SseStream } from "./stream";

const MAX_TIMEOUT = 2 ** 31 - 1;

/** Options of {@link shutdown}. */
export interface ShutdownOptions {
  /**
   * Milliseconds to wait for connections to finish before destroying the rest (requests still
   * being answered, slow clients still reading their last bytes).
   * `Infinity` waits as long as it takes.
   * @defaultValue 10000
   */
  timeout?: number;
}

/**
 * Graceful shutdown for a server that serves event streams. Stops accepting connections, closes
 * every open stream of `server` (clients reconnect — to another instance behind a load balancer —
 * and resume through `Last-Event-ID`), and resolves once `server.close()` has completed.
 *
 * Without it, `server.close()` waits forever: an event stream never ends on its own.
 *
 * @example
 * process.once("SIGTERM", async () => {
 *   await shutdown(server);
 *   process.exit(0);
 * });
 */
export function shutdown(server: Server, options: ShutdownOptions = {}): Promise<void> {
  const { timeout = 10_000 } = options;
  // setTimeout fires after 1 ms for delays past 2^31-1, which would destroy every connection at
  // once; such a timeout is refused, and Infinity means "no timer".
  const valid =
    typeof timeout === "number" && timeout >= 0 && (timeout <= MAX_TIMEOUT || timeout === Infinity);
  if (!valid) {
    throw new RangeError(
      `The "timeout" option must be a number of milliseconds from 0 to ${MAX_TIMEOUT}, or Infinity, got ${String(timeout)}`,
    );
  }
  return new Promise<void>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    server.close((err) => {
      if (timer !== undefined) clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    });
    closingServers.add(server);
    // Every open stream of the process is in the registry of its sse() instance.
    const streams: SseStream[] = [];
    for (const registry of populatedRegistries) {
      for (const stream of registry.streams) if (stream instanceof SseStream) streams.push(stream);
    }
    for (const stream of streams) {
      const socket = stream.request.socket as { server?: unknown } | null;
      if (socket?.server === server) stream._end("shutdown");
    }
    // Streams just ended leave idle keep-alive connections behind; close those now.
    server.closeIdleConnections();
    if (timeout !== Infinity) {
      timer = setTimeout(() => server.closeAllConnections(), timeout);
      timer.unref();
    }
  });
}
