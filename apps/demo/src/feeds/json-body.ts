import express, { type NextFunction, type Request, type Response } from "express";

/** Every JSON endpoint of the demo reads at most this much. */
export const BODY_LIMIT = "4kb";

/** The exact JSON errors about the body itself, shared by every JSON endpoint. */
export const BODY_ERRORS = {
  contentType: "Content-Type must be application/json",
  charset: "the body must be UTF-8 JSON",
  encoding: "unsupported Content-Encoding",
  tooLarge: `the body must be at most ${BODY_LIMIT}`,
  malformed: "the body is not valid JSON",
  unreadable: "the body could not be read",
} as const;

// strict: false lets `null`, `"x"` or `3` parse, so they get the precise "must be a JSON object"
// error of each endpoint instead of a misleading "not valid JSON".
const parseJson = express.json({ limit: BODY_LIMIT, strict: false });

/**
 * Middleware: a JSON body (at most 4kb, UTF-8) in `req.body`, or a JSON `{"error"}` with 400
 * (malformed), 413 (too large) or 415 (not JSON, another charset or encoding).
 */
export function jsonBody(req: Request, res: Response, next: NextFunction): void {
  // Checked on the header itself: req.is() answers null for an empty body, whatever its type.
  const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/json") {
    res.status(415).json({ error: BODY_ERRORS.contentType });
    return;
  }
  parseJson(req, res, (err?: unknown) => {
    if (err === undefined || err === null) next();
    else sendBodyError(res, err);
  });
}

/**
 * `value` trimmed, if it is a string of 1 to `max` characters after trimming; counted in Unicode
 * code points (an emoji is one character, as a person counts it, not two UTF-16 units).
 */
export function trimmedWithin(value: unknown, max: number): string | undefined {
  if (typeof value !== "string") return undefined;
  const trimmed = value.trim();
  const length = [...trimmed].length; // code points
  return length >= 1 && length <= max ? trimmed : undefined;
}

/** A parsed body that is a JSON object (not null, not an array), as a record. */
export function asObject(body: unknown): Record<string, unknown> | undefined {
  return body === null || typeof body !== "object" || Array.isArray(body)
    ? undefined
    : (body as Record<string, unknown>);
}

/** body-parser's errors (they carry a `type`) as JSON errors with the right status. */
function sendBodyError(res: Response, err: unknown): void {
  const type = (err as { type?: unknown }).type;
  switch (type) {
    case "entity.too.large":
      res.status(413).json({ error: BODY_ERRORS.tooLarge });
      return;
    case "entity.parse.failed":
      res.status(400).json({ error: BODY_ERRORS.malformed });
      return;
    case "charset.unsupported":
      res.status(415).json({ error: BODY_ERRORS.charset });
      return;
    case "encoding.unsupported":
      res.status(415).json({ error: BODY_ERRORS.encoding });
      return;
    default: {
      const status = (err as { status?: unknown }).status;
      const code = typeof status === "number" && status >= 400 && status < 500 ? status : 400;
      res.status(code).json({ error: BODY_ERRORS.unreadable });
    }
  }
}
