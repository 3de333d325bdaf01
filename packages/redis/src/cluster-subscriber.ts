/**
 * Sharded pub/sub on a Redis Cluster: one subscriber connection per primary that serves a slot
 * this process listens to, placed by the cluster's slot map (`CLUSTER SLOTS`).
 *
 * node-redis's cluster client can do sharded pub/sub itself, but it cannot be told when a
 * subscription that moved (a failover, a slot migration) is back, it re-subscribes in the
 * background with promises nobody handles (an unhandled rejection: a crash on Node 20), and
 * version 5 never re-subscribes at all. So the adapter keeps its own: a connection per primary
 * (pubsub-connection.ts), with the options of the command cluster client's node connections
 * (same credentials and TLS, endpoint.ts), never reconnected in place. When one fails (closed, no answer to a PING, or the slot
 * moved: Redis says MOVED, or unsubscribes us from a migrated slot), its channels are handed back
 * to the live feed as unsubscribed; the feed subscribes them again, placed by a fresh slot map,
 * and then reads each one from its last delivered event, so nothing is missed silently.
 */
import { SUBSCRIBER_NAME, type Connection, type NodeRedisClient } from "./client";
import { endpointOf } from "./endpoint";
import { hashSlot } from "./keys";
import { PubSubConnection } from "./pubsub-connection";
import { answerWithin } from "./replies";
import type { PubSub, SubscriberEvents } from "./subscriber";

interface ShardNode {
  readonly host: string;
  readonly port: number;
}

/** node-redis's cluster client, as far as the templates for node connections go. */
interface ClusterNodes {
  readonly masters: ReadonlyArray<{ readonly client?: { readonly isReady: boolean } }>;
  nodeClient(node: object): Promise<NodeRedisClient> | NodeRedisClient;
}

/** One primary's subscriber connection and the channels subscribed on it. */
class NodeConnection {
  readonly channels = new Set<string>();
  readonly connection: PubSubConnection;
  released = false;

  constructor(
    readonly address: string,
    template: NodeRedisClient,
    node: ShardNode,
    events: SubscriberEvents,
    onFailure: (node: NodeConnection, error: Error) => void,
  ) {
    // Never reconnected in place: the slot may have moved meanwhile (see the module comment).
    this.connection = new PubSubConnection(endpointOf(template.options, SUBSCRIBER_NAME, node), {
      onMessage: (message, channel) => events.onMessage(message, channel),
      onTakenAway: (channel) => onFailure(this, new Error(`the slot of ${channel} moved`)),
      onClose: (error) => onFailure(this, error),
    });
  }

  get connected(): Promise<void> {
    return this.connection.connected;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.connection.destroy();
  }
}

export class ClusterSubscriber implements PubSub {
  /** @internal */
  private readonly _nodes = new Map<string, NodeConnection>();
  /**
   * @internal The primary's address ("host:port") per slot; empty until the first `CLUSTER SLOTS`.
   */
  private _slots: string[] = [];
  /**
   * @internal The slot map may be stale (a node failed, Redis said MOVED): read it again before
   * placing.
   */
  private _stale = true;
  /**
   * @internal A node failed since the last subscribe that worked: tell the adapter once it is over.
   */
  private _recovering = false;
  /** @internal */
  private _refreshing: Promise<void> | undefined = undefined;
  /** @internal */
  private _released = false;

  constructor(
    private readonly _commands: Connection,
    private readonly _events: SubscriberEvents,
  ) {}

  /** The slot map is known and the command connection is up. */
  get ready(): boolean {
    return this._slots.length > 0 && this._commands.ready;
  }

  /** Reads the slot map; retried by the caller (the adapter) until it works. */
  async connect(): Promise<void> {
    if (!this._commands.ready) return; // the adapter calls again once commands are ready
    await this._refresh();
    this._events.onResubscribed();
  }

  async subscribe(channels: readonly string[]): Promise<void> {
    if (this._stale) await this._refresh();
    const byNode = groupBy(channels, (channel) => {
      const address = this._slots[hashSlot(channel)];
      if (address === undefined) throw new Error(`No primary serves slot ${hashSlot(channel)} now`);
      return address;
    });
    const failures: unknown[] = [];
    await Promise.all(
      [...byNode].map(async ([address, nodeChannels]) => {
        try {
          const node = await this._node(address);
          await node.connected;
          // One command per slot (a sharded subscription must not cross slots), pipelined.
          await Promise.all(
            [...groupBy(nodeChannels, hashSlot).values()].map(async (group) => {
              await node.connection.subscribe(group);
              for (const channel of group) node.channels.add(channel);
            }),
          );
        } catch (error) {
          failures.push(error);
        }
      }),
    );
    if (failures.length > 0) {
      // MOVED, a dead primary: the slot map is stale. The feed retries with a fresh one.
      this._stale = true;
      throw failures[0];
    }
    if (this._recovering) {
      this._recovering = false;
      this._events.onResubscribed();
    }
  }

  async unsubscribe(channels: readonly string[]): Promise<void> {
    const nodes = [...this._nodes.values()];
    const byNode = groupBy(
      channels.filter((channel) => nodes.some((node) => node.channels.has(channel))),
      (channel) => nodes.find((node) => node.channels.has(channel))!,
    );
    await Promise.all(
      [...byNode].map(async ([node, gone]) => {
        for (const channel of gone) node.channels.delete(channel);
        if (node.channels.size === 0) return this._drop(node); // its last channels: close it
        for (const group of groupBy(gone, hashSlot).values()) {
          await node.connection.unsubscribe(group);
        }
      }),
    );
  }

  /** PINGs every node connection; one that does not answer in time is dropped. */
  async ping(timeout: number): Promise<void> {
    await Promise.all(
      [...this._nodes.values()].map(async (node) => {
        if (!node.connection.ready) return;
        try {
          await answerWithin(node.connection.ping(), timeout);
        } catch (error) {
          this._failed(node, new Error(`no answer to PING within ${timeout} ms`, { cause: error }));
        }
      }),
    );
  }

  async release(): Promise<void> {
    this._released = true;
    const nodes = [...this._nodes.values()];
    this._nodes.clear();
    for (const node of nodes) node.release();
  }

  /** @internal */
  private async _node(address: string): Promise<NodeConnection> {
    let node = this._nodes.get(address);
    if (node !== undefined) return node;
    const [host, port] = [
      address.slice(0, address.lastIndexOf(":")),
      address.slice(address.lastIndexOf(":") + 1),
    ];
    const template = await this._template();
    node = this._nodes.get(address); // another subscribe may have created it meanwhile
    if (node !== undefined) return node;
    node = new NodeConnection(
      address,
      template,
      { host, port: Number(port) },
      this._events,
      (n, error) => this._failed(n, error),
    );
    this._nodes.set(address, node);
    return node;
  }

  /**
   * @internal
   * A connection of the command cluster client, to duplicate: same credentials and TLS. A
   * connected one if there is one (a primary that just died is still listed for a while).
   */
  private async _template(): Promise<NodeRedisClient> {
    const cluster = this._commands.client as unknown as ClusterNodes;
    const live = cluster.masters.find((master) => master.client?.isReady === true);
    return cluster.nodeClient(live ?? cluster.masters[0]!);
  }

  /**
   * @internal A node connection failed: its channels go back to the feed, which subscribes them
   * again.
   */
  private _failed(node: NodeConnection, error: Error): void {
    if (node.released || this._released) return;
    const channels = [...node.channels];
    void this._drop(node);
    this._stale = true;
    this._recovering = true;
    this._events.onError(error);
    this._events.onDropped(channels);
  }

  /** @internal */
  private async _drop(node: NodeConnection): Promise<void> {
    if (this._nodes.get(node.address) === node) this._nodes.delete(node.address);
    node.channels.clear();
    node.release();
  }

  /** @internal `CLUSTER SLOTS` (one at a time): slot -> primary address. */
  private _refresh(): Promise<void> {
    this._refreshing ??= (async () => {
      try {
        const reply = (await this._commands.send(undefined, ["CLUSTER", "SLOTS"])) as unknown[];
        const slots = new Array<string>(16384);
        for (const range of reply as Array<[number, number, [string, number]]>) {
          const [from, to, [host, port]] = range;
          for (let slot = Number(from); slot <= Number(to); slot++)
            slots[slot] = `${String(host)}:${Number(port)}`;
        }
        this._slots = slots;
        this._stale = false;
      } finally {
        this._refreshing = undefined;
      }
    })();
    return this._refreshing;
  }
}

/** `items` grouped by `key`, in order. */
function groupBy<K, T>(items: Iterable<T>, key: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group === undefined) groups.set(k, [item]);
    else group.push(item);
  }
  return groups;
}
