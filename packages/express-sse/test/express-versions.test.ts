import { EventSource } from "eventsource";
import { Channel, shutdown, sse } from "../src";
import { collectEvents } from "../src/testing";
import { EXPRESS_VERSIONS } from "./helpers/express";
import { closeAllServers, listen, waitFor } from "./helpers/server";

afterEach(closeAllServers);

// stream.test.ts runs every res.sse case on both majors; this runs the channel, resume, pipe and
// shutdown paths end to end on both, with async handlers (Express 5 awaits them, 4 ignores them).
describe.each(EXPRESS_VERSIONS)("%s", (_name, express) => {
  test("is the major it claims to be", () => {
    const version = (
      require(_name === "Express 4" ? "express4/package.json" : "express/package.json") as {
        version: string;
      }
    ).version;
    expect(version.split(".")[0]).toBe(_name === "Express 4" ? "4" : "5");
  });

  test("channel subscribe, publish through a JSON route, resume and reset", async () => {
    const channel = new Channel<{ message: { text: string } }>("chat");
    const app = express();
    app.use(sse({ retry: 10 }));
    app.get("/chat", (_req, res) => channel.subscribe(res));
    app.post("/chat", express.json(), async (req, res) => {
      const id = await channel.publish({ text: String(req.body.text) });
      res.status(202).json({ id });
    });
    const { url } = await listen(app);
    const post = async (text: string) =>
      (
        (await (
          await fetch(`${url}/chat`, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ text }),
          })
        ).json()) as { id: string }
      ).id;

    const es = new EventSource(`${url}/chat`);
    const got: string[] = [];
    es.addEventListener("message", (e) => got.push(JSON.parse(e.data).text));
    try {
      await waitFor(() => channel.size === 1, { what: "subscriber" });
      const first = await post("one");
      await post("two");
      await waitFor(() => got.length === 2, { what: "two messages" });
      expect(got).toEqual(["one", "two"]);
      const resumed = await collectEvents(url, {
        path: "/chat",
        count: 1,
        headers: { "Last-Event-ID": first },
      });
      expect(resumed.events.map((e) => JSON.parse(e.data).text)).toEqual(["two"]);
      const reset = await collectEvents(url, {
        path: "/chat",
        count: 1,
        headers: { "Last-Event-ID": "stale" },
      });
      expect(reset.events[0]?.event).toBe("reset");
    } finally {
      es.close();
    }
  });

  test("an async handler piping a generator, and shutdown with the stream open", async () => {
    const app = express();
    app.use(sse());
    app.get("/tokens", async (_req, res) => {
      await res.sse.pipe(
        (async function* () {
          yield "a";
          yield "b";
          await new Promise(() => {}); // an upstream that stalls
        })(),
        { event: "token" },
      );
    });
    const server = await listen(app);
    const collected = collectEvents(server.url, { path: "/tokens", until: (e) => e.data === "b" });
    expect((await collected).events.map((e) => `${e.event}:${e.data}`)).toEqual([
      "token:a",
      "token:b",
    ]);
    const open = collectEvents(server.url, { path: "/tokens", timeout: 5000, until: () => false });
    await new Promise((r) => setTimeout(r, 50));
    await shutdown(server.server, { timeout: 2000 });
    const result = await open;
    expect(result.ended).toBe(true);
  });
});
