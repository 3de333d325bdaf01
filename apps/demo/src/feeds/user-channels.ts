/**
 * One `Channel` per user (`user:<name>`), created on first use and bounded two ways, so the map
 * can never grow without limit:
 *
 * - **Idle timeout.** A channel with no subscriber and no publish for `idleMs` (10 min by
 *   default) is closed by a sweep: one unref'd timer for all of them, running only while there
 *   are channels. The idle clock restarts when the last subscriber leaves, so a client that
 *   drops and comes back within `idleMs` resumes from history with no loss.
 * - **A cap.** At most `max` channels (1000 by default). Opening one more closes the least
 *   recently used channel that has no subscriber; when every channel has one, the new one is
 *   refused (the routes answer 503), because a subscribed channel is bounded by open connections
 *   already and must not lose its history under a client's feet.
 *
 * Closing a channel drops its history on the memory adapter: a client resuming from an id of the
 * closed channel gets `event: reset` (the ids carry a per-channel epoch, so they are never
 * misread). On Redis the stream outlives the channel, and a later channel resumes from it.
 *
 * History is 100 events or 32 KiB per channel, so at the cap that is at most ~32 MiB in memory,
 * and notifications older than an hour are not replayed (`maxAge`). On Redis `maxAge` is also the
 * history's TTL: a user who gets no notification for an hour leaves no stream behind (only the
 * channel's small meta hash, for a day), however many users come and go.
 */
import { Channel, type Adapter, type ChannelStats } from "@sluice/express-sse";
import { logChannelError } from "./feed";

/** `event: notification` data. */
export interface Notification {
  /** Who sent it (the sender's signed-in name). */
  from: string;
  text: string;
  /** When the server accepted it (ISO 8601). */
  at: string;
}

export type UserChannel = Channel<{ notification: Notification }>;

export interface UserChannelsOptions {
  adapter?: Adapter | undefined;
  /** ms without subscribers and publishes after which a channel is closed. */
  idleMs: number;
  /** Channels open at most. */
  max: number;
  /** `maxLifetime` of every subscriber's stream (ms): it reconnects, with a fresh token if needed. */
  maxLifetime?: number | undefined;
  /** Each channel's `error` listener (a failed presence push, ...). @defaultValue the log */
  onError?: ((error: Error) => void) | undefined;
  /** The clock, for tests. @defaultValue Date.now */
  now?: () => number;
}

interface Entry {
  channel: UserChannel;
  lastUsed: number;
}

const HISTORY = { max: 100, maxBytes: 32 * 1024, maxAge: 60 * 60 * 1000 };

export class UserChannels {
  /** In least-recently-used order: a use moves the user to the end. */
  private readonly _entries = new Map<string, Entry>();
  private readonly _now: () => number;
  private _sweep: NodeJS.Timeout | undefined = undefined;
  private _closed = false;
  /** Counters of channels already closed, so `stats()` only ever goes up. */
  private readonly _retired: ChannelStats = {
    subscribers: 0,
    events: 0,
    bytes: 0,
    slowClientsDropped: 0,
    resumes: 0,
    resets: 0,
  };
  private readonly _closing = new Set<Promise<void>>();

  constructor(private readonly _options: UserChannelsOptions) {
    this._now = _options.now ?? Date.now;
  }

  /** Channels open now. */
  get size(): number {
    return this._entries.size;
  }

  /** The user's channel if it is open, without counting as a use (for tests and metrics). */
  peek(user: string): UserChannel | undefined {
    return this._entries.get(user)?.channel;
  }

  /**
   * The user's channel, opened if needed, marked as just used. `undefined` when the cap is reached
   * and every channel has subscribers (or after `close()`).
   */
  acquire(user: string): UserChannel | undefined {
    if (this._closed) return undefined;
    const now = this._now();
    const existing = this._entries.get(user);
    if (existing !== undefined) {
      this._touch(user, existing, now);
      return existing.channel;
    }
    if (this._entries.size >= this._options.max && !this._evictOne()) return undefined;

    const { adapter, maxLifetime } = this._options;
    const channel: UserChannel = new Channel(`user:${user}`, {
      history: HISTORY,
      // A client that had to open a new EventSource (a fresh token) cannot send Last-Event-ID:
      // it puts the last id in the URL instead. The header still wins on the browser's own
      // reconnects, where the URL keeps the first id.
      lastEventIdQuery: "lastEventId",
      // Nobody counts a user's own channel (the cap and the idle sweep use `size`, this
      // process's subscribers): on Redis, no presence script per (re)connect and no keep-alive
      // per quiet user, which with a channel per user is most of the presence traffic.
      presence: false,
      ...(adapter === undefined ? {} : { adapter }),
      ...(maxLifetime === undefined ? {} : { maxLifetime }),
    });
    channel.on("error", this._options.onError ?? logChannelError);
    const entry: Entry = { channel, lastUsed: now };
    // The idle clock starts when the last subscriber leaves, not when it joined.
    channel.on("leave", () => {
      if (this._entries.get(user) === entry) this._touch(user, entry, this._now());
    });
    this._entries.set(user, entry);
    this._startSweep();
    return channel;
  }

  /** Closes every channel idle for `idleMs` or more. Called by the timer; public for tests. */
  sweep(now: number = this._now()): void {
    for (const [user, entry] of this._entries) {
      if (entry.channel.size === 0 && now - entry.lastUsed >= this._options.idleMs) {
        this._remove(user, entry);
      }
    }
  }

  /** Every channel's counters summed, closed ones included (for `/metrics`). */
  stats(): ChannelStats {
    const total = { ...this._retired };
    for (const { channel } of this._entries.values()) add(total, channel.stats());
    return total;
  }

  /** Closes every channel (ending their streams) and stops the sweep. Safe twice. */
  async close(): Promise<void> {
    this._closed = true;
    for (const [user, entry] of this._entries) this._remove(user, entry);
    await Promise.all(this._closing);
  }

  private _touch(user: string, entry: Entry, now: number): void {
    entry.lastUsed = now;
    this._entries.delete(user);
    this._entries.set(user, entry);
  }

  /** Closes the least recently used channel without subscribers; `false` if there is none. */
  private _evictOne(): boolean {
    for (const [user, entry] of this._entries) {
      if (entry.channel.size === 0) {
        this._remove(user, entry);
        return true;
      }
    }
    return false;
  }

  private _remove(user: string, entry: Entry): void {
    this._entries.delete(user);
    if (this._entries.size === 0) this._stopSweep();
    const closing = entry.channel.close().catch((err: unknown) => {
      console.error(`private: closing ${entry.channel.name}:`, err);
    });
    // close() ended the channel's streams at once, so its counters are final: keep them now, or
    // the totals would dip until the adapter has closed.
    add(this._retired, { ...entry.channel.stats(), subscribers: 0 });
    this._closing.add(closing);
    void closing.finally(() => this._closing.delete(closing));
  }

  private _startSweep(): void {
    if (this._sweep !== undefined) return;
    const { idleMs } = this._options;
    // A channel is closed between idleMs and 1.25 × idleMs after its last use.
    const every = Math.max(10, Math.min(60_000, Math.floor(idleMs / 4)));
    this._sweep = setInterval(() => this.sweep(), every);
    this._sweep.unref();
  }

  private _stopSweep(): void {
    clearInterval(this._sweep);
    this._sweep = undefined;
  }
}

function add(total: ChannelStats, stats: ChannelStats): void {
  total.subscribers += stats.subscribers;
  total.events += stats.events;
  total.bytes += stats.bytes;
  total.slowClientsDropped += stats.slowClientsDropped;
  total.resumes += stats.resumes;
  total.resets += stats.resets;
}
