/**
 * Sign-in and notify helpers for the private-stream tests: they speak HTTP to the app the way the
 * page does (JSON bodies, the session cookie sent back), and check the happy-path answers.
 */
import request from "supertest";
import type { App } from "supertest/types";
import type { StreamTokenResponse } from "../../src/auth/login";

export interface Session extends StreamTokenResponse {
  /** `sluice_session=<value>`, ready for a Cookie header. */
  cookie: string;
  /** The whole Set-Cookie header the login answered with. */
  setCookie: string;
}

/** The `sluice_session` Set-Cookie header of a response, if any. */
export function sessionSetCookie(headers: Record<string, unknown>): string | undefined {
  const all = headers["set-cookie"];
  const list = Array.isArray(all) ? (all as string[]) : typeof all === "string" ? [all] : [];
  return list.find((c) => c.startsWith("sluice_session="));
}

/** `POST /api/login`; expects 200 and a session cookie. */
export async function login(app: App, user: string): Promise<Session> {
  const res = await request(app).post("/api/login").send({ user }).expect(200);
  const setCookie = sessionSetCookie(res.headers);
  if (setCookie === undefined) throw new Error("POST /api/login set no session cookie");
  return {
    ...(res.body as StreamTokenResponse),
    cookie: setCookie.split(";")[0]!,
    setCookie,
  };
}

/** `POST /api/stream-token` with the session cookie; expects 200 and returns the new token. */
export async function mintToken(app: App, cookie: string): Promise<string> {
  const res = await request(app).post("/api/stream-token").set("Cookie", cookie).expect(200);
  return (res.body as StreamTokenResponse).token;
}

/** `POST /api/me/notify` as the cookie's user; expects 202 and returns the event id. */
export async function notify(app: App, cookie: string, to: string, text: string): Promise<string> {
  const res = await request(app)
    .post("/api/me/notify")
    .set("Cookie", cookie)
    .send({ to, text })
    .expect(202);
  return (res.body as { id: string }).id;
}

/** The path of the private stream with `token` (and a last id in the query, if given). */
export function eventsPath(token: string, lastEventId?: string): string {
  const query = new URLSearchParams({ token });
  if (lastEventId !== undefined) query.set("lastEventId", lastEventId);
  return `/api/me/events?${query.toString()}`;
}
