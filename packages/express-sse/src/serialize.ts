/**
 * The default serializer of `sse()` and `Channel`: `JSON.stringify`, with errors in the library's
 * words. V8's own ("Do not know how to serialize a BigInt", "Converting circular structure to
 * JSON") say neither which value nor what to do; these name the value and where it is.
 */

/**
 * `JSON.stringify(data)`. Throws a `TypeError` that names the value for a BigInt anywhere in the
 * data, a circular reference, or a symbol as the data; returns `undefined` for `undefined` and
 * functions (the caller's "must return a string" error covers them). An error thrown by a
 * `toJSON()` method reaches the caller as it is.
 */
export function jsonSerialize(data: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(data);
  } catch (error) {
    throw explain(data, error);
  }
  if (text === undefined && typeof data === "symbol") {
    throw new TypeError(
      `The serializer must return a string, got undefined (the data is a symbol, ` +
        `${String(data)}, and JSON.stringify returns undefined for symbols: send a string instead)`,
    );
  }
  return text as string;
}

/** V8's two JSON errors, told by their messages: a `toJSON()` could throw anything else. */
const V8_JSON_ERROR = /^(Do not know how to serialize a BigInt|Converting circular structure)/;

/** Our error for V8's, or `error` itself when it is not V8's (a throwing `toJSON()`). */
function explain(data: unknown, error: unknown): unknown {
  if (!(error instanceof TypeError) || !V8_JSON_ERROR.test(error.message)) return error;
  let culprit: Culprit | undefined;
  try {
    culprit = findCulprit(data);
  } catch {
    culprit = undefined; // a toJSON() that throws on its second call: keep V8's words
  }
  if (culprit === undefined) return error;
  const message =
    culprit.kind === "bigint"
      ? `Cannot serialize the event data: JSON has no BigInt, and ${where(culprit.path)} is ` +
        `${culprit.value}n (convert it to a string or a number first, or pass a serialize option)`
      : `Cannot serialize the event data: it is circular, ${where(culprit.path)} refers back to ` +
        `${culprit.target.length === 0 ? "the data itself" : culprit.target.join("")} (send a ` +
        "copy without the cycle, or pass a serialize option)";
  return new TypeError(message, { cause: error });
}

type Culprit =
  | { kind: "bigint"; path: string[]; value: bigint }
  | { kind: "circular"; path: string[]; target: string[] };

function where(path: readonly string[]): string {
  return path.length === 0 ? "the data" : path.join("");
}

const STOP = Symbol("stop");
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/**
 * Serializes `data` again with a replacer that follows the walk (JSON.stringify visits values
 * depth first, after `toJSON()`, with the object being serialized as `this`), keeping the chain
 * of objects being serialized, and stops at the first BigInt or cycle. Only runs after V8 failed.
 */
function findCulprit(data: unknown): Culprit | undefined {
  // The objects being serialized, outermost first, and the path of each.
  const chain: object[] = [];
  const paths: string[][] = [];
  let culprit: Culprit | undefined;
  try {
    JSON.stringify(data, function (this: object, key: string, value: unknown) {
      // `this` is the object whose property this is: unwind the chain to it (the root's holder
      // is a wrapper that is not in the chain).
      const at = chain.lastIndexOf(this);
      const parentPath = at === -1 ? [] : (paths[at] as string[]);
      chain.length = at + 1;
      paths.length = at + 1;
      const path =
        at === -1 ? [] : [...parentPath, Array.isArray(this) ? `[${key}]` : property(key)];
      if (typeof value === "bigint") {
        culprit = { kind: "bigint", path, value };
        throw STOP;
      }
      if (value !== null && typeof value === "object") {
        const seen = chain.indexOf(value);
        if (seen !== -1) {
          culprit = { kind: "circular", path, target: paths[seen] as string[] };
          throw STOP;
        }
        chain.push(value);
        paths.push(path);
      }
      return value;
    });
  } catch (error) {
    if (error !== STOP) throw error;
  }
  return culprit;
}

function property(key: string): string {
  return IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}
