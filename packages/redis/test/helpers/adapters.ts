/**
 * Adapters a test file creates: each one ready before use, its reports collected, all closed by
 * `close()`, which also checks that nothing was reported (connection trouble is not expected
 * unless a test says so, by emptying `errors` itself).
 */
import { createRedisAdapter, type RedisAdapter, type RedisAdapterOptions } from "../../src";
import { streamKey } from "../../src/keys";

export interface AdapterPool {
  /** What the open adapters reported since the last `close()`. */
  readonly errors: Error[];
  /** A new adapter, once ready; closed by `close()`. */
  make(options: RedisAdapterOptions): Promise<RedisAdapter>;
  /** Closes every adapter made since the last call; expects no report. */
  close(): Promise<void>;
}

export function adapterPool(): AdapterPool {
  const adapters: RedisAdapter[] = [];
  const errors: Error[] = [];
  return {
    errors,
    async make(options) {
      const adapter = createRedisAdapter(options);
      adapter.on("error", (err) => errors.push(err));
      adapters.push(adapter);
      await adapter.ready();
      return adapter;
    },
    async close() {
      await Promise.all(adapters.splice(0).map((adapter) => adapter.close()));
      expect(errors.splice(0)).toEqual([]);
    },
  };
}

/**
 * Whether `adapter`'s live feed for channel `name` runs: its pub/sub subscription confirmed and
 * its start position read, so that every event published from now on reaches the channel's
 * listener. Read from the adapter's internal state, for tests that must publish only then
 * (instead of sleeping and hoping the feed is there).
 */
export function feedStarted(adapter: RedisAdapter, name: string): boolean {
  const internals = adapter as unknown as {
    _options: { prefix: string };
    _streams: Map<string, { subscribed: boolean; needsRead: boolean; hasPosition(): boolean }>;
  };
  const stream = internals._streams.get(streamKey(internals._options.prefix, name));
  return stream !== undefined && stream.subscribed && stream.hasPosition() && !stream.needsRead;
}
