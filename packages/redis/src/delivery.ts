/**
 * Handing events and resets to a stream's channels (its receivers), in the order the live feed
 * (live.ts) decides. Advances the stream's position, attaches the values of this process's own
 * publishes (publisher.ts), and reports what cannot be delivered.
 */
import type { AdapterEvent, AdapterReset } from "@sluice/express-sse";
import { compareStreamIds } from "./codec";
import type { StreamState } from "./state";

export interface DeliveryHost {
  report(error: Error): void;
  readonly counters: { delivered: number; resets: number };
}

/** Delivers an event read by `history()` (its id carries the stream's tag). */
export function deliverEvent(host: DeliveryHost, stream: StreamState, event: AdapterEvent): void {
  deliver(host, stream, event.id.slice(0, event.id.lastIndexOf("-")), event);
}

/** Delivers the entry `id` (`undefined`: an entry that is not a channel event, skipped). */
export function deliver(
  host: DeliveryHost,
  stream: StreamState,
  id: string,
  decoded: AdapterEvent | undefined,
): void {
  stream.position = id;
  stream.trusted = false;
  let event = decoded;
  const values = stream.values;
  if (values !== undefined) {
    if (decoded !== undefined && values.has(id)) event = { ...decoded, value: values.get(id) };
    // This value and those of earlier ids (never delivered: the feed was off meanwhile) are done.
    for (const old of values.keys()) {
      if (compareStreamIds(old, id) > 0) break;
      values.delete(old);
    }
    if (values.size === 0) stream.values = undefined;
  }
  if (event === undefined) {
    undecodable(host, stream, `an entry without a "d" field (${id})`);
    return;
  }
  const direct = stream.direct;
  if (direct !== undefined) {
    deliverTo(host, direct, event);
    return;
  }
  for (const receiver of stream.receivers) {
    const listener = receiver.listener;
    if (listener !== undefined && receiver.active) deliverTo(host, listener, event);
  }
}

function deliverTo(
  host: DeliveryHost,
  listener: (event: AdapterEvent) => void,
  event: AdapterEvent,
): void {
  host.counters.delivered++;
  try {
    listener(event);
  } catch (error) {
    host.report(error instanceof Error ? error : new Error(String(error)));
  }
}

/** Events were lost: the receivers' subscribers get a reset; the feed goes on after `position`. */
export function resetStream(
  host: DeliveryHost,
  stream: StreamState,
  reset: AdapterReset,
  position: string | undefined,
): void {
  if (position !== undefined) stream.position = position;
  stream.trusted = true;
  host.counters.resets++;
  host.report(
    new Error(
      `Stream "${stream.key}": events this process should have delivered are gone (${reset.reason}); ` +
        "its subscribers get event: reset",
    ),
  );
  for (const receiver of stream.receivers) {
    if (!receiver.active || receiver.listener === undefined) continue;
    try {
      receiver.onReset?.(reset);
    } catch (error) {
      host.report(error instanceof Error ? error : new Error(String(error)));
    }
  }
}

/** Something on the stream or its pub/sub channel that is not ours: reported once per stream. */
export function undecodable(host: DeliveryHost, stream: StreamState, what: string): void {
  if (stream.undecodableReported) return;
  stream.undecodableReported = true;
  host.report(new Error(`Stream "${stream.key}" has ${what}; skipping such messages`));
}
