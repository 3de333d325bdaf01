import http from "node:http";
import { StringDecoder } from "node:string_decoder";
import { createParser, type ParsedEvent } from "@sluice/express-sse/testing";

/** An open event stream that records every event until closed. */
export interface StreamClient {
  readonly events: ParsedEvent[];
  /** Resolves once the response headers arrived (the server has subscribed it). */
  readonly opened: Promise<number>;
  /** `true` once the server ended the response or the connection failed. */
  readonly ended: boolean;
  close(): void;
}

const open = new Set<StreamClient>();

/**
 * Opens `url` as an event stream (optionally with a `Last-Event-ID`) and records its events. It
 * never reconnects by itself: tests decide when and where a client comes back.
 */
export function openStream(url: string, lastEventId?: string): StreamClient {
  const events: ParsedEvent[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event) });
  const decoder = new StringDecoder("utf8");
  let ended = false;
  const headers: Record<string, string> = { Accept: "text/event-stream" };
  if (lastEventId !== undefined) headers["Last-Event-ID"] = lastEventId;
  let request: http.ClientRequest;
  const opened = new Promise<number>((resolve, reject) => {
    request = http.get(url, { headers, agent: false }, (res) => {
      resolve(res.statusCode ?? 0);
      res.on("data", (chunk: Buffer) => parser.feed(decoder.write(chunk)));
      res.on("end", () => (ended = true));
      res.on("error", () => (ended = true));
    });
    request.on("error", (err) => {
      ended = true;
      reject(err);
    });
  });
  opened.catch(() => undefined);
  const client: StreamClient = {
    events,
    opened,
    get ended() {
      return ended;
    },
    close: () => {
      open.delete(client);
      request.destroy();
    },
  };
  open.add(client);
  return client;
}

/** Closes every stream opened by `openStream` (for `afterEach`). */
export function closeAllStreams(): void {
  for (const client of [...open]) client.close();
}

/** The data of each event, in order. */
export const dataOf = (client: StreamClient): string[] => client.events.map((e) => e.data);
