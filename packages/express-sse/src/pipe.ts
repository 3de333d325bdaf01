import type { EventFields } from "./frame";
import { describe, isPromise, noop, reportError } from "./util";
import type { SseStream, StreamClosedError } from "./stream";

/** Anything `pipe()` can read: an async iterable (async generator, Node stream) or an iterable. */
export type PipeSource<T> = AsyncIterable<T> | Iterable<T>;

/** Options of `res.sse.pipe()`. */
export interface PipeOptions<T> {
  /** Event name for every item, or a function that picks one per item. */
  event?: string | ((item: T, index: number) => string | undefined);
  /** Event id per item (for example a cursor position), so the client can resume. */
  id?: (item: T, index: number) => string | number | undefined;
  /** Close the stream once the source is exhausted. @defaultValue false */
  closeOnEnd?: boolean;
}

const STREAM_CLOSED = Symbol("stream closed");

/**
 * The loop behind `res.sse.pipe()`. Reads one item at a time, so the source is never pulled
 * faster than the client reads (backpressure reaches the producer), and races every `next()`
 * against the stream's close so that `return()` runs as soon as the client leaves, not after the
 * source's next item.
 */
export async function pipe<T>(
  stream: SseStream,
  source: PipeSource<T>,
  options: PipeOptions<T> = {},
): Promise<boolean> {
  const iterator = getIterator(source);
  const { event, id, closeOnEnd = false } = options;
  if (event !== undefined && typeof event !== "string" && typeof event !== "function") {
    throw new TypeError(
      `The "event" option of pipe() must be a string or a function, got ${describe(event)}`,
    );
  }
  if (id !== undefined && typeof id !== "function") {
    throw new TypeError(`The "id" option of pipe() must be a function, got ${describe(id)}`);
  }

  // One resolver, re-armed per item, instead of Promise.race() against a long-lived "closed"
  // promise: race() leaves a reaction on that promise per call, which grows with the stream.
  let wake: ((value: typeof STREAM_CLOSED) => void) | undefined;
  const removeOnClose = stream.onClose((_reason: StreamClosedError) => {
    if (wake !== undefined) wake(STREAM_CLOSED);
  });

  let finished = false;
  try {
    for (let index = 0; ; index++) {
      if (stream.closed) return false;
      const pending = iterator.next();
      const step = isPromise(pending)
        ? await new Promise<IteratorResult<T> | typeof STREAM_CLOSED>((resolve, reject) => {
            wake = resolve;
            pending.then(resolve, reject);
          })
        : pending;
      wake = undefined;
      if (step === STREAM_CLOSED) return false;
      if (step.done === true) {
        finished = true;
        if (closeOnEnd) stream.close();
        return true;
      }
      const item = step.value;
      const fields: EventFields = {};
      if (event !== undefined)
        fields.event = typeof event === "string" ? event : event(item, index);
      if (id !== undefined) fields.id = id(item, index);
      if (!stream.send(item, fields) && !(await stream.drain())) return false;
    }
  } finally {
    removeOnClose();
    // Stop the producer unless it ended on its own. Not awaited when the client left: a source
    // blocked in next() (an async generator awaiting upstream) settles return() only after that
    // next() does, and the caller should not wait for it.
    if (!finished && typeof iterator.return === "function") {
      const result = iterator.return();
      // Nobody awaits this: report a failing cleanup as a process warning instead of an
      // unhandled rejection (which would crash the process under Node's default policy).
      if (isPromise(result)) result.then(noop, reportReturnError);
    }
  }
}

type AnyIterator<T> = AsyncIterator<T> | Iterator<T>;

function getIterator<T>(source: PipeSource<T>): {
  next(): Promise<IteratorResult<T>> | IteratorResult<T>;
  return?: () => unknown;
} {
  if (source != null) {
    const asyncFactory = (source as AsyncIterable<T>)[Symbol.asyncIterator];
    if (typeof asyncFactory === "function") return asyncFactory.call(source) as AnyIterator<T>;
    const syncFactory = (source as Iterable<T>)[Symbol.iterator];
    if (typeof syncFactory === "function" && typeof source !== "string") {
      return syncFactory.call(source) as AnyIterator<T>;
    }
  }
  throw new TypeError(`pipe() takes an async iterable or an iterable, got ${describe(source)}`);
}

function reportReturnError(err: unknown): void {
  reportError(undefined, err, "SluicePipeWarning");
}
