/**
 * Presence across processes (express-sse's `AdapterPresence`): how many subscribers a channel has
 * in every process, and who they are.
 *
 * Stored: per channel, a hash in the channel's slot (`<prefix>{name}:presence`) with one field per
 * `Channel` of each process (`<process id>.<n>`) holding `<count>\n<member JSON>\n…`, and `#`, a
 * sequence number. A change is one script on that slot (PRESENCE_SCRIPT): write the field, drop
 * the fields of dead processes, sum the counts, and announce `P <seq> <total> <field>\n<changes>`
 * on the channel's pub/sub channel, where the processes that have subscribers hear it, with the
 * members of the dead processes' dropped fields as leaves (so no ghost stays in a member list).
 * Writes are throttled by the channel (`presenceInterval`), so many joins are a few scripts.
 *
 * Liveness: one registry of processes per adapter prefix (a sorted set scored by expiry in Redis's
 * clock), renewed by each process every `presenceTtl / 3`: one command per period, whatever the
 * number of channels. A process that stops renewing (SIGKILL) is dead once its entry expires; the
 * others see it at their next renewal and recompute the channels they have subscribers on, which
 * drops its fields. Only ids known dead are ever dropped (a process that started after the list was
 * read is not missing, just new); dead entries stay in the registry as long as a presence hash may
 * live (10 × `presenceTtl`, renewed by every write), so every process learns of every death.
 */
import type { AdapterPresence, PresenceUpdate } from "@sluice/express-sse";
import { randomBytes } from "node:crypto";
import type { Connection } from "./client";
import { flat } from "./keys";
import { asRecord, asString } from "./replies";
import { compactScript } from "./scripts";
import type { StreamState } from "./state";

const PRESENCE_SOURCE = `
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
local dead = {}
for i = 6, #ARGV do dead[ARGV[i]] = true end
local all = redis.call('HGETALL', KEYS[1])
local total = 0
local gone = {}
for i = 1, #all, 2 do
  local field = all[i]
  if field ~= '#' then
    if dead[string.match(field, '^[^.]+')] then
      redis.call('HDEL', KEYS[1], field)
      for member in string.gmatch(all[i + 1], '\\n([^\\n]+)') do gone[#gone + 1] = '~' .. member end
    else
      total = total + tonumber(string.match(all[i + 1], '^%d+'))
    end
  end
end
local seq = redis.call('HINCRBY', KEYS[1], '#', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
gone = table.concat(gone, '\\n')
redis.call('SPUBLISH', KEYS[2], 'P ' .. seq .. ' ' .. total .. ' ' .. ARGV[1] .. '\\n' .. ARGV[4] .. '\\n' .. gone)
return {seq, total, gone}
`;

const REGISTRY_SOURCE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local was = redis.call('ZSCORE', KEYS[1], ARGV[1])
local state = 'live'
if not was then state = 'new' elseif tonumber(was) < now then state = 'dead' end
if ARGV[2] == '0' then redis.call('ZREM', KEYS[1], ARGV[1]) else redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local reply = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
table.insert(reply, 1, state)
return reply
`;

/**
 * KEYS[1] presence hash, KEYS[2] the channel's pub/sub channel. ARGV[1] field, ARGV[2] value (""
 * deletes the field), ARGV[3] the hash's TTL in ms, ARGV[4] changes (`+json` / `-json` lines),
 * ARGV[5] unused, ARGV[6…] dead process ids. Returns `{seq, total, gone}`, gone being the members
 * of the dead processes' fields it dropped (`~json` lines, also in the announcement).
 */
export const PRESENCE_SCRIPT = compactScript(PRESENCE_SOURCE);
/**
 * KEYS[1] registry. ARGV[1] process id, ARGV[2] TTL in ms ("0": leave), ARGV[3] grace in ms.
 * Returns what the entry was before (`new`: absent, `dead`: expired, `live`), then the dead ids.
 */
export const REGISTRY_SCRIPT = compactScript(REGISTRY_SOURCE);

/**
 * KEYS[1] presence hash. ARGV[1] field, ARGV[2] TTL in ms. Sets the TTL if the field is there and
 * returns 1; returns 0 if it is not (the hash expired or was deleted, and maybe another process
 * already wrote its own field again: the hash existing is not enough).
 */
export const KEEPALIVE_SCRIPT = compactScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`);

/** The presence hash of stream key `stream`. */
export function presenceKey(stream: string): string {
  return flat(`${stream}:presence`);
}

/** One adapter's process in the registry, and the presences of its channels. */
export class PresenceRegistry {
  readonly processId = randomBytes(6).toString("hex");
  /** Ids the registry says are dead (expired within the grace period). */
  dead: readonly string[] = [];
  /** @internal */
  private readonly _channels = new Set<ChannelPresence>();
  /** @internal */
  private _timer: NodeJS.Timeout | undefined = undefined;
  /** @internal */
  private _closed = false;
  /**
   * @internal Whether the entry was written once: absent after that means it expired and was
   * removed.
   */
  private _registered = false;
  /**
   * @internal Renewals left before the fields are written once more after a revival (0: none due).
   */
  private _againIn = 0;

  constructor(
    private readonly _commands: Connection,
    private readonly _key: string,
    readonly ttl: number,
    private readonly _report: (error: Error) => void,
  ) {}

  /** The hash's TTL and how long dead entries are kept: 10 × ttl. */
  get grace(): number {
    return this.ttl * 10;
  }

  get commands(): Connection {
    return this._commands;
  }

  /** A channel's presence has a field: keep the process registered. */
  add(presence: ChannelPresence): void {
    this._channels.add(presence);
    if (this._timer === undefined && !this._closed) {
      this._timer = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.ttl / 3)));
      this._timer.unref();
      void this.renew();
    }
  }

  remove(presence: ChannelPresence): void {
    this._channels.delete(presence);
  }

  /** Renews this process's entry; a death seen for the first time recomputes every channel. */
  async renew(): Promise<void> {
    if (this._closed || !this._commands.ready) return;
    let reply: string[];
    try {
      const answer = await this._commands.send(this._key, [
        "EVAL",
        REGISTRY_SCRIPT,
        "1",
        this._key,
        this.processId,
        String(this.ttl),
        String(this.grace),
      ]);
      reply = (answer as unknown[]).map(String);
    } catch (error) {
      this._report(new Error(`Renewing presence failed: ${String(error)}`, { cause: error }));
      return;
    }
    const [state, ...dead] = reply;
    const known = new Set(this.dead);
    this.dead = dead.filter((id) => id !== this.processId);
    const news = this.dead.some((id) => !known.has(id));
    // Our entry had expired (Redis or the network was away longer than the TTL): the others may
    // have dropped our fields, so write them again, and once more two renewals later, when every
    // process's list of the dead no longer has us (one that still did could drop them meanwhile).
    const revived = state === "dead" || (state === "new" && this._registered);
    this._registered = true;
    if (revived) this._againIn = 2;
    else if (this._againIn > 0 && --this._againIn === 0) {
      for (const presence of this._channels) presence.resend();
      return;
    }
    if (news || revived) {
      for (const presence of this._channels) presence.resend();
      return;
    }
    // A hash that no one wrote for a while expires at `grace`: keep ours alive before that.
    const now = performance.now();
    for (const presence of this._channels) presence.keepAlive(now, this.grace / 2);
  }

  /** Leaves the registry and removes every field of this process (graceful close). */
  async close(): Promise<void> {
    if (this._closed) return;
    this._closed = true;
    clearInterval(this._timer);
    const channels = [...this._channels];
    this._channels.clear();
    if (!this._commands.ready) return;
    await Promise.allSettled([
      ...channels.map((presence) => presence.clear()),
      this._commands.send(this._key, [
        "EVAL",
        REGISTRY_SCRIPT,
        "1",
        this._key,
        this.processId,
        "0",
        String(this.grace),
      ]),
    ]);
  }
}

let nextChannel = 0;

/** The presence of one `Channel` (one `RedisChannel`) in this process. */
export class ChannelPresence implements AdapterPresence {
  readonly field: string;
  /** @internal */
  private _value = "";
  /** @internal */
  private _sent = new Map<string, string>();
  /** @internal */
  private _watcher: ((update: PresenceUpdate) => void) | undefined = undefined;
  /** @internal The newest `#` applied: replies and messages can arrive in either order. */
  private _seq = 0;
  /** @internal `performance.now()` when the hash's TTL was last set (by a write or `keepAlive`). */
  private _aliveAt = 0;
  /** @internal */
  private _touching = false;

  constructor(
    private readonly _registry: PresenceRegistry,
    private readonly _stream: StreamState,
  ) {
    this.field = `${_registry.processId}.${++nextChannel}`;
  }

  async set(count: number, members: ReadonlyMap<string, string>): Promise<number> {
    const changes: string[] = [];
    for (const [key, json] of members) if (!this._sent.has(key)) changes.push(`+${json}`);
    for (const [key, json] of this._sent) if (!members.has(key)) changes.push(`-${json}`);
    this._sent = new Map(members);
    this._value = count === 0 ? "" : [String(count), ...members.values()].join("\n");
    if (this._value !== "") this._registry.add(this);
    else this._registry.remove(this);
    const { seq, total, gone } = await this._run(changes.join("\n"));
    // Members of dead processes this call dropped: told here unless the message came first.
    if (seq > this._seq) {
      this._seq = seq;
      if (gone.length > 0) this._watcher?.({ total, joined: [], left: gone });
    }
    return total;
  }

  watch(onUpdate: (update: PresenceUpdate) => void): void {
    this._watcher = onUpdate;
  }

  async members(limit: number): Promise<{ total: number; members: string[] }> {
    const key = presenceKey(this._stream.key);
    const hash = asRecord(await this._registry.commands.send(key, ["HGETALL", key]));
    const dead = new Set(this._registry.dead);
    let total = 0;
    const members: string[] = [];
    for (const [field, value] of Object.entries(hash)) {
      if (field === "#" || dead.has(field.slice(0, field.indexOf(".")))) continue;
      const lines = asString(value).split("\n");
      total += Number(lines[0]);
      for (let i = 1; i < lines.length && members.length < limit; i++) members.push(lines[i]!);
    }
    return { total, members };
  }

  /**
   * A `P` message on the channel: a change (`+json` joined, `-json` left; own ones are known
   * already) and the members of dead processes it dropped (`~json`, told whoever dropped them).
   */
  onMessage(message: string): void {
    const newline = message.indexOf("\n");
    const [, seqText, totalText, sender] = message
      .slice(0, newline === -1 ? undefined : newline)
      .split(" ");
    const seq = Number(seqText);
    if (!(seq > this._seq) || this._watcher === undefined) return;
    this._seq = seq;
    const joined: string[] = [];
    const left: string[] = [];
    if (newline !== -1) {
      const own = sender === this.field;
      for (const line of message.slice(newline + 1).split("\n")) {
        const kind = line.charCodeAt(0);
        if (kind === 126 /* ~ */) left.push(line.slice(1));
        else if (own) continue;
        else if (kind === 43 /* + */) joined.push(line.slice(1));
        else if (kind === 45 /* - */) left.push(line.slice(1));
      }
    }
    this._watcher({ total: Number(totalText), joined, left });
  }

  /** Writes this channel's field again (a process died, or this one was thought dead). */
  resend(): void {
    this._run("").then(
      ({ seq, total, gone }) => {
        if (seq <= this._seq || this._watcher === undefined) return;
        this._seq = seq;
        this._watcher({ total, joined: [], left: gone });
      },
      () => undefined, // the next renewal or change tries again
    );
  }

  /**
   * Sets the hash's TTL again if it was last set more than `age` ms ago, so that a channel whose
   * subscribers don't change keeps its presence; if this field is gone (the hash expired all the
   * same, or was deleted), writes it again.
   */
  keepAlive(now: number, age: number): void {
    if (this._touching || now - this._aliveAt < age || this._value === "") return;
    this._touching = true;
    const key = presenceKey(this._stream.key);
    this._registry.commands
      .send(key, ["EVAL", KEEPALIVE_SCRIPT, "1", key, this.field, String(this._registry.grace)])
      .then(
        (reply) => {
          this._aliveAt = now;
          if (Number(reply) === 0) this.resend();
        },
        () => undefined, // the next renewal tries again
      )
      .finally(() => (this._touching = false));
  }

  /** Removes this channel's field (its Channel or the adapter closes). */
  async clear(): Promise<void> {
    this._registry.remove(this);
    if (this._value === "" && this._sent.size === 0) return;
    const left = [...this._sent.values()].map((json) => `-${json}`).join("\n");
    this._value = "";
    this._sent = new Map();
    await this._run(left).catch(() => undefined);
  }

  /** @internal */
  private async _run(changes: string): Promise<{ seq: number; total: number; gone: string[] }> {
    const key = presenceKey(this._stream.key);
    this._aliveAt = performance.now();
    const reply = (await this._registry.commands.send(key, [
      "EVAL",
      PRESENCE_SCRIPT,
      "2",
      key,
      this._stream.key,
      this.field,
      this._value,
      String(this._registry.grace),
      changes,
      "",
      ...this._registry.dead,
    ])) as unknown[];
    const gone = asString(reply[2] ?? "");
    return {
      seq: Number(reply[0]),
      total: Number(reply[1]),
      gone: gone === "" ? [] : gone.split("\n").map((line) => line.slice(1)),
    };
  }
}
