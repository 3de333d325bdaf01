/**
 * Type-level test (checked by `tsc`, not run): clients of node-redis 5 and 6, RESP2 or RESP3, are
 * accepted as they come from `createClient()`, without a cast.
 */
import { createClient } from "redis";
import { createClient as createClient5 } from "redis5";
import { createRedisAdapter, type RedisAdapter } from "../../src";

export const adapters: RedisAdapter[] = [
  createRedisAdapter({ client: createClient() }),
  createRedisAdapter({ client: createClient({ RESP: 2 }) }),
  createRedisAdapter({ client: createClient5() }),
  createRedisAdapter({ client: createClient5({ RESP: 3 }) }),
];
