/**
 * At most `max` tasks in flight, the rest queued in order. The live feed runs its stream reads
 * through one (live.ts): activating 100,000 channels at once must not put 300,000 commands in
 * node-redis's queue at once, where the last ones would time out before Redis saw them.
 */
export class Limiter {
  /** @internal */
  private _running = 0;
  /** @internal Waiting tasks from `_head` on (an index, not `shift()`: that is O(n) per task). */
  private _queue: Array<(() => void) | undefined> = [];
  /** @internal */
  private _head = 0;

  constructor(private readonly _max: number) {}

  /** Runs `task` once a slot is free; settles as it does. */
  run<T>(task: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = () => {
        this._running++;
        task()
          .then(resolve, reject)
          .finally(() => {
            this._running--;
            this._next();
          });
      };
      if (this._running < this._max) start();
      else this._queue.push(start);
    });
  }

  /** Drops the tasks not started yet (their promises never settle: for close()). */
  clear(): void {
    this._queue = [];
    this._head = 0;
  }

  /** @internal */
  private _next(): void {
    if (this._head >= this._queue.length) return;
    const start = this._queue[this._head];
    this._queue[this._head++] = undefined;
    if (this._head === this._queue.length) this.clear(); // drained: reclaim the array
    start?.();
  }
}
