import { collectEvents } from "@sluice/express-sse/testing";
import { disposeAll, eventSource, listen, makeApp, waitFor } from "./harness";

afterEach(disposeAll);

describe("GET /api/progress", () => {
  test("progress 0..100 in steps of 5, then `done`, then the server ends the stream", async () => {
    const app = makeApp({ progressStepMs: 2 });
    const result = await collectEvents(app, { path: "/api/progress", timeout: 4000 });
    expect(result.ended).toBe(true);
    const progress = result.events.slice(0, -1);
    expect(progress.every((e) => e.event === "progress")).toBe(true);
    expect(progress.map((e) => JSON.parse(e.data))).toEqual(
      Array.from({ length: 21 }, (_, i) => ({ percent: i * 5 })),
    );
    const done = result.events.at(-1)!;
    expect(done.event).toBe("done");
    expect(JSON.parse(done.data)).toMatchObject({ percent: 100, job: 1, ms: expect.any(Number) });
    expect(app.feeds.progress.jobs).toEqual({ running: 0, completed: 1, cancelled: 0 });
  });

  test("a step that does not divide 100 still ends exactly at 100", async () => {
    const app = makeApp({ progressStepMs: 1, progressStep: 30 });
    const { events } = await collectEvents(app, { path: "/api/progress" });
    expect(events.map((e) => e.event)).toEqual([...Array(5).fill("progress"), "done"]);
    expect(
      events.slice(0, -1).map((e) => (JSON.parse(e.data) as { percent: number }).percent),
    ).toEqual([0, 30, 60, 90, 100]);
  });

  test("each request runs its own job", async () => {
    const app = makeApp({ progressStepMs: 1, progressStep: 25 });
    const [a, b] = await Promise.all([
      collectEvents(app, { path: "/api/progress" }),
      collectEvents(app, { path: "/api/progress" }),
    ]);
    const jobs = [a, b].map((r) => (JSON.parse(r.events.at(-1)!.data) as { job: number }).job);
    expect(jobs.sort()).toEqual([1, 2]);
    expect(app.feeds.progress.jobs.completed).toBe(2);
  });

  test("a client that leaves mid-job stops the job at once (no further steps)", async () => {
    const app = makeApp({ progressStepMs: 40 });
    const { url } = await listen(app);
    const { events, ended } = await collectEvents(url, { path: "/api/progress", count: 3 });
    expect(ended).toBe(false); // we hung up
    expect(events.map((e) => JSON.parse(e.data))).toEqual([
      { percent: 0 },
      { percent: 5 },
      { percent: 10 },
    ]);
    // The generator is aborted in its sleep, well before the job would have finished (~800 ms).
    await waitFor(() => app.feeds.progress.jobs.running === 0, "the job to stop", 2000);
    expect(app.feeds.progress.jobs).toEqual({ running: 0, completed: 0, cancelled: 1 });
    const sent = app.feeds.progress.events.stats().events;
    await new Promise((r) => setTimeout(r, 120));
    expect(app.feeds.progress.events.stats().events).toBe(sent);
  });

  test("the browser client: progress events, done, and the stream ends", async () => {
    const app = makeApp({ progressStepMs: 2, progressStep: 10 });
    const { url } = await listen(app);
    const source = eventSource(`${url}/api/progress`);
    const percents: number[] = [];
    let done = false;
    source.addEventListener("progress", (e) =>
      percents.push((JSON.parse(e.data) as { percent: number }).percent),
    );
    source.addEventListener("done", () => {
      done = true;
      source.close(); // as the page does: else EventSource would reconnect and start a new job
    });
    await waitFor(() => done, "done");
    expect(percents).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    await waitFor(() => app.feeds.progress.events.stats().open === 0, "the stream to close");
    expect(app.feeds.progress.jobs.completed).toBe(1);
  });
});
