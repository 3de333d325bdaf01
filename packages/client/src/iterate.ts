/**
 * `for await (const event of client)`: each loop has an inbox the client posts its events to, and
 * reads them in order; the client's end (close, abort, a fatal error) ends every loop.
 */
import type { SseError } from "./error";

/** An iterator's inbox: an event, or (with none) the end, with the fatal error if there was one. */
export type Inbox = (event?: Event, error?: SseError) => void;

/**
 * A loop over the events posted to `inboxes` (the client's set): they are queued while the loop's
 * body runs. It ends when the client ends (`ended` if it already has), throwing the fatal error
 * if there was one; leaving it early (`break`, `return`, a throw) calls `close`.
 */
export function iterate<T>(
  ended: boolean,
  inboxes: Set<Inbox>,
  close: () => void,
): AsyncIterableIterator<T> {
  const queue: Event[] = [];
  let failure: SseError | undefined;
  let wake = (): void => undefined;
  const inbox: Inbox = (event, error) => {
    if (event) queue.push(event);
    else ((ended = true), (failure = error));
    wake();
  };
  if (!ended) inboxes.add(inbox);
  const iterator: AsyncIterableIterator<T> = {
    next: async () => {
      while (queue.length === 0 && !ended) await new Promise<void>((r) => (wake = r));
      if (queue.length > 0) return { done: false, value: queue.shift() as T };
      inboxes.delete(inbox);
      if (failure) throw failure;
      return { done: true, value: undefined };
    },
    return: async () => {
      inboxes.delete(inbox);
      queue.length = 0;
      ended = true;
      close();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}
