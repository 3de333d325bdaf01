import { Channel, sse } from "@sluice/express-sse";
import { endStreams, type Feed, type FeedContext, type Routes } from "./feed";

/** `event: dataUpdate` data: "the data set changed" (here, a running order count). */
export interface DataUpdate {
  /** 1, 2, 3… per app. */
  version: number;
  /** When it was published (ISO 8601). */
  at: string;
  /** Orders so far. */
  orders: number;
  /** Orders added since the previous update. */
  added: number;
}

export interface UpdatesOptions extends FeedContext {
  /** Each update comes a random [min, max) ms after the previous one. */
  intervalMs: readonly [min: number, max: number];
}

export interface UpdatesFeed extends Feed {
  readonly channel: Channel<{ dataUpdate: DataUpdate }>;
  /** `true` while the next update is scheduled (until `close()`). */
  readonly scheduled: boolean;
}

/**
 * `GET /api/updates`: `event: dataUpdate` at random 5-20 s intervals, through a `Channel` (so a
 * reconnecting client resumes with `Last-Event-ID`). One publisher timer for the whole app, not
 * one per client; unref'd, so it never keeps the process alive; stopped by `close()`.
 */
export function mountUpdates(
  routes: Routes,
  { intervalMs: [min, max], sse: sseOptions, adapter, onChannelError }: UpdatesOptions,
): UpdatesFeed {
  const events = sse(sseOptions);
  const channel = new Channel<{ dataUpdate: DataUpdate }>("updates", {
    history: { max: 100 },
    ...(adapter === undefined ? {} : { adapter }),
  });
  channel.on("error", onChannelError);
  let timer: NodeJS.Timeout | undefined;
  let version = 0;
  let orders = 0;

  const schedule = () => {
    timer = setTimeout(publishNext, min + Math.random() * (max - min));
    timer.unref();
  };
  const publishNext = () => {
    const added = 1 + Math.floor(Math.random() * 20);
    orders += added;
    version++;
    const update: DataUpdate = { version, at: new Date().toISOString(), orders, added };
    channel.publish(update, { event: "dataUpdate" }).catch((err: unknown) => {
      // The memory adapter does not fail; an adapter that does must not crash the process.
      process.emitWarning(err instanceof Error ? err : new Error(String(err)), "DemoUpdates");
    });
    schedule();
  };
  schedule();

  routes.get("/api/updates", events, (_req, res) => channel.subscribe(res));

  return {
    stream: "updates",
    events,
    channel,
    get scheduled() {
      return timer !== undefined;
    },
    async close() {
      clearTimeout(timer);
      timer = undefined;
      await channel.close();
      endStreams(events);
    },
  };
}
