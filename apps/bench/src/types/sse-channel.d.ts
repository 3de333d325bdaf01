// sse-channel ships no types; this covers what the benchmark uses.
declare module "sse-channel" {
  import type { IncomingMessage, ServerResponse } from "node:http";

  interface SseChannelOptions {
    history?: unknown[];
    historySize?: number;
    retryTimeout?: number;
    pingInterval?: number;
    jsonEncode?: boolean;
  }

  interface SseMessage {
    data?: unknown;
    id?: number;
    event?: string;
    retry?: number;
  }

  class SseChannel {
    constructor(options?: SseChannelOptions);
    addClient(req: IncomingMessage, res: ServerResponse, callback?: () => void): void;
    send(message: SseMessage | string, clients?: ServerResponse[]): void;
    getConnectionCount(): number;
    close(): void;
  }

  export = SseChannel;
}
