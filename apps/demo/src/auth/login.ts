/**
 * A deliberately tiny sign-in, enough to show private streams: anyone may be anyone (there are no
 * passwords), but only with the session cookie can one read one's own stream or mint tokens for it.
 *
 * - `POST /api/login` `{"user"}` → `200 {"user","token","expiresAt"}` and the session cookie.
 * - `POST /api/logout` → `204`, and the cookie is cleared.
 * - `POST /api/stream-token` (cookie) → `200 {"user","token","expiresAt"}`: a fresh stream token.
 *
 * The stream token is what `GET /api/me/events` accepts, as `Authorization: Bearer` (the page's
 * `@sluice/client`) or `?token=` (`EventSource`, which cannot send headers; a URL ends up in
 * access logs and browser history). Either way it expires quickly (60 s by default): a client
 * mints another when a reconnect is refused with `401`.
 */
import type { Request, Response } from "express";
import { USER_MAX } from "../feeds/chat";
import type { Routes } from "../feeds/feed";
import { BODY_ERRORS, asObject, jsonBody, trimmedWithin } from "../feeds/json-body";
import {
  SESSION_COOKIE,
  authenticatedUser,
  clearSessionCookie,
  readCookie,
  requireSession,
  setSessionCookie,
} from "./session";
import { signToken } from "./token";

/** The exact JSON errors of `POST /api/login`. */
export const LOGIN_ERRORS = {
  ...BODY_ERRORS,
  notObject: "the body must be a JSON object with user",
  user: `user must be a string of 1 to ${USER_MAX} characters`,
} as const;

/** What `POST /api/login` and `POST /api/stream-token` answer. */
export interface StreamTokenResponse {
  user: string;
  /** `base64url(payload).base64url(hmac)`, for `GET /api/me/events` (Bearer header or `?token=`). */
  token: string;
  /** When the token stops opening streams (ISO 8601); streams it opened stay open. */
  expiresAt: string;
}

export interface LoginOptions {
  secret: string;
  /** Lifetime of a stream token (ms). */
  tokenTtlMs: number;
  /** Lifetime of the session cookie (ms). */
  sessionTtlMs: number;
}

export function mountLogin(
  routes: Routes,
  { secret, tokenTtlMs, sessionTtlMs }: LoginOptions,
): void {
  const sendStreamToken = (res: Response, user: string): void => {
    const exp = Date.now() + tokenTtlMs;
    const body: StreamTokenResponse = {
      user,
      token: signToken(secret, { sub: user, exp, aud: "stream" }),
      expiresAt: new Date(exp).toISOString(),
    };
    // A credential: no cache, shared or private, may keep it.
    res.set("Cache-Control", "no-store").json(body);
  };

  routes.post("/api/login", jsonBody, (req: Request, res: Response) => {
    const fields = asObject(req.body);
    if (fields === undefined) {
      res.status(400).json({ error: LOGIN_ERRORS.notObject });
      return;
    }
    const user = trimmedWithin(fields["user"], USER_MAX);
    if (user === undefined) {
      res.status(400).json({ error: LOGIN_ERRORS.user });
      return;
    }
    const session = signToken(secret, {
      sub: user,
      exp: Date.now() + sessionTtlMs,
      aud: "session",
    });
    setSessionCookie(req, res, session, sessionTtlMs);
    sendStreamToken(res, user);
  });

  // No valid session needed: signing out twice, or with an expired cookie, is still signing out.
  // But only a request that carries the cookie clears it: a cross-site form (which, SameSite=
  // Strict, carries none) cannot sign anyone out.
  routes.post("/api/logout", (req: Request, res: Response) => {
    if (readCookie(req, SESSION_COOKIE) !== undefined) clearSessionCookie(req, res);
    res.set("Cache-Control", "no-store").status(204).end();
  });

  routes.post("/api/stream-token", requireSession(secret), (_req: Request, res: Response) => {
    sendStreamToken(res, authenticatedUser(res));
  });
}
