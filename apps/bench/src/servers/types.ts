import type { Payload } from "../payload";

/** One way of serving a broadcast: a library or the hand-written loop it is measured against. */
export interface ServerVariant {
  /** The port it listens on (127.0.0.1). */
  readonly port: number;
  /** The event stream's URL path. */
  readonly path: string;
  /** Frames each client gets when it connects, before any event (the library's defaults). */
  readonly preludeFrames: number;
  /** Sends one event to every connected client. */
  broadcast(payload: Payload): void;
  /** Clients registered now (connected and subscribed). */
  clients(): number;
  close(): Promise<void>;
}

export type StartVariant = (port: number) => Promise<ServerVariant>;
