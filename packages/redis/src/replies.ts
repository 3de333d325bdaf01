/**
 * Reading node-redis's replies and failures: reply shapes (RESP2 arrays or RESP3 maps) into plain
 * values, a deadline for answers, and what a failed publish means for the event. Pure apart from
 * the deadline's timer; knows node-redis only by its error class names.
 */

/** How a failed command failed, for publish errors. */
export interface Failure {
  /** `false`: Redis never stored it. `undefined`: it may have been stored (sent, no answer). */
  readonly stored: false | undefined;
  /** Why, in words. */
  readonly reason: string;
}

/** A command that got no answer in time: Redis is stuck, or the connection died silently. */
export class NoAnswerError extends Error {
  constructor(ms: number) {
    super(`no answer from Redis within ${ms} ms`);
    this.name = "NoAnswerError";
  }
}

/** `reply`, or a {@link NoAnswerError} after `ms` (one timer, cleared when the reply comes). */
export function answerWithin<T>(reply: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new NoAnswerError(ms)), ms);
    reply.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** Classifies an error from `append()` (node-redis error classes, by name across versions). */
export function describeFailure(error: unknown, timeout: number): Failure {
  const name = error instanceof Error ? error.constructor.name : "";
  const message = error instanceof Error ? error.message : String(error);
  switch (name) {
    case "ClientOfflineError":
    case "ClientClosedError":
      return { stored: false, reason: `Redis is unreachable (${message})` };
    case "ErrorReply":
    case "SimpleError":
    case "BlobError":
      // The script's first write is the XADD: an error reply (WRONGTYPE, OOM, CLUSTERDOWN,
      // a failover's READONLY) means it never stored the event.
      return { stored: false, reason: `Redis refused it: ${message}` };
    case "NoAnswerError":
    case "TimeoutError":
      return { stored: undefined, reason: `Redis did not answer within ${timeout} ms` };
    default:
      return {
        stored: undefined,
        reason: `the connection to Redis failed before Redis answered (${message})`,
      };
  }
}

/** Whether `error` says that no answer came in time (ours, or node-redis's queue timeout). */
export function isTimeout(error: unknown): boolean {
  return (
    error instanceof NoAnswerError ||
    (error instanceof Error && error.constructor.name === "TimeoutError")
  );
}

export function asString(value: unknown): string {
  if (typeof value === "string") return value;
  if (Buffer.isBuffer(value)) return value.toString();
  if (typeof value === "number") return String(value);
  throw new TypeError(`Expected a string reply from Redis, got ${typeof value}`);
}

/** A RESP2 flat [k, v, …] array, a RESP3 map as an object, or a Map, as an object. */
export function asRecord(reply: unknown): Record<string, unknown> {
  if (Array.isArray(reply)) {
    const record: Record<string, unknown> = {};
    for (let i = 0; i + 1 < reply.length; i += 2) record[asString(reply[i])] = reply[i + 1];
    return record;
  }
  if (reply instanceof Map) return Object.fromEntries(reply) as Record<string, unknown>;
  if (reply !== null && typeof reply === "object") return reply as Record<string, unknown>;
  throw new TypeError(`Unexpected reply from Redis: ${String(reply)}`);
}

/** A stream entry: its id and its field/value list. */
export type Entry = readonly [id: string, fields: string[]];

/** `XRANGE`/`XREVRANGE` entries. */
export function asEntries(reply: unknown): Entry[] {
  if (reply === null || reply === undefined) return [];
  if (!Array.isArray(reply)) throw new TypeError(`Unexpected stream reply: ${String(reply)}`);
  return reply.map((entry: unknown) => {
    const [id, fields] = entry as [unknown, unknown];
    return [asString(id), Array.isArray(fields) ? fields.map(asString) : []] as const;
  });
}

/** An error in a few words: node-redis's TimeoutError has an empty message. */
export function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return error.message === ""
    ? error.constructor.name
    : `${error.constructor.name}: ${error.message}`;
}
