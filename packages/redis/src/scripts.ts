/**
 * The publish script: one atomic call stores an event and announces it. Pure: the text and its
 * digest, no I/O.
 *
 * Stored: `XADD` on the channel's stream (trimmed `MAXLEN ~`, and `MINID ~` by Redis's clock when
 * the channel has a `maxAge`), the new id as the last id (`l`) of the channel's meta hash (and as
 * its first id `f` when the hash is new: keys.ts), both keys given a TTL when the history expires. Announced: `SPUBLISH` on the channel's sharded pub/sub channel of the new id,
 * the id published just before it on this stream (`prev`), and the event (see codec.ts). Because
 * it is one script on one hash slot, every subscriber sees the announcements of a stream in stream
 * order, and `prev` lets a subscriber that missed one notice it at the next: it then reads the
 * stream from the last id it delivered (live.ts).
 *
 * KEYS[1] stream, KEYS[2] meta hash.
 * ARGV[1] MAXLEN, ARGV[2] maxAge in ms ("0": none; then no TTL and no MINID trim),
 * ARGV[3] meta hash TTL in ms ("0": none), ARGV[4] flags (codec.ts), ARGV[5] event name,
 * ARGV[6] data. Returns the new id.
 */

const SOURCE = `
local prev = redis.call('HGET', KEYS[2], 'l')
if not prev then
  prev = '0-0'
end
local flags = ARGV[4]
local fields = {}
if prev ~= '0-0' and redis.call('EXISTS', KEYS[1]) == 0 then
  -- A stream that expired is created again: its first entry says which id came before it.
  fields[1] = 'p'
  fields[2] = prev
end
if flags == '1' or flags == '3' then fields[#fields + 1] = 'e'; fields[#fields + 1] = ARGV[5] end
if flags == '2' or flags == '3' then fields[#fields + 1] = 's'; fields[#fields + 1] = '1' end
fields[#fields + 1] = 'd'
fields[#fields + 1] = ARGV[6]
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(fields))
local maxAge = tonumber(ARGV[2])
if maxAge > 0 then
  local now = redis.call('TIME')
  local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - maxAge
  if oldest > 0 then redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%d', oldest)) end
  redis.call('PEXPIRE', KEYS[1], maxAge)
else
  redis.call('PERSIST', KEYS[1])
end
if prev == '0-0' then
  redis.call('HSET', KEYS[2], 'l', id, 'f', id)
else
  redis.call('HSET', KEYS[2], 'l', id)
end
local metaTtl = tonumber(ARGV[3])
if metaTtl > 0 then
  redis.call('PEXPIRE', KEYS[2], metaTtl)
else
  redis.call('PERSIST', KEYS[2])
end
redis.call('SPUBLISH', KEYS[1], id .. ' ' .. prev .. ' ' .. flags .. ARGV[5] .. '\\n' .. ARGV[6])
return id
`;

/** A Lua script as sent: without indentation and comments, so each `EVAL` carries fewer bytes. */
export function compactScript(source: string): string {
  return source
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("--"))
    .join("\n");
}

export const PUBLISH_SCRIPT = compactScript(SOURCE);
