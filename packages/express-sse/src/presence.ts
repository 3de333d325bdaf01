/**
 * Presence of a channel: how many subscribers it has and who they are (the app data each one gave
 * at `subscribe({ member })`), with a `count` event that is coalesced: at most one per
 * `presenceInterval` ms per channel however many joins and leaves arrive, the first one at once,
 * and always a last one with the exact count once things settle.
 *
 * This is the in-process presence, what the in-memory adapter gives: the channel's own
 * subscribers. Counts across processes come from a distributed adapter (the plan for
 * `@sluice/redis`: per-process member sets in Redis renewed with a TTL, so a process that dies
 * drops out within a bound; see the package README) through the same API.
 */
import type { AdapterPresence } from "./adapter";
import { describe } from "./util";

/** Largest app data of one member, serialized as JSON, in UTF-8 bytes. */
export const MAX_MEMBER_BYTES = 1024;

/** The default of `ChannelOptions.presenceInterval` (ms): at most four `count` events a second. */
export const DEFAULT_PRESENCE_INTERVAL = 250;

/**
 * Checks and serializes a member's app data at `subscribe()`: JSON-serializable (what crosses
 * processes is JSON) and at most {@link MAX_MEMBER_BYTES} bytes. Throws a TypeError that says why.
 */
export function serializeMember(member: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(member);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new TypeError(`The "member" option must be JSON-serializable: ${why}`);
  }
  if (json === undefined) {
    throw new TypeError(
      `The "member" option must be JSON-serializable, got ${describe(member)} (JSON.stringify gives nothing for it)`,
    );
  }
  const bytes = Buffer.byteLength(json);
  if (bytes > MAX_MEMBER_BYTES) {
    throw new TypeError(
      `The "member" option is ${bytes} bytes as JSON; at most ${MAX_MEMBER_BYTES} (it is app data such as { user: "ann" }, kept per subscriber)`,
    );
  }
  return json;
}

/** What a channel hears from its presence. */
export interface PresenceEvents {
  count(count: number): void;
  memberJoin(member: unknown): void;
  memberLeave(member: unknown): void;
  /** Whether anyone listens to `count` (no timer runs otherwise). */
  wantsCount(): boolean;
}

/** `Channel#members()`: the first `limit` members' app data, and how many subscribers in all. */
export interface Members {
  /** Subscribers in all, with or without app data. */
  readonly total: number;
  /** The app data of up to `limit` subscribers that gave one, each once. */
  readonly members: unknown[];
}

/**
 * The presence of one channel: its subscribers in this process, and, when the adapter has
 * presence across processes ({@link AdapterPresence}), the total it reports.
 */
export class LocalPresence<K> {
  /**
   * @internal
   * Subscribers that gave app data: its JSON, and the key the adapter knows the member by
   * (unique per subscriber in this process).
   */
  private readonly _members = new Map<K, { readonly key: string; readonly json: string }>();
  /** @internal This process's subscribers. */
  private _count = 0;
  /** @internal The adapter's presence across processes, if it has one. */
  private _remote: AdapterPresence | undefined = undefined;
  /** @internal */
  private _report: (error: Error) => void = () => undefined;
  /** @internal Subscribers in every process, as the adapter last said (with `_remote`). */
  private _total = 0;
  /** @internal */
  private _nextKey = 0;
  /** @internal The count last told through `count`, or -1 for none yet. */
  private _told = -1;
  /** @internal */
  private _timer: NodeJS.Timeout | undefined = undefined;
  /** @internal `performance.now()` of the last `count` told. */
  private _toldAt = -Infinity;
  // Pushing this process's presence to the adapter: throttled like `count`, one call at a time.
  /** @internal */
  private _pushTimer: NodeJS.Timeout | undefined = undefined;
  /** @internal */
  private _pushedAt = -Infinity;
  /** @internal */
  private _pushing = false;
  /** @internal */
  private _dirty = false;
  /** @internal */
  private _closed = false;

  constructor(
    private readonly _events: PresenceEvents,
    private readonly _interval: number,
  ) {}

  /** Uses the adapter's presence across processes (called once, when the channel opens). */
  attach(remote: AdapterPresence, report: (error: Error) => void): void {
    this._remote = remote;
    this._report = report;
    remote.watch((update) => {
      if (this._closed) return;
      for (const member of update.joined) this._events.memberJoin(JSON.parse(member));
      for (const member of update.left) this._events.memberLeave(JSON.parse(member));
      this._total = update.total;
      this._changed();
    });
  }

  get count(): number {
    return this._remote === undefined ? this._count : this._total;
  }

  join(key: K, member: string | undefined): void {
    this._count++;
    if (member !== undefined) {
      this._members.set(key, { key: String(++this._nextKey), json: member });
      this._events.memberJoin(JSON.parse(member));
    }
    this._local();
  }

  leave(key: K): void {
    this._count--;
    const member = this._members.get(key);
    if (member !== undefined) {
      this._members.delete(key);
      this._events.memberLeave(JSON.parse(member.json));
    }
    this._local();
  }

  members(limit: number): Promise<Members> {
    if (this._remote !== undefined) {
      return this._remote.members(limit).then(({ total, members }) => ({
        total,
        members: members.map((json) => JSON.parse(json) as unknown),
      }));
    }
    const members: unknown[] = [];
    for (const { json } of this._members.values()) {
      if (members.length >= limit) break;
      members.push(JSON.parse(json));
    }
    return Promise.resolve({ total: this._count, members });
  }

  close(): void {
    this._closed = true;
    clearTimeout(this._timer);
    clearTimeout(this._pushTimer);
    this._timer = this._pushTimer = undefined;
  }

  /** @internal This process's subscribers changed. */
  private _local(): void {
    if (this._remote === undefined) this._changed();
    else this._push();
  }

  /**
   * @internal Tells the adapter this process's presence: at once if not told within the interval.
   */
  private _push(): void {
    if (this._closed) return;
    if (this._pushing) {
      this._dirty = true; // pushed again once the call in flight is done
      return;
    }
    if (this._pushTimer !== undefined) return;
    const wait = this._pushedAt + this._interval - performance.now();
    if (wait > 0) {
      this._pushTimer = setTimeout(() => {
        this._pushTimer = undefined;
        this._push();
      }, wait);
      return;
    }
    this._pushing = true;
    this._dirty = false;
    this._pushedAt = performance.now();
    const members = new Map<string, string>();
    for (const { key, json } of this._members.values()) members.set(key, json);
    this._remote!.set(this._count, members).then(
      (total) => {
        this._pushing = false;
        if (this._closed) return;
        this._total = total;
        this._changed();
        if (this._dirty) this._push();
      },
      (error: unknown) => {
        this._pushing = false;
        this._report(error instanceof Error ? error : new Error(String(error)));
        if (this._dirty) this._push();
      },
    );
  }

  /**
   * @internal The count changed: told at once if the last `count` is older than the interval, else
   * later.
   */
  private _changed(): void {
    if (this._closed || this._timer !== undefined || !this._events.wantsCount()) return;
    const wait = this._toldAt + this._interval - performance.now();
    if (wait <= 0) {
      this._tell();
      return;
    }
    this._timer = setTimeout(() => {
      this._timer = undefined;
      this._tell();
    }, wait);
  }

  /** @internal */
  private _tell(): void {
    const count = this.count;
    if (count === this._told) return;
    this._told = count;
    this._toldAt = performance.now();
    this._events.count(count);
    // Changes while this was being told (or right after) get a trailing `count` in their turn.
  }
}
