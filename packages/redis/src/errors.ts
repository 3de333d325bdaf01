/** Errors of the Redis adapter that callers may want to tell apart. */
import type { Failure } from "./replies";

/**
 * A publish that Redis did not confirm. `stored` says whether publishing again could duplicate
 * the event:
 * - `false`: Redis never got it (not connected, or it refused the command). Publish again.
 * - `undefined`: it was sent but no answer came (the connection dropped, or `publishTimeout`
 *   passed), so Redis may have stored it. If a duplicate matters, look for it in the channel's
 *   history before publishing again.
 */
export class RedisPublishError extends Error {
  readonly channel: string;
  readonly stored: false | undefined;

  constructor(channel: string, failure: Failure, cause?: unknown) {
    super(
      failure.stored === false
        ? `Could not publish to channel "${channel}": ${failure.reason}. The event was not stored.`
        : `Could not confirm the publish to channel "${channel}": ${failure.reason}. ` +
            "The event may or may not have been stored.",
      cause === undefined ? undefined : { cause },
    );
    this.name = "RedisPublishError";
    this.channel = channel;
    this.stored = failure.stored;
  }
}
