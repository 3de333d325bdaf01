import type { NextFunction, Request, Response } from "express";
import { sse } from "@sluice/express-sse";
import { requireSession, authenticatedUser } from "../auth/session";
import { verifyToken } from "../auth/token";
import { TEXT_MAX, USER_MAX } from "./chat";
import { endStreams, type Feed, type FeedContext, type Routes } from "./feed";
import { BODY_ERRORS, asObject, jsonBody, trimmedWithin } from "./json-body";
import { UserChannels, type Notification } from "./user-channels";

/** The exact JSON errors of `GET /api/me/events` (all 401 but `twice`, 400, and `busy`, 503). */
export const STREAM_ERRORS = {
  missing:
    "a stream token is required: Authorization: Bearer <token> (or ?token=) from POST /api/stream-token",
  twice: "send the stream token once: in the Authorization header or in ?token=, not both",
  invalid: "the stream token is invalid",
  expired: "the stream token has expired; get a new one from POST /api/stream-token",
  busy: "too many private streams are open; try again later",
} as const;

/** The exact JSON errors of `POST /api/me/notify` (after the session check). */
export const NOTIFY_ERRORS = {
  ...BODY_ERRORS,
  notObject: "the body must be a JSON object with to and text",
  to: `to must be a string of 1 to ${USER_MAX} characters`,
  text: `text must be a string of 1 to ${TEXT_MAX} characters`,
  busy: STREAM_ERRORS.busy,
  unavailable: "the notification could not be stored; try again",
} as const;

export interface PrivateOptions extends FeedContext {
  /** Verifies stream tokens and session cookies. */
  secret: string;
  /** See `UserChannels`. */
  idleMs: number;
  maxChannels: number;
  /** `maxLifetime` of each private stream (ms). */
  lifetimeMs: number;
}

export interface PrivateFeed extends Feed {
  readonly channels: UserChannels;
}

/**
 * `GET /api/me/events` with `Authorization: Bearer <stream token>` (the page, through
 * `@sluice/client`) or `?token=<stream token>` (`EventSource`, which cannot send headers: the
 * README's DevTools snippet, curl): the signed-in user's own `Channel`, resumable with
 * `Last-Event-ID` or `?lastEventId=`. A missing, forged, tampered, expired or malformed token gets
 * `401` before the stream is touched: the page's client then mints a new token and reconnects
 * (its `onUnauthorized`), and `EventSource`, for which any status but 200 is final, stops instead
 * of retrying a token that will never work.
 *
 * `POST /api/me/notify` (session cookie) `{"to","text"}`: `202 {"id"}`, published as
 * `event: notification` `{"from","text","at"}` on the recipient's channel only.
 *
 * Streams live at most `lifetimeMs` (15 min by default, ×0.8–1.0): the browser reconnects with
 * the same URL, so once its token has expired it must sign the next connection afresh. Logging
 * out does not end open streams (tokens are stateless); that lifetime bounds how long they last.
 */
export function mountPrivate(
  routes: Routes,
  {
    sse: sseOptions,
    adapter,
    secret,
    idleMs,
    maxChannels,
    lifetimeMs,
    onChannelError,
  }: PrivateOptions,
): PrivateFeed {
  const events = sse(sseOptions);
  const channels = new UserChannels({
    adapter,
    idleMs,
    max: maxChannels,
    maxLifetime: lifetimeMs,
    onError: onChannelError,
  });

  // The token check runs before sse(): a refused request never gets near a stream.
  routes.get("/api/me/events", requireStreamToken(secret), events, (_req, res) => {
    const channel = channels.acquire(authenticatedUser(res));
    if (channel === undefined) {
      res.status(503).set("Retry-After", "30").json({ error: STREAM_ERRORS.busy });
      return;
    }
    return channel.subscribe(res);
  });

  routes.post(
    "/api/me/notify",
    requireSession(secret),
    jsonBody,
    async (req: Request, res: Response) => {
      const fields = asObject(req.body);
      if (fields === undefined) {
        res.status(400).json({ error: NOTIFY_ERRORS.notObject });
        return;
      }
      const to = trimmedWithin(fields["to"], USER_MAX);
      if (to === undefined) {
        res.status(400).json({ error: NOTIFY_ERRORS.to });
        return;
      }
      const text = trimmedWithin(fields["text"], TEXT_MAX);
      if (text === undefined) {
        res.status(400).json({ error: NOTIFY_ERRORS.text });
        return;
      }
      // Opened if the recipient has no channel here: with Redis their stream may be on another
      // replica, and in memory it keeps the notification for a client that is reconnecting.
      const channel = channels.acquire(to);
      if (channel === undefined) {
        res.status(503).set("Retry-After", "30").json({ error: NOTIFY_ERRORS.busy });
        return;
      }
      const notification: Notification = {
        from: authenticatedUser(res),
        text,
        at: new Date().toISOString(),
      };
      try {
        const id = await channel.publish(notification, { event: "notification" });
        res.status(202).json({ id });
      } catch (err) {
        // Not stored (Redis unreachable, or the app is closing): say so, never drop it silently.
        res.status(503).set("Retry-After", "2").json({ error: NOTIFY_ERRORS.unavailable });
        if (!channel.closed) console.error("notify: publish failed:", (err as Error).message);
      }
    },
  );

  return {
    stream: "private",
    events,
    channels,
    async close() {
      await channels.close(); // ends their subscribers' streams
      endStreams(events);
    },
  };
}

/** Where a request's stream token came from, or why it has none that can be checked. */
export type StreamTokenSource =
  /** The `Authorization: Bearer` header's token, or the `token` query parameter (any shape). */
  | { kind: "token"; token: unknown }
  /** Both a header and a query token: RFC 6750 (section 2) allows one method per request. */
  | { kind: "both" }
  /** An `Authorization` header of another scheme, or `Bearer` without a token. */
  | { kind: "malformed" };

/**
 * The token of a request, as RFC 6750 sends it: the `Authorization: Bearer` header (scheme case
 * insensitive) or the `token` query parameter. Both at once is refused (it would let one request
 * carry two identities); a header of another scheme, or a bearer header without a token, is a
 * malformed token, not a missing one.
 */
export function streamTokenOf(req: Request): StreamTokenSource {
  const header = req.headers.authorization;
  const query: unknown = req.query["token"];
  if (header === undefined) return { kind: "token", token: query };
  if (query !== undefined) return { kind: "both" };
  const match = /^Bearer +(\S+) *$/i.exec(header);
  return match ? { kind: "token", token: match[1] } : { kind: "malformed" };
}

/**
 * Middleware: the request's stream token (header or query) must be valid; its user goes to
 * `res.locals.user`. Otherwise `401`, `Cache-Control: no-store` and a `WWW-Authenticate`
 * challenge (RFC 6750 style); both a header and a query token: `400` (`invalid_request`).
 * Forged, tampered, wrong-audience and malformed tokens share one answer: which check failed is
 * of no use to a client and of some use to an attacker. Expiry is told apart, as it is the one a
 * client recovers from (by minting a new token).
 */
function requireStreamToken(secret: string) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const source = streamTokenOf(req);
    if (source.kind === "both") {
      res
        .status(400)
        .set({
          "Cache-Control": "no-store",
          "WWW-Authenticate": 'Bearer realm="stream", error="invalid_request"',
        })
        .json({ error: STREAM_ERRORS.twice });
      return;
    }
    const checked =
      source.kind === "token"
        ? verifyToken(secret, source.token, "stream")
        : ({ ok: false, reason: "malformed" } as const);
    if (checked.ok) {
      res.locals["user"] = checked.claims.sub;
      next();
      return;
    }
    const error =
      checked.reason === "missing"
        ? STREAM_ERRORS.missing
        : checked.reason === "expired"
          ? STREAM_ERRORS.expired
          : STREAM_ERRORS.invalid;
    res
      .status(401)
      .set({
        "Cache-Control": "no-store",
        "WWW-Authenticate":
          checked.reason === "missing"
            ? 'Bearer realm="stream"'
            : 'Bearer realm="stream", error="invalid_token"',
      })
      .json({ error });
  };
}
