import { setTimeout as sleep } from "node:timers/promises";
import { sse } from "@sluice/express-sse";
import { endStreams, type Feed, type FeedContext, type Routes } from "./feed";

export interface ProgressOptions extends FeedContext {
  /** Milliseconds between two progress steps. */
  stepMs: number;
  /** Percent per step (the last step is clamped to 100). */
  step: number;
}

export interface ProgressFeed extends Feed {
  /** Jobs: running now, finished, and stopped because their client left. */
  readonly jobs: { running: number; completed: number; cancelled: number };
}

/**
 * `GET /api/progress`: runs one simulated job per request. `event: progress` with
 * `{"percent":N}` for 0, 5, … 100, then `event: done`, then the server ends the stream.
 *
 * The job is an async generator piped with `res.sse.pipe()`: it is read one step at a time, as
 * fast as the client reads, and when the client leaves the generator is stopped at once (its
 * sleep is aborted by `res.sse.signal`, then its `finally` runs) — no work for nobody.
 */
export function mountProgress(
  routes: Routes,
  { stepMs, step, sse: sseOptions }: ProgressOptions,
): ProgressFeed {
  const events = sse(sseOptions);
  const jobs = { running: 0, completed: 0, cancelled: 0 };
  let nextJob = 1;

  async function* job(signal: AbortSignal): AsyncGenerator<{ percent: number }> {
    jobs.running++;
    let finished = false;
    try {
      for (let percent = 0; ; percent = Math.min(100, percent + step)) {
        if (percent > 0) await sleep(stepMs, undefined, { signal });
        yield { percent };
        if (percent === 100) break;
      }
      finished = true;
    } finally {
      jobs.running--;
      if (finished) jobs.completed++;
      else jobs.cancelled++;
    }
  }

  routes.get("/api/progress", events, async (_req, res) => {
    const id = nextJob++;
    const started = Date.now();
    try {
      const done = await res.sse.pipe(job(res.sse.signal), { event: "progress" });
      if (done) {
        res.sse.send({ job: id, percent: 100, ms: Date.now() - started }, { event: "done" });
      }
    } catch (err) {
      // Not expected from this generator; a real job would report its failure like this.
      res.sse.send({ job: id, message: String(err) }, { event: "failed" });
    } finally {
      res.sse.close();
    }
  });

  return { stream: "progress", events, jobs, close: () => endStreams(events) };
}
