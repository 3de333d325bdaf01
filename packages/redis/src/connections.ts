/**
 * Which node-redis clients the adapter creates, from its options: a standalone URL, a cluster's
 * root nodes, or the user's own client (commands on it, pub/sub on a duplicate of it).
 */
import { createClient, createCluster } from "redis";
import {
  COMMANDS_NAME,
  SUBSCRIBER_NAME,
  isCluster,
  type AnyRedisClient,
  type ClientFactory,
  type NodeRedisClient,
  type NodeRedisCluster,
  type ReconnectStrategy,
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
   * Creates the pub/sub client of a standalone server (always the adapter's own). `undefined`
   * for a cluster, whose pub/sub connections are duplicated from the command client's node
   * connections (cluster-subscriber.ts).
   */
  readonly subscriber: ClientFactory | undefined;
  /** Whether these are cluster connections. */
  readonly cluster: boolean;
}

/**
 * The clients the adapter uses. Every client it creates has the offline queue off (a publish while
 * disconnected fails at once instead of waiting in a queue) and our backoff. The pub/sub client
 * speaks RESP3, so that a `PING` checks it while it is subscribed, whatever the user's client does.
 */
export function createConnections(options: ConnectionsOptions): Connections {
  const user = options.client;
  if (user !== undefined) {
    if (isCluster(user))
      return { borrowed: user, commands: undefined, subscriber: undefined, cluster: true };
    const subscriber: ClientFactory = (reconnectStrategy) =>
      duplicateForPubSub(user, { reconnectStrategy });
    return { borrowed: user, commands: undefined, subscriber, cluster: false };
  }
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
    return { borrowed: undefined, commands, subscriber: undefined, cluster: true };
  }
  const create = (name: string, reconnectStrategy: ReconnectStrategy) =>
    createClient({
      url: options.url,
      name,
      RESP: 3,
      disableOfflineQueue: true,
      socket: { reconnectStrategy },
    }) as unknown as NodeRedisClient;
  return {
    borrowed: undefined,
    commands: (strategy) => create(COMMANDS_NAME, strategy),
    subscriber: (strategy) => create(SUBSCRIBER_NAME, strategy),
    cluster: false,
  };
}

/**
 * A pub/sub connection duplicated from `client` (same address, credentials, database, TLS):
 * RESP3 (a `PING` works while subscribed), no offline queue, none of the client's pings,
 * client-side cache or idle timeout, and `socket` (reconnection; a cluster node's address) on top.
 */
export function duplicateForPubSub(client: NodeRedisClient, socket: object): NodeRedisClient {
  return client.duplicate({
    name: SUBSCRIBER_NAME,
    RESP: 3,
    disableOfflineQueue: true,
    pingInterval: undefined,
    clientSideCache: undefined,
    emitInvalidate: false,
    socket: { ...client.options?.socket, socketTimeout: undefined, ...socket },
  });
}
