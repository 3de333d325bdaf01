/**
 * Replicas of the demo on one Redis, as behind nginx in docker compose: each with its own Redis
 * adapter and server on a free loopback port, all in this process.
 */
import type http from "node:http";
import type { AddressInfo } from "node:net";
import { createRedisAdapter, type RedisAdapter } from "@sluice/redis";
import { createApp, type DemoApp, type DemoOptions } from "../../src/app";

export interface Replica {
  app: DemoApp;
  server: http.Server;
  adapter: RedisAdapter;
  url: string;
  /**
   * What the adapter and the app's channels reported (their `error` events): collected for the
   * tests to assert on, as an app's own listener would log them. Without a listener they would be
   * process warnings, printed in the middle of a green test run.
   */
  errors: Error[];
}

/** Starts `count` replicas on the Redis at `redisUrl`; resolves once each adapter is connected. */
export async function startReplicas(
  redisUrl: string,
  count: number,
  options: DemoOptions = {},
): Promise<Replica[]> {
  const replicas: Replica[] = [];
  for (let i = 0; i < count; i++) {
    const adapter = createRedisAdapter({ url: redisUrl });
    const errors: Error[] = [];
    adapter.on("error", (error) => errors.push(error));
    const app = createApp({
      adapter,
      heartbeatMs: 0,
      onChannelError: (error) => errors.push(error),
      ...options,
    });
    const server = app.listen(0, "127.0.0.1");
    await new Promise<void>((resolve) => server.once("listening", () => resolve()));
    await adapter.ready();
    const { port } = server.address() as AddressInfo;
    replicas.push({ app, server, adapter, url: `http://127.0.0.1:${port}`, errors });
  }
  return replicas;
}

/** Closes every replica: its connections, server, app and adapter. */
export async function stopReplicas(replicas: readonly Replica[]): Promise<void> {
  for (const { app, server, adapter } of replicas) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await app.close();
    await adapter.close();
  }
}
