/**
 * Publishing: one call of the publish script (scripts.ts) per event, which stores it, trims and
 * expires the history, and announces it on pub/sub, atomically. Fail-fast: a publish while the
 * command connection is down rejects at once (no offline queue), one Redis does not answer in
 * `publishTimeout` rejects then, and the error says whether the event may have been stored.
 */
import type { AdapterChannelOptions, AdapterPublish } from "@sluice/express-sse";
import type { Connection } from "./client";
import { publishFlags, toEventId } from "./codec";
import { publishEntry } from "./commands";
import { RedisPublishError } from "./errors";
import { describeFailure } from "./replies";
import type { StreamState } from "./state";
import { noop } from "./util";

type Bounds = AdapterChannelOptions["history"];

/** Values of own publishes kept for the live feed, per stream, at most. */
const MAX_VALUES = 10_000;

export interface PublishCounters {
  /** Publishes Redis confirmed. */
  published: number;
}

export interface PublishSettings {
  readonly publishTimeout: number;
  readonly minStreamLength: number;
  readonly metaTtl: number;
}

/**
 * Stores and announces `input` on `stream`; resolves with the event id. The caller has checked
 * that the command connection is ready (see `RedisAdapter#_publish`).
 */
export function publish(
  commands: Connection,
  stream: StreamState,
  channelName: string,
  bounds: Bounds,
  input: AdapterPublish,
  settings: PublishSettings,
  counters: PublishCounters,
): Promise<string> {
  const { publishTimeout, minStreamLength } = settings;
  // One more than max: the entry just before the oldest retained stays, so history() can tell
  // that a client holding it missed nothing (see history.ts).
  const maxLen = Math.max(bounds.max + 1, minStreamLength);
  const maxAge = bounds.maxAge === Infinity ? 0 : Math.max(1, Math.ceil(bounds.maxAge));
  // The meta hash outlives the stream (keys.ts); for ever when the history never expires.
  const metaTtl = maxAge === 0 ? 0 : Math.max(maxAge, settings.metaTtl);
  const appended = publishEntry(
    commands,
    {
      stream: stream.key,
      metaKey: stream.metaKey,
      maxLen,
      maxAge,
      metaTtl,
      flags: publishFlags(input),
      event: input.event ?? "",
      data: input.data,
    },
    publishTimeout,
  );
  // The live feed gets this event by pub/sub, maybe before this reply (another connection): it
  // waits for the publishes in flight, so that the value is known when it delivers.
  const keepValue = "value" in input && stream.wanted();
  const settled = appended.then((id) => {
    if (!keepValue) return;
    const values = (stream.values ??= new Map());
    values.set(id, input.value);
    if (values.size > MAX_VALUES) values.delete(values.keys().next().value!);
  }, noop);
  // Replies on a connection come in the order the publishes were sent, so the newest one settles
  // last: waiting for it is waiting for all of them (live.ts), in O(1) per message.
  stream.lastPublish = settled;
  void settled.then(() => {
    if (stream.lastPublish === settled) stream.lastPublish = undefined;
  });
  return appended.then(
    (id) => {
      counters.published++;
      return toEventId(id, stream.tag);
    },
    (error: unknown) => {
      throw new RedisPublishError(channelName, describeFailure(error, publishTimeout), error);
    },
  );
}
