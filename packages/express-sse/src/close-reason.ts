/** Why a stream closes: the reason type, and the error a stream's signal is aborted with. */

/** Why a stream closed; found on `signal.reason.type` and passed to `onClose` callbacks. */
export type CloseReason =
  /** The client went away (closed the tab, lost the network, `EventSource#close()`). */
  | "client-disconnected"
  /** The server called `close()`. */
  | "closed"
  /** The client fell more than `maxBufferedBytes` behind and was disconnected. */
  | "max-buffered-bytes"
  /** `maxConnections` was reached; the client got 503 + `Retry-After`. */
  | "max-connections"
  /** A `HEAD` request: headers were sent and the response ended, as HTTP requires. */
  | "head-request"
  /** The stream was closed by a graceful shutdown. */
  | "shutdown"
  /** The stream reached its `maxLifetime` and was closed so the client reconnects. */
  | "max-lifetime";

/** The `reason` of an aborted `res.sse.signal`: an `Error` whose `type` says why. */
export class StreamClosedError extends Error {
  readonly type: CloseReason;
  constructor(type: CloseReason) {
    super(CLOSE_MESSAGES[type]);
    this.name = "StreamClosedError";
    this.type = type;
  }
}

const CLOSE_MESSAGES: Record<CloseReason, string> = {
  "client-disconnected": "The client disconnected",
  closed: "The stream was closed by the server",
  "max-buffered-bytes": "The client was too slow: its unsent data passed maxBufferedBytes",
  "max-connections": "Too many open streams: maxConnections was reached",
  "head-request": "HEAD request: no body is sent",
  shutdown: "The server is shutting down",
  "max-lifetime": "The stream reached its maxLifetime",
};
