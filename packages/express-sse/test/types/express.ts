// Type-level tests, checked by `pnpm typecheck` (tsc over test/). Each @ts-expect-error must stay
// an error: if the types loosen, tsc reports the directive as unused and the build fails.
import express from "express";
import { sse, type SseStream, type StreamClosedError } from "../../src";

const app = express();
app.use(sse({ heartbeat: 15_000, retry: 3_000 }));
app.get("/typed", sse(), (req, res) => {
  const stream: SseStream = res.sse; // declaration merging: no cast needed
  const ok: boolean = stream.send({ any: "json" }, { event: "e", id: 1, retry: 10 });
  const reason: StreamClosedError | undefined = stream.closeReason;
  const id: string | undefined = res.sse.lastEventId;
  res.sse.onClose((r) => r.type satisfies "client-disconnected" | string);
  void [ok, reason, id, req];
  // @ts-expect-error res.sse is read-only
  res.sse = stream;
  // @ts-expect-error event names are strings
  res.sse.send("x", { event: 1 });
  // @ts-expect-error unknown send option
  res.sse.send("x", { name: "e" });
});

// @ts-expect-error unknown option
sse({ heartBeat: 1 });
