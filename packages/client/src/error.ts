/**
 * What went wrong, as `error` events carry it:
 *
 * - `network`: the request failed or the stream broke (retried with backoff);
 * - `timeout`: nothing came from the server for `heartbeatTimeout` ms, so the connection was
 *   dropped as dead (retried with backoff, with `Last-Event-ID`);
 * - `http`: a status other than `200` or `204` (`429` and `5xx` are retried, `Retry-After`
 *   honoured; `401` and `403` go to `onUnauthorized`; anything else is fatal);
 * - `content-type`: a successful response that is not `text/event-stream` (fatal);
 * - `request`: the request could not be built: the `url`, `headers` or `body` function threw, or
 *   `fetch` refused what they returned (fatal);
 * - `invalid-retry`: a `retry:` field that is not a number of ms; it is ignored, as the spec
 *   says, and the stream goes on;
 * - `parse`: the `parse` option threw on an event's data; that event is skipped.
 */
export type SseErrorCode =
  "network" | "timeout" | "http" | "content-type" | "request" | "invalid-retry" | "parse";

export class SseError extends Error {
  override name = "SseError";

  constructor(
    message: string,
    /** What went wrong (see {@link SseErrorCode}). */
    readonly code: SseErrorCode,
    /** `true` when the client stopped because of it; `false` when it goes on or retries. */
    readonly fatal: boolean,
    /** The HTTP status, for `http` and `content-type` errors. */
    readonly status?: number,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
  }
}
