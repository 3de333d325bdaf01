/**
 * The two Redis deployments the multi-process tests run on (`describe.each(backends)`): a
 * standalone redis-server, and a Redis Cluster of 3 primaries and 3 replicas. Each starts its own,
 * and gives the environment of test/fixtures/server.ts and how to stop it.
 */
import { startRedisCluster } from "./redis-cluster";
import { startRedisServer } from "./redis-server";

export const backends = [
  [
    "a standalone Redis",
    async () => {
      const redis = await startRedisServer();
      return { env: { REDIS_URL: redis.url }, dispose: () => redis.dispose() };
    },
  ],
  [
    "a Redis Cluster",
    async () => {
      const cluster = await startRedisCluster();
      const env = { REDIS_CLUSTER: cluster.rootNodes.map((node) => node.url).join(",") };
      return { env, dispose: () => cluster.dispose() };
    },
  ],
] as const;
