/**
 * The shared adapter contract (the one MemoryAdapter passes) on RedisAdapter, three ways: created
 * from a URL (node-redis 6, RESP3), and on a user's client of node-redis 5 (RESP2) and 6.
 */
import { createClient } from "redis";
import { createClient as createClient5 } from "redis5";
import { adapterContract } from "@sluice/express-sse/adapter-contract";
import { adapterPool } from "./helpers/adapters";
import { startRedisServer, type RedisServer } from "./helpers/redis-server";

let redis: RedisServer;
let client5: ReturnType<typeof createClient5>;
let client6: ReturnType<typeof createClient>;

beforeAll(async () => {
  redis = await startRedisServer();
  client5 = createClient5({ url: redis.url });
  client6 = createClient({ url: redis.url });
  for (const client of [client5, client6]) client.on("error", () => undefined);
  await Promise.all([client5.connect(), client6.connect()]);
});

afterAll(async () => {
  await Promise.all([client5.close?.(), client6.close?.()]);
  await redis.dispose();
});

/** A ready adapter, closed after the test. */
const { make, close: closeAdapters } = adapterPool();

adapterContract(
  "RedisAdapter from a URL (node-redis 6, RESP3)",
  () => make({ url: redis.url }),
  closeAdapters,
);

adapterContract(
  "RedisAdapter on a user's client (node-redis 5, RESP2)",
  () => make({ client: client5, prefix: "v5:" }),
  closeAdapters,
);

adapterContract(
  "RedisAdapter on a user's client (node-redis 6, RESP3)",
  () => make({ client: client6, prefix: "v6:" }),
  closeAdapters,
);

test("the users' clients are still open and usable after every adapter closed", async () => {
  expect(client5.isOpen && client6.isOpen).toBe(true);
  expect(await client5.sendCommand(["PING"])).toBe("PONG");
  expect(await client6.sendCommand(["PING"])).toBe("PONG");
});
