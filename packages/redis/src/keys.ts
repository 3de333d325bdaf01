/**
 * Key names and hash slots. Pure: no I/O.
 *
 * A channel has two keys and one pub/sub channel, all in ONE hash slot of a Redis Cluster (the
 * channel's name is their hash tag), and different channels spread over the slots:
 *
 * - `<prefix>{<name>}`: the stream holding the channel's history;
 * - `<prefix>{<name>}:meta`: a hash with the id of the newest event ever published (`l`) and of
 *   the first one since the hash was created (`f`). It outlives the stream when history expires,
 *   so a client resuming from the newest id after the stream expired is known to have missed
 *   nothing, an id between the two is known to be this channel's and gone (`too-old`), and
 *   announcements carry the id before theirs (scripts.ts);
 * - pub/sub channel `<prefix>{<name>}` (sharded pub/sub: same slot as the keys).
 *
 * Inside the braces, `%`, `{` and `}` of the name are percent-encoded, so that every name gives a
 * well-formed hash tag and two names never share keys.
 */

/** The default key prefix: channel "chat" lives in the stream `sluice:{chat}`. */
export const DEFAULT_PREFIX = "sluice:";

/** In a `u` regexp a surrogate pair is one code point, so this finds only lone surrogates. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** Validates the `prefix` option once, in the factory. */
export function resolvePrefix(prefix: unknown): string {
  if (prefix === undefined) return DEFAULT_PREFIX;
  if (typeof prefix !== "string") {
    throw new TypeError(`The "prefix" option must be a string, got ${typeof prefix}`);
  }
  if (prefix.includes("{") || prefix.includes("}")) {
    throw new TypeError(
      `The "prefix" option must not contain "{" or "}" (the channel name is the keys' hash tag), got ${JSON.stringify(prefix)}`,
    );
  }
  if (LONE_SURROGATE.test(prefix)) {
    throw new TypeError('The "prefix" option must be well-formed UTF-16 (no lone surrogates)');
  }
  return prefix;
}

/**
 * Checks a channel name at `open()`: Redis keys are bytes, and names are sent as UTF-8, so a name
 * with a lone surrogate would be stored under the same key as another name (both encode U+FFFD).
 */
export function validateChannelName(name: unknown): string {
  if (typeof name !== "string" || name === "") {
    throw new TypeError("A channel name must be a non-empty string");
  }
  if (LONE_SURROGATE.test(name)) {
    throw new TypeError(
      `Channel name ${JSON.stringify(name)} has a lone surrogate: Redis keys are UTF-8, so it cannot be stored exactly`,
    );
  }
  return name;
}

/** The stream key of channel `name`; also its pub/sub channel. */
export function streamKey(prefix: string, name: string): string {
  return flat(`${prefix}{${name.replace(/[%{}]/g, encodeChar)}}`);
}

/**
 * `text` as one flat string. A concatenation is a tree of pieces in V8, and a key kept for the
 * life of a channel is compared on every message addressed to it (a `Map` lookup compares the
 * contents): flat, that reads one object instead of walking three.
 */
export function flat(text: string): string {
  return Buffer.from(text, "utf8").toString("utf8");
}

/** The meta hash of the stream `stream` (first and last ids ever published). */
export function metaKey(stream: string): string {
  return flat(`${stream}:meta`);
}

function encodeChar(char: string): string {
  return char === "%" ? "%25" : char === "{" ? "%7B" : "%7D";
}

/** CRC16/XMODEM, as Redis Cluster uses it for key slots. */
const CRC_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : crc << 1;
    table[i] = crc & 0xffff;
  }
  return table;
})();

/** The Redis Cluster hash slot of `key` (0-16383), hash tags included. */
export function hashSlot(key: string): number {
  let bytes = Buffer.from(key);
  const open = bytes.indexOf(0x7b); // {
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1); // }
    if (close > open + 1) bytes = bytes.subarray(open + 1, close);
  }
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ CRC_TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc & 0x3fff;
}
