/**
 * Signed tokens: `base64url(payload).base64url(HMAC-SHA256(secret, base64url(payload)))`, with
 * payload `{"sub":"<user>","exp":<epoch ms>,"aud":"<audience>"}`. The session cookie (audience
 * `session`) and the stream token (audience `stream`) share this one format and one key; the
 * audience is what keeps a stream token from working as a session, and the other way round.
 *
 * Stateless on purpose: any replica with the same secret verifies a token another one minted, and
 * nothing is stored per token. The price is that a token cannot be revoked before it expires,
 * which is why stream tokens live for a minute.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export type Audience = "session" | "stream";

export interface Claims {
  /** The user. */
  sub: string;
  /** Expiry, epoch milliseconds. */
  exp: number;
  aud: Audience;
}

export type Verified =
  | { ok: true; claims: Claims }
  | { ok: false; reason: "missing" | "malformed" | "signature" | "audience" | "expired" };

/** Shortest secret accepted: 32 characters (a random one is 43: 32 bytes in base64url). */
export const MIN_SECRET_LENGTH = 32;

/**
 * Longest token considered. A real one is under 400 characters (32 characters of name are at most
 * 192 bytes of JSON, all escaped control characters); anything longer is refused before any
 * decoding or hashing.
 */
const MAX_TOKEN_LENGTH = 1024;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const SIGNATURE_BYTES = 32; // SHA-256

/** A random secret for one process: tokens it signs verify nowhere else. */
export function randomSecret(): string {
  return randomBytes(32).toString("base64url");
}

/** Throws unless `secret` is a string of at least {@link MIN_SECRET_LENGTH} characters. */
export function checkSecret(secret: unknown): string {
  if (typeof secret !== "string" || secret.length < MIN_SECRET_LENGTH) {
    throw new RangeError(
      `The stream secret must be a string of at least ${MIN_SECRET_LENGTH} characters` +
        (typeof secret === "string" ? `, got ${secret.length}` : ""),
    );
  }
  return secret;
}

export function signToken(secret: string, claims: Claims): string {
  // Fixed key order, so the same claims always make the same token.
  const payload = Buffer.from(
    JSON.stringify({ sub: claims.sub, exp: claims.exp, aud: claims.aud }),
  ).toString("base64url");
  return `${payload}.${mac(secret, payload).toString("base64url")}`;
}

/**
 * Checks, in this order: shape, signature (constant time), then the claims (audience, expiry).
 * The payload is only parsed once the signature holds, so nothing an attacker wrote is ever
 * interpreted.
 */
export function verifyToken(
  secret: string,
  token: unknown,
  audience: Audience,
  now: number = Date.now(),
): Verified {
  if (token === undefined || token === "") return { ok: false, reason: "missing" };
  if (typeof token !== "string" || token.length > MAX_TOKEN_LENGTH) {
    return { ok: false, reason: "malformed" };
  }
  const dot = token.indexOf(".");
  if (dot === -1) return { ok: false, reason: "malformed" };
  const payload = token.slice(0, dot);
  const signature = token.slice(dot + 1);
  if (!BASE64URL.test(payload) || !BASE64URL.test(signature)) {
    return { ok: false, reason: "malformed" };
  }
  const given = Buffer.from(signature, "base64url");
  // Re-encoding must give the same text: base64url decoding ignores stray trailing bits, and a
  // token should have exactly one spelling.
  if (given.length !== SIGNATURE_BYTES || given.toString("base64url") !== signature) {
    return { ok: false, reason: "malformed" };
  }
  if (!timingSafeEqual(given, mac(secret, payload))) return { ok: false, reason: "signature" };

  // Signed by us, so well-formed unless the secret leaked; checked anyway, cheaply.
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  } catch {
    return { ok: false, reason: "malformed" };
  }
  const { sub, exp, aud } = (claims ?? {}) as Record<string, unknown>;
  if (typeof sub !== "string" || sub === "" || !Number.isSafeInteger(exp)) {
    return { ok: false, reason: "malformed" };
  }
  if (aud !== audience) return { ok: false, reason: "audience" };
  if ((exp as number) <= now) return { ok: false, reason: "expired" };
  return { ok: true, claims: { sub, exp: exp as number, aud: audience } };
}

function mac(secret: string, payload: string): Buffer {
  return createHmac("sha256", secret).update(payload).digest();
}
