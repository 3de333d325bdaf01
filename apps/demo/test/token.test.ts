import crypto from "node:crypto";
import { checkSecret, randomSecret, signToken, verifyToken, type Claims } from "../src/auth/token";

const SECRET = "test-secret-0123456789-abcdefghijklmnop";
const NOW = 1_800_000_000_000;
const claims = (over: Partial<Claims> = {}): Claims => ({
  sub: "alice",
  exp: NOW + 60_000,
  aud: "stream",
  ...over,
});
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/**
 * The same token with the lowest bit of its last character flipped: 32 bytes take 43 characters,
 * whose last two bits are unused, so it decodes to the very same signature bytes.
 */
const strayBits = (token: string) =>
  token.slice(0, -1) + ALPHABET[ALPHABET.indexOf(token.slice(-1)) ^ 1];
const hmac = (secret: string, payload: string) =>
  crypto.createHmac("sha256", secret).update(payload).digest("base64url");

describe("signToken / verifyToken", () => {
  test("the format: base64url(payload).base64url(HMAC-SHA256 of the payload text)", () => {
    const token = signToken(SECRET, claims());
    const [payload, signature] = token.split(".");
    expect(token.split(".")).toHaveLength(2);
    expect(JSON.parse(Buffer.from(payload!, "base64url").toString())).toEqual({
      sub: "alice",
      exp: NOW + 60_000,
      aud: "stream",
    });
    expect(signature).toBe(hmac(SECRET, payload!));
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
  });

  test("a token verifies for its audience until it expires, not at or after exp", () => {
    const token = signToken(SECRET, claims());
    expect(verifyToken(SECRET, token, "stream", NOW)).toEqual({ ok: true, claims: claims() });
    expect(verifyToken(SECRET, token, "stream", NOW + 59_999).ok).toBe(true);
    expect(verifyToken(SECRET, token, "stream", NOW + 60_000)).toEqual({
      ok: false,
      reason: "expired",
    });
  });

  test("names survive the round trip whatever they contain", () => {
    for (const sub of ["🙂".repeat(32), "a.b", 'q"uote\\', "line\nbreak", "ünï"]) {
      const checked = verifyToken(SECRET, signToken(SECRET, claims({ sub })), "stream", NOW);
      expect(checked).toEqual({ ok: true, claims: claims({ sub }) });
    }
  });

  const forged = (() => {
    const payload = b64(claims());
    return `${payload}.${hmac("another-secret-0123456789-abcdefghijk", payload)}`;
  })();
  const tampered = (() => {
    const [, signature] = signToken(SECRET, claims()).split(".");
    return `${b64(claims({ sub: "mallory" }))}.${signature}`;
  })();
  const extended = (() => {
    const [, signature] = signToken(SECRET, claims()).split(".");
    return `${b64(claims({ exp: NOW + 3_600_000 }))}.${signature}`;
  })();
  const unsignedJson = `${b64({ sub: "alice", exp: NOW + 1, aud: "stream" })}.`;
  const good = signToken(SECRET, claims());
  // [what, token, reason]
  const refused: Array<[string, unknown, string]> = [
    ["absent", undefined, "missing"],
    ["empty", "", "missing"],
    ["signed with another secret", forged, "signature"],
    ["payload changed (another user), signature kept", tampered, "signature"],
    ["payload changed (later expiry), signature kept", extended, "signature"],
    [
      "a session token used as a stream token",
      signToken(SECRET, claims({ aud: "session" })),
      "audience",
    ],
    ["no dot", good.replace(".", ""), "malformed"],
    ["two dots", `${good}.x`, "malformed"],
    ["empty signature", unsignedJson, "malformed"],
    ["empty payload", `.${good.split(".")[1]}`, "malformed"],
    ["padding", `${good}=`, "malformed"],
    ["standard base64 characters", good.replace(/-|_/g, "+").replace(/^(.)/, "+"), "malformed"],
    ["a short signature", good.slice(0, -2), "malformed"],
    ["the signature spelled with its unused trailing bits set", strayBits(good), "malformed"],
    ["an array (?token=a&token=b)", ["a", "b"], "malformed"],
    ["a number", 42, "malformed"],
    ["2 KB long", `${"a".repeat(2000)}.${good.split(".")[1]}`, "malformed"],
    ["spaces", ` ${good}`, "malformed"],
  ];
  test.each(refused)("refused: %s", (_what, token, reason) => {
    expect(verifyToken(SECRET, token, "stream", NOW)).toEqual({ ok: false, reason });
  });

  test("a validly signed payload that is not the expected shape is malformed", () => {
    const sign = (payload: string) => `${payload}.${hmac(SECRET, payload)}`;
    const cases = [
      Buffer.from("not json").toString("base64url"),
      b64(null),
      b64({ exp: NOW + 1, aud: "stream" }),
      b64({ sub: "", exp: NOW + 1, aud: "stream" }),
      b64({ sub: 1, exp: NOW + 1, aud: "stream" }),
      b64({ sub: "alice", exp: "soon", aud: "stream" }),
      b64({ sub: "alice", exp: 1.5, aud: "stream" }),
    ];
    for (const payload of cases) {
      expect(verifyToken(SECRET, sign(payload), "stream", NOW)).toEqual({
        ok: false,
        reason: "malformed",
      });
    }
  });

  test("the signature is compared with crypto.timingSafeEqual", () => {
    const spy = jest.spyOn(crypto, "timingSafeEqual");
    try {
      verifyToken(SECRET, forged, "stream", NOW);
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
    }
  });

  test("secrets: random ones differ and are long enough; short ones are refused", () => {
    const a = randomSecret();
    expect(a).not.toBe(randomSecret());
    expect(checkSecret(a)).toBe(a);
    expect(() => checkSecret("x".repeat(31))).toThrow(
      new RangeError("The stream secret must be a string of at least 32 characters, got 31"),
    );
    expect(() => checkSecret(undefined)).toThrow(RangeError);
    const token = signToken(a, claims());
    expect(verifyToken(randomSecret(), token, "stream", NOW)).toEqual({
      ok: false,
      reason: "signature",
    });
  });
});
