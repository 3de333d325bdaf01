/**
 * The session cookie: a signed token (audience `session`, see ./token.ts) in an HttpOnly,
 * SameSite=Strict cookie scoped to /api.
 *
 * - HttpOnly: the page's script never sees it, so an injected script cannot steal it (it can
 *   still mint stream tokens while it runs, which is why those expire in a minute).
 * - SameSite=Strict: no other site can make the browser send it, so a cross-site form or fetch
 *   cannot act as the user (no CSRF token needed for these JSON endpoints).
 * - Path=/api: it travels with API calls only, not with the page and its script.
 * - Secure when the request came over HTTPS (directly, or as nginx's X-Forwarded-Proto says):
 *   the demo also runs on plain http://localhost, where a Secure cookie would not be sent back. A
 *   forged header can only add Secure, never remove it from a real HTTPS request.
 */
import type { NextFunction, Request, Response } from "express";
import { verifyToken } from "./token";

export const SESSION_COOKIE = "sluice_session";

/** The exact JSON errors of the cookie-authenticated endpoints. */
export const SESSION_ERRORS = {
  signIn: "sign in first: POST /api/login",
  invalid: "the session is invalid or has expired; sign in again",
} as const;

/** The value of cookie `name` in the request's Cookie header, if any (the first one). */
export function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (header === undefined) return undefined;
  for (const pair of header.split(";")) {
    const eq = pair.indexOf("=");
    if (eq === -1 || pair.slice(0, eq).trim() !== name) continue;
    const value = pair.slice(eq + 1).trim();
    try {
      return decodeURIComponent(value);
    } catch {
      return value; // not %-encoded by us: verification will refuse it
    }
  }
  return undefined;
}

function cookieOptions(req: Request) {
  const proto = String(req.headers["x-forwarded-proto"] ?? "")
    .split(",")[0]!
    .trim();
  return {
    httpOnly: true,
    sameSite: "strict",
    path: "/api",
    secure: req.secure || proto === "https",
  } as const;
}

export function setSessionCookie(req: Request, res: Response, token: string, ttlMs: number): void {
  res.cookie(SESSION_COOKIE, token, { ...cookieOptions(req), maxAge: ttlMs });
}

export function clearSessionCookie(req: Request, res: Response): void {
  res.clearCookie(SESSION_COOKIE, cookieOptions(req));
}

/** The user `requireSession` (or the stream-token check) found, kept in `res.locals`. */
export function authenticatedUser(res: Response): string {
  return res.locals["user"] as string;
}

/**
 * Middleware: the request must carry a valid session cookie; its user goes to `res.locals.user`
 * (read it with `authenticatedUser(res)`). Otherwise `401` with a JSON error, before any body is read.
 */
export function requireSession(secret: string) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const checked = verifyToken(secret, readCookie(req, SESSION_COOKIE), "session");
    if (checked.ok) {
      res.locals["user"] = checked.claims.sub;
      next();
      return;
    }
    // A cookie that no longer works is cleared, so the browser stops sending it.
    if (checked.reason !== "missing") clearSessionCookie(req, res);
    res
      .status(401)
      .set("Cache-Control", "no-store")
      .json({
        error: checked.reason === "missing" ? SESSION_ERRORS.signIn : SESSION_ERRORS.invalid,
      });
  };
}
