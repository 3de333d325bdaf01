/**
 * A channel's fast lane: the sockets of its plain direct-path subscribers, in a dense array, so a
 * broadcast is `for (socket of sockets) socket.write(chunk)` and touches nothing else per client.
 *
 * Why: profiled with `perf` at 1,000 clients (apps/bench/README.md), once the per-subscriber
 * write was down to one `socket.write()` and a few stores, about half of what the fan-out's
 * JavaScript still cost over `raw-socket` (the bench's limit: a `Set` of sockets and that loop)
 * was the load of each subscriber's `SseStream`: a cold cache line per client per event, since
 * the kernel's TCP work between two broadcasts evicts it. So the lane does per batch what the
 * stream did per write:
 *
 * - **Counters**: `events` and `bytes` of each `sse()` instance are added once per batch
 *   (subscribers per instance × the batch), not once per client.
 * - **Heartbeat**: a stream in the lane is not told of lane writes (its `_idle` is left alone);
 *   the lane keeps the batch count and the time of its last batch, and the heartbeat asks it
 *   before pinging ({@link Lane.quietChecks}). Same guarantee as for any other write: pinged only
 *   after a whole interval without a write, never silent for more than 1.25 × the interval.
 * - **A `false` from `socket.write()`** (the rare branch) goes back to the stream through the
 *   parallel array of streams: a destroyed socket is a lost client, a client past
 *   `maxBufferedBytes` is dropped, exactly as on the stream's own direct path.
 *
 * Who is in it: a subscriber with no subscription state (no filter, replay, resume boundary or
 * `maxLifetime` deadline), whose stream is open on the direct socket path (`direct.ts`) and whose
 * first channel this is (the stream's owner slot: the heartbeat finds the lane through it).
 * Everyone else takes the channel's general path. Joining and leaving are O(1) (a swap with the
 * last slot); the order of writes across clients is not a guarantee, the order of events on
 * each client is.
 */
import type { Socket } from "node:net";
import type { Frame } from "./frame";
import type { StreamStats } from "./context";

/** What the lane needs of a stream (structural: this module never imports stream.ts). */
export interface LaneMember {
  /** @internal The stream's slot in its owner's lane, `-1` when not in one. */
  _laneIndex: number;
  /** @internal The lane's batch count when the stream joined (see {@link Lane.quietChecks}). */
  _laneMark: number;
  /** @internal The stream's `sse()` instance's counters. */
  readonly _laneStats: Omit<StreamStats, "open">;
  /**
   * @internal `socket.write()` answered false: the stream's own handling of that answer (a lost
   * client, one past `maxBufferedBytes`). `false` when the stream closed.
   */
  _refused(socket: Socket, size: number): boolean;
}

export class Lane<T extends LaneMember = LaneMember> {
  /** Batches written (wraps at 2^30: compared for equality only, and kept a small integer). */
  batches = 0;
  /** `Date.now()` of the last batch, `0` before the first. */
  wroteAt = 0;
  /** @internal The sockets, in the order of `_members`; `null` in a slot freed mid-write. */
  private readonly _sockets: Array<Socket | null> = [];
  /** @internal */
  private readonly _members: T[] = [];
  /** @internal Members per `sse()` instance, for the counters. */
  private readonly _perStats = new Map<Omit<StreamStats, "open">, number>();
  /** @internal `true` while `write()` runs: a member leaving then frees its slot, compacted after. */
  private _writing = false;
  /** @internal Slots freed while writing. */
  private _freed = 0;

  /** Members now. */
  get size(): number {
    return this._members.length - this._freed;
  }

  add(member: T, socket: Socket): void {
    member._laneIndex = this._members.length;
    member._laneMark = this.batches;
    this._members.push(member);
    this._sockets.push(socket);
    const stats = member._laneStats;
    this._perStats.set(stats, (this._perStats.get(stats) ?? 0) + 1);
  }

  remove(member: T): void {
    const i = member._laneIndex;
    if (i < 0) return;
    member._laneIndex = -1;
    const stats = member._laneStats;
    const left = this._perStats.get(stats)! - 1;
    if (left === 0) this._perStats.delete(stats);
    else this._perStats.set(stats, left);
    if (this._writing) {
      // Never move a slot under the loop (a moved member would get the batch twice, or never);
      // `write()` skips the freed slot and compacts once it is done.
      this._sockets[i] = null;
      this._freed++;
      return;
    }
    this._swapOut(i);
  }

  /**
   * Writes `frame` (a batch of `events` events) to every member. Returns how many members took it
   * (or are still open behind it): what the channel counts as written.
   */
  write(frame: Frame, events: number): number {
    const sockets = this._sockets;
    const members = this._members;
    const n = sockets.length;
    const chunk = frame.chunk;
    const size = frame.byteLength;
    // Counted before the writes, as a stream counts its own; a lost client takes its bytes back.
    for (const [stats, count] of this._perStats) {
      stats.events += count * events;
      stats.bytes += count * size;
    }
    this.batches = (this.batches + 1) & 0x3fffffff;
    this.wroteAt = Date.now();
    let written = 0;
    this._writing = true;
    try {
      for (let i = 0; i < n; i++) {
        const socket = sockets[i]!;
        if (socket === null) {
          // Left before its turn (an app's listener closed it during this loop): never written.
          const stats = members[i]!._laneStats;
          stats.events -= events;
          stats.bytes -= size;
          continue;
        }
        if (socket.write(chunk) || members[i]!._refused(socket, size)) written++;
      }
    } finally {
      this._writing = false;
      if (this._freed > 0) this._compact();
    }
    return written;
  }

  /**
   * The heartbeat's count for `member` (see registry.ts): the checks, `quarter` ms apart, that
   * fell since its last lane write, or `Infinity` when it has had none since it joined. Rounded
   * up, as counting checks is: a check 4.2 quarters after a write is the fifth since it.
   */
  quietChecks(member: T, quarter: number, now: number): number {
    if (member._laneMark === this.batches) return Infinity;
    return Math.ceil((now - this.wroteAt) / quarter);
  }

  /** @internal Drops the slots freed during a write. */
  private _compact(): void {
    const sockets = this._sockets;
    for (let i = sockets.length - 1; i >= 0; i--) {
      if (sockets[i] === null) this._swapOut(i);
    }
    this._freed = 0;
  }

  /** @internal Removes slot `i`: the last member takes its place. */
  private _swapOut(i: number): void {
    const last = this._members.length - 1;
    if (i !== last) {
      const moved = this._members[last]!;
      this._members[i] = moved;
      this._sockets[i] = this._sockets[last]!;
      moved._laneIndex = i;
    }
    this._members.pop();
    this._sockets.pop();
  }
}
