import type { Request, Response } from "express";
import { Channel, sse } from "@sluice/express-sse";
import { endStreams, type Feed, type FeedContext, type Routes } from "./feed";
import { BODY_ERRORS, BODY_LIMIT, asObject, jsonBody, trimmedWithin } from "./json-body";

/** A chat message as published on the channel (the unnamed `message` event). */
export interface ChatMessage {
  user: string;
  text: string;
  /** When the server accepted it (ISO 8601). */
  at: string;
}

export const USER_MAX = 32;
export const TEXT_MAX = 500;
export { BODY_LIMIT };

/** The exact JSON errors of `POST /api/chat`, so the page and the tests share one wording. */
export const CHAT_ERRORS = {
  ...BODY_ERRORS,
  notObject: "the body must be a JSON object with user and text",
  user: `user must be a string of 1 to ${USER_MAX} characters`,
  text: `text must be a string of 1 to ${TEXT_MAX} characters`,
  closed: "the chat is closed",
  unavailable: "the message could not be stored; try again",
} as const;

type Checked = { ok: true; user: string; text: string } | { ok: false; error: string };

/**
 * Checks a parsed body. Both fields are trimmed, then counted in Unicode code points (an emoji is
 * one character, as a person counts it, not two UTF-16 units).
 */
export function checkChatMessage(body: unknown): Checked {
  const fields = asObject(body);
  if (fields === undefined) return { ok: false, error: CHAT_ERRORS.notObject };
  const { user, text } = fields;
  const u = trimmedWithin(user, USER_MAX);
  if (u === undefined) return { ok: false, error: CHAT_ERRORS.user };
  const t = trimmedWithin(text, TEXT_MAX);
  if (t === undefined) return { ok: false, error: CHAT_ERRORS.text };
  return { ok: true, user: u, text: t };
}

export interface ChatFeed extends Feed {
  readonly channel: Channel<{ message: ChatMessage }>;
}

/**
 * `GET /api/chat`: a `Channel` (history of 1000 messages), resumable with `Last-Event-ID`.
 * `POST /api/chat` with `{"user","text"}` as JSON: `202 {"id"}`, or a JSON `{"error"}` with 400
 * (invalid body), 413 (over 4kb), 415 (not JSON), 503 (closed).
 *
 * User text is sent as JSON event data, and the library frames data line by line, so no text can
 * end an event early or add a field: `"hi\n\nevent: admin"` arrives as one `message`.
 */
export function mountChat(routes: Routes, { sse: sseOptions, adapter }: FeedContext): ChatFeed {
  const events = sse(sseOptions);
  const channel = new Channel<{ message: ChatMessage }>("chat", {
    history: { max: 1000 },
    ...(adapter === undefined ? {} : { adapter }),
  });

  routes.get("/api/chat", events, (_req, res) => channel.subscribe(res));

  routes.post("/api/chat", jsonBody, async (req: Request, res: Response) => {
    const checked = checkChatMessage(req.body);
    if (!checked.ok) {
      res.status(400).json({ error: checked.error });
      return;
    }
    const { user, text } = checked;
    try {
      const id = await channel.publish({ user, text, at: new Date().toISOString() });
      res.status(202).json({ id });
    } catch (err) {
      // Not stored (the channel is closed, or Redis is unreachable): say so, never drop it.
      res
        .status(503)
        .set("Retry-After", "2")
        .json({ error: channel.closed ? CHAT_ERRORS.closed : CHAT_ERRORS.unavailable });
      if (!channel.closed) console.error("chat: publish failed:", (err as Error).message);
    }
  });

  return {
    stream: "chat",
    events,
    channel,
    async close() {
      await channel.close(); // ends its subscribers' streams
      endStreams(events);
    },
  };
}
