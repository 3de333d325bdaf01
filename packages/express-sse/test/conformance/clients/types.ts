/**
 * What every client adapter of the conformance matrix reports, in one shape: the client's own
 * events as it fires them (`open`, `error` with its `readyState` then, and each message event's
 * type, data and `lastEventId`), appended to a log in the order they happened.
 */

/** `EventSource.readyState` values. */
export const CONNECTING = 0;
export const OPEN = 1;
export const CLOSED = 2;

export type Observation =
  | { kind: "open" }
  | { kind: "event"; type: string; data: string; lastEventId: string }
  | { kind: "error"; readyState: number; message?: string }
  /**
   * The source's `readyState` changed without an event (seen by polling it): some clients close
   * themselves silently. Adapters of clients that always fire an event never report it.
   */
  | { kind: "state"; readyState: number };

/** One `EventSource` (or what stands for it) opened by an adapter. */
export interface ClientSession {
  /** What the client reported so far, in order; appended while it runs. */
  readonly log: Observation[];
  /** Closes the source (`EventSource#close()`): no more requests, no more reports. */
  close(): Promise<void>;
}

export interface ClientAdapter {
  /** Short name, used in test names and in the table of known deviations. */
  readonly name: ClientName;
  /** What exactly runs: package and version, or program. */
  readonly description: string;
  /**
   * Starts what the adapter needs (a browser, a child process); once per test file. `origin` is
   * the server's (a browser opens a page there, so that its sources are same-origin).
   */
  start(origin: string): Promise<void>;
  stop(): Promise<void>;
  /**
   * Opens `url`. `listen` are the event types to listen for: an `EventSource` only reports the
   * types it has listeners for; parser-based clients report every event anyway.
   */
  open(url: string, listen: readonly string[]): Promise<ClientSession>;
}

export type ClientName =
  "eventsource" | "undici" | "node" | "eventsource-parser" | "chromium" | "python";
