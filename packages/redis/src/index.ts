export { RedisAdapter, createRedisAdapter } from "./redis-adapter";
export { RedisPublishError } from "./errors";
export { DEFAULT_PREFIX, hashSlot, metaKey, streamKey } from "./keys";

export type { RedisAdapterStats } from "./redis-adapter";
export type { RedisAdapterOptions } from "./options";
export type { AnyRedisClient, NodeRedisClient, NodeRedisCluster } from "./client";
