import type { NextFunction, Request, Response } from "express";
import { Channel, Frame, sse, type SseStream } from "@sluice/express-sse";
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
/** At most this many names in a `members` event; `total` counts everyone. */
export const MEMBERS_SHOWN = 50;
/** At most one `members` event per this many ms and replica, however many come and go. */
export const MEMBERS_INTERVAL_MS = 250;

/** The data of `event: members` on `/api/chat`: who is in the chat, in every replica. */
export interface ChatMembers {
  /** Clients connected to the chat, named or not. */
  total: number;
  /** The names of up to {@link MEMBERS_SHOWN} named clients (a name twice: two tabs). */
  users: string[];
}
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
  /** The members as last sent to this replica's clients (undefined before the first). */
  readonly members: ChatMembers | undefined;
}

/**
 * `?user=` of `GET /api/chat`: absent or empty joins without a name; otherwise 1 to
 * {@link USER_MAX} characters after trimming, as in a message, or `400 {"error"}` (before the
 * stream opens, so an EventSource stops instead of retrying a name that will never do).
 */
function chatUser(req: Request, res: Response, next: NextFunction): void {
  const raw = req.query["user"];
  if (raw === undefined || raw === "") {
    res.locals["user"] = undefined;
    next();
    return;
  }
  const user = trimmedWithin(raw, USER_MAX);
  if (user === undefined) {
    res.status(400).json({ error: CHAT_ERRORS.user });
    return;
  }
  res.locals["user"] = user;
  next();
}

/**
 * `GET /api/chat`: a `Channel` (history of 1000 messages), resumable with `Last-Event-ID` (or
 * `?lastEventId=`, for a page that reopens the stream under a new name). `?user=ann` joins the
 * chat's presence as `{ user: "ann" }`; every client gets `event: members` ({@link ChatMembers})
 * when it connects and whenever someone comes or goes, in any replica (the channel's `members()`,
 * read at most once per {@link MEMBERS_INTERVAL_MS} per replica: one `HGETALL` on Redis).
 *
 * `POST /api/chat` with `{"user","text"}` as JSON: `202 {"id"}`, or a JSON `{"error"}` with 400
 * (invalid body), 413 (over 4kb), 415 (not JSON), 503 (closed).
 *
 * User text is sent as JSON event data, and the library frames data line by line, so no text can
 * end an event early or add a field: `"hi\n\nevent: admin"` arrives as one `message`.
 */
export function mountChat(
  routes: Routes,
  { sse: sseOptions, adapter, onChannelError }: FeedContext,
): ChatFeed {
  const events = sse(sseOptions);
  const channel = new Channel<{ message: ChatMessage }>("chat", {
    history: { max: 1000 },
    lastEventIdQuery: "lastEventId",
    ...(adapter === undefined ? {} : { adapter }),
  });
  channel.on("error", onChannelError);
  const members = membersView(channel);

  routes.get("/api/chat", chatUser, events, (_req, res) => {
    const user = res.locals["user"] as string | undefined;
    void channel.subscribe(res, user === undefined ? {} : { member: { user } });
    members.greet(res.sse);
  });

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
    get members() {
      return members.current;
    },
    async close() {
      members.close();
      await channel.close(); // ends its subscribers' streams
      endStreams(events);
    },
  };
}

/**
 * Keeps this replica's chat clients told who is in the chat: on every join, leave or count change
 * (from any replica), reads `channel.members()` once the interval allows and, if the list changed,
 * sends one `members` frame to every local client. A client that connects gets the last list at
 * once (its own arrival follows within the interval).
 */
function membersView(channel: Channel<{ message: ChatMessage }>) {
  const streams = new Set<SseStream>();
  let current: ChatMembers | undefined;
  let frame: Frame | undefined;
  let timer: NodeJS.Timeout | undefined;
  let reading = false;
  let again = false;
  let closed = false;

  const read = async (): Promise<void> => {
    if (reading) {
      again = true; // read once more when this one is done: it may predate the change
      return;
    }
    reading = true;
    try {
      const { total, members } = await channel.members({ limit: MEMBERS_SHOWN });
      const users = (members as Array<{ user: string }>).map((m) => m.user);
      const next: ChatMembers = { total, users };
      if (closed || JSON.stringify(next) === JSON.stringify(current)) return;
      current = next;
      frame = Frame.event(JSON.stringify(next), { event: "members" });
      for (const stream of streams) stream.sendFrame(frame);
    } catch (err) {
      if (!closed) console.error("chat: reading the members failed:", (err as Error).message);
    } finally {
      reading = false;
      if (again && !closed) {
        again = false;
        schedule();
      }
    }
  };
  const schedule = (): void => {
    if (timer !== undefined || closed) return;
    timer = setTimeout(() => {
      timer = undefined;
      void read();
    }, MEMBERS_INTERVAL_MS);
  };

  channel.on("join", (stream) => streams.add(stream));
  channel.on("leave", (stream) => streams.delete(stream));
  channel.on("count", schedule);
  channel.on("member:join", schedule);
  channel.on("member:leave", schedule);

  return {
    get current() {
      return current;
    },
    /** Sends the last list to a client that just connected. */
    greet(stream: SseStream): void {
      if (frame !== undefined && !stream.closed) stream.sendFrame(frame);
    },
    close(): void {
      closed = true;
      clearTimeout(timer);
      timer = undefined;
    },
  };
}
