/**
 * A bounded, in-memory event log: by count, by bytes and by age. Used by the in-memory adapter;
 * pure data structure, no timers (age is enforced lazily on every append and read).
 */
import { nonNegativeInteger } from "./util";

/** Bounds of a channel's history. Every bound is optional; count and bytes always apply. */
export interface HistoryOptions {
  /** Events kept at most. `0` keeps none (resume then always resets). @defaultValue 1000 */
  max?: number;
  /** Bytes of event data kept at most. @defaultValue 4194304 (4 MiB) */
  maxBytes?: number;
  /** Milliseconds an event is kept at most. @defaultValue Infinity (count and bytes bound it) */
  maxAge?: number;
}

/**
 * A channel's history bounds, checked and with every default filled in: what an adapter's
 * `open(name, { history })` receives, to bound the history it keeps for that channel.
 */
export interface ResolvedHistoryOptions {
  /** Most events kept. @defaultValue 1000 */
  readonly max: number;
  /** Most bytes of event data kept (UTF-8, as sent). @defaultValue 4 MiB */
  readonly maxBytes: number;
  /** Oldest event kept, in ms; `Infinity`: no age limit. @defaultValue Infinity */
  readonly maxAge: number;
}

export const DEFAULT_HISTORY: ResolvedHistoryOptions = Object.freeze({
  max: 1000,
  maxBytes: 4 * 1024 * 1024,
  maxAge: Infinity,
});

/** What the log needs from an entry. */
export interface HistoryEntry {
  /** Position: strictly increasing by one per append. */
  readonly seq: number;
  /** Size charged against `maxBytes`. */
  readonly size: number;
  /** `Date.now()` when appended. */
  readonly time: number;
}

/** Result of {@link History.since}. */
export type SinceResult<T> =
  | { readonly kind: "events"; readonly events: T[] }
  /** Events after `seq` were dropped by a bound: the caller missed some. */
  | { readonly kind: "too-old" }
  /** `seq` is ahead of anything ever appended. */
  | { readonly kind: "unknown" };

function bound(name: string, value: unknown, fallback: number, allowInfinity: boolean): number {
  if (value === undefined) return fallback;
  return nonNegativeInteger(`The history "${name}" option`, value, allowInfinity);
}

/** Validates history bounds and fills in the defaults. */
export function resolveHistoryOptions(options: HistoryOptions | undefined): ResolvedHistoryOptions {
  if (options === undefined) return DEFAULT_HISTORY;
  if (options === null || typeof options !== "object") {
    throw new TypeError("The history option must be an object like { max, maxBytes, maxAge }");
  }
  for (const key of Object.keys(options)) {
    if (key !== "max" && key !== "maxBytes" && key !== "maxAge") {
      throw new TypeError(`Unknown history option "${key}"`);
    }
  }
  return Object.freeze({
    // Count and bytes may not be Infinity: memory is never unbounded.
    max: bound("max", options.max, DEFAULT_HISTORY.max, false),
    maxBytes: bound("maxBytes", options.maxBytes, DEFAULT_HISTORY.maxBytes, false),
    maxAge: bound("maxAge", options.maxAge, DEFAULT_HISTORY.maxAge, true),
  });
}

export class History<T extends HistoryEntry> {
  readonly options: ResolvedHistoryOptions;
  /** @internal */
  private _items: T[] = [];
  /** @internal */
  private _head = 0; // index of the oldest retained entry in _items
  /** @internal */
  private _bytes = 0;
  /** @internal */
  private _lastSeq = 0; // seq of the newest entry ever appended (0: none yet)

  constructor(options: ResolvedHistoryOptions = DEFAULT_HISTORY) {
    this.options = options;
  }

  /** Entries currently retained. */
  get size(): number {
    return this._items.length - this._head;
  }

  /** Bytes currently retained. */
  get bytes(): number {
    return this._bytes;
  }

  /** Seq of the newest entry ever appended, retained or not (0 if none). */
  get lastSeq(): number {
    return this._lastSeq;
  }

  /** The oldest retained entry. */
  oldest(now: number = Date.now()): T | undefined {
    this._expire(now);
    return this._items[this._head];
  }

  /** Appends `entry`, whose `seq` must be `lastSeq + 1`, then evicts past the bounds. */
  append(entry: T): void {
    if (entry.seq !== this._lastSeq + 1) {
      throw new RangeError(
        `History entries must be appended in order: expected seq ${this._lastSeq + 1}, got ${entry.seq}`,
      );
    }
    this._lastSeq = entry.seq;
    const { max, maxBytes } = this.options;
    if (max === 0 || entry.size > maxBytes) {
      // Too big to keep even alone: it is delivered live but never replayed.
      this._clear();
      return;
    }
    this._items.push(entry);
    this._bytes += entry.size;
    while (this.size > max || this._bytes > maxBytes) this._evictOne();
    this._expire(entry.time);
  }

  /**
   * Entries after `seq`, oldest first. `seq === lastSeq` gives none (up to date). A `seq` whose
   * successor was evicted gives `too-old`; one beyond `lastSeq` gives `unknown`.
   */
  since(seq: number, now: number = Date.now()): SinceResult<T> {
    if (!Number.isSafeInteger(seq) || seq < 0 || seq > this._lastSeq) return { kind: "unknown" };
    this._expire(now);
    if (seq === this._lastSeq) return { kind: "events", events: [] };
    const oldest = this._items[this._head];
    if (oldest === undefined || seq + 1 < oldest.seq) return { kind: "too-old" };
    return { kind: "events", events: this._items.slice(this._head + (seq + 1 - oldest.seq)) };
  }

  /** @internal */
  private _expire(now: number): void {
    const { maxAge } = this.options;
    if (maxAge === Infinity) return;
    for (let item = this._items[this._head]; item !== undefined && now - item.time > maxAge;) {
      this._evictOne();
      item = this._items[this._head];
    }
  }

  /** @internal */
  private _evictOne(): void {
    const item = this._items[this._head];
    if (item === undefined) return;
    this._bytes -= item.size;
    this._items[this._head] = undefined as unknown as T; // release the entry now
    this._head++;
    // Compact once the dead prefix is half the array: amortised O(1) per eviction.
    if (this._head >= 1024 && this._head * 2 >= this._items.length) {
      this._items = this._items.slice(this._head);
      this._head = 0;
    }
  }

  /** @internal */
  private _clear(): void {
    this._items = [];
    this._head = 0;
    this._bytes = 0;
  }
}
