import express, { type NextFunction, type Request, type Response } from "express";
import { Channel, sse } from "@sluice/express-sse";
import { endStreams, type Feed, type FeedContext, type Routes } from "./feed";

/** A chat message as published on the channel (the unnamed `message` event). */
export interface ChatMessage {
  user: string;
  text: string;
  /** When the server accepted it (ISO 8601). */
  at: string;
}

export const USER_MAX = 32;
export const TEXT_MAX = 500;
export const BODY_LIMIT = "4kb";

/** The exact JSON errors of `POST /api/chat`, so the page and the tests share one wording. */
export const CHAT_ERRORS = {
  contentType: "Content-Type must be application/json",
  charset: "the body must be UTF-8 JSON",
  encoding: "unsupported Content-Encoding",
  tooLarge: `the body must be at most ${BODY_LIMIT}`,
  malformed: "the body is not valid JSON",
  unreadable: "the body could not be read",
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
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return { ok: false, error: CHAT_ERRORS.notObject };
  }
  const { user, text } = body as Record<string, unknown>;
  const u = trimmedWithin(user, USER_MAX);
  if (u === undefined) return { ok: false, error: CHAT_ERRORS.user };
  const t = trimmedWithin(text, TEXT_MAX);
  if (t === undefined) return { ok: false, error: CHAT_ERRORS.text };
  return { ok: true, user: u, text: t };
}

function trimmedWithin(value: unknown, max: number): string | undefined {
  if (typeof value !== "string") return undefined;
  const trimmed = value.trim();
  const length = [...trimmed].length; // code points
  return length >= 1 && length <= max ? trimmed : undefined;
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

  // strict: false lets `null`, `"x"` or `3` parse, so they get the precise "must be a JSON
  // object" error below instead of a misleading "not valid JSON".
  const parseJson = express.json({ limit: BODY_LIMIT, strict: false });

  routes.post(
    "/api/chat",
    (req: Request, res: Response, next: NextFunction) => {
      // Checked on the header itself: req.is() answers null for an empty body, whatever its type.
      const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
      if (type !== "application/json") {
        res.status(415).json({ error: CHAT_ERRORS.contentType });
        return;
      }
      parseJson(req, res, (err?: unknown) => {
        if (err === undefined || err === null) next();
        else sendBodyError(res, err);
      });
    },
    async (req: Request, res: Response) => {
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
    },
  );

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

/** body-parser's errors (they carry a `type`) as JSON errors with the right status. */
function sendBodyError(res: Response, err: unknown): void {
  const type = (err as { type?: unknown }).type;
  switch (type) {
    case "entity.too.large":
      res.status(413).json({ error: CHAT_ERRORS.tooLarge });
      return;
    case "entity.parse.failed":
      res.status(400).json({ error: CHAT_ERRORS.malformed });
      return;
    case "charset.unsupported":
      res.status(415).json({ error: CHAT_ERRORS.charset });
      return;
    case "encoding.unsupported":
      res.status(415).json({ error: CHAT_ERRORS.encoding });
      return;
    default: {
      const status = (err as { status?: unknown }).status;
      const code = typeof status === "number" && status >= 400 && status < 500 ? status : 400;
      res.status(code).json({ error: CHAT_ERRORS.unreadable });
    }
  }
}
