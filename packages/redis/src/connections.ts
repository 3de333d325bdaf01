/**
 * Which node-redis clients the adapter creates, from its options: a standalone URL, a cluster's
 * root nodes, or the user's own client (commands on it, pub/sub on a duplicate of it).
 */
import { createClient, createCluster } from "redis";
import {
  COMMANDS_NAME,
  isCluster,
  type AnyRedisClient,
  type ClientFactory,
  type NodeRedisClient,
  type NodeRedisCluster,
} from "./client";

export interface ConnectionsOptions {
  /** `redis://…` of a standalone server. */
  readonly url: string | undefined;
  /** Root nodes of a Redis Cluster. */
  readonly rootNodes: readonly string[] | undefined;
  /** The user's client or cluster client: commands run on it; it is duplicated for pub/sub. */
  readonly client: AnyRedisClient | undefined;
}

/** Where the adapter's connections come from. */
export interface Connections {
  /** The user's client, which carries the commands; `undefined` when the adapter creates it. */
  readonly borrowed: AnyRedisClient | undefined;
  /** Creates the command client (unless borrowed). */
  readonly commands: ClientFactory | undefined;
  /**
   * Whether these are cluster connections. Pub/sub connections are the adapter's own either way
   * (pubsub-connection.ts), to the command client's server (standalone) or to each primary
   * (cluster-subscriber.ts), with its credentials and TLS (endpoint.ts).
   */
  readonly cluster: boolean;
}

/**
 * The command client. One the adapter creates has the offline queue off (a publish while
 * disconnected fails at once instead of waiting in a queue) and our backoff.
 */
export function createConnections(options: ConnectionsOptions): Connections {
  const user = options.client;
  if (user !== undefined) return { borrowed: user, commands: undefined, cluster: isCluster(user) };
  if (options.rootNodes !== undefined) {
    const rootNodes = options.rootNodes.map((url) => ({ url }));
    const commands: ClientFactory = (reconnectStrategy) =>
      createCluster({
        rootNodes,
        RESP: 3,
        // When a node stops answering, look for a new primary after 1 s rather than 5 s.
        topologyRefreshOnReconnectionAttemptStrategy: 1000,
        defaults: { name: COMMANDS_NAME, disableOfflineQueue: true, socket: { reconnectStrategy } },
      }) as unknown as NodeRedisCluster;
    return { borrowed: undefined, commands, cluster: true };
  }
  const commands: ClientFactory = (reconnectStrategy) =>
    createClient({
      url: options.url,
      name: COMMANDS_NAME,
      RESP: 3,
      disableOfflineQueue: true,
      socket: { reconnectStrategy },
    }) as unknown as NodeRedisClient;
  return { borrowed: undefined, commands, cluster: false };
}
