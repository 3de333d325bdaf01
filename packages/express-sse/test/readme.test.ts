/**
 * The README's channels example, run as it is written (its TypeScript compiled, `app.listen`
 * swapped for an export): a newcomer's first requests against it, a body-less POST included,
 * must get the answers the README implies, never a 500 with a stack trace.
 */
import fs from "node:fs";
import path from "node:path";
import request from "supertest";
import ts from "typescript";
import type { Express } from "express";
import type { Channel } from "../src";
import { collectEvents } from "../src/testing";
import { closeAllServers, listen, waitFor } from "./helpers/server";

afterEach(closeAllServers);

const README = fs.readFileSync(path.join(__dirname, "..", "README.md"), "utf8");

/** The first ```ts block after `heading`. */
function codeAfter(heading: string): string {
  const start = README.indexOf(heading);
  if (start === -1) throw new Error(`README.md has no "${heading}"`);
  const match = /```ts\n([\s\S]*?)```/.exec(README.slice(start));
  if (match === null) throw new Error(`no ts block after "${heading}"`);
  return match[1]!;
}

/** Compiles and runs the channels example; `app.listen(3000)` becomes an export. */
function channelsExample(): { app: Express; chat: Channel } {
  const source = codeAfter("## Channels: broadcast, history and resume");
  expect(source).toContain("app.listen(3000);");
  const js = ts.transpileModule(
    source.replace("app.listen(3000);", "module.exports = { app, chat };"),
    {
      compilerOptions: {
        module: ts.ModuleKind.CommonJS,
        target: ts.ScriptTarget.ES2022,
        esModuleInterop: true,
      },
    },
  ).outputText;
  const modules: Record<string, unknown> = {
    express: require("express"),
    "@sluice/express-sse": require("../src"),
  };
  const load = (name: string): unknown => {
    if (!(name in modules)) throw new Error(`the example imports ${name}`);
    return modules[name];
  };
  const module = { exports: {} as { app: Express; chat: Channel } };
  new Function("require", "module", "exports", js)(load, module, module.exports);
  return module.exports;
}

describe("README: the channels example", () => {
  test("POST /api/chat without a body, with text/plain, or with bad fields: 400 and a JSON error", async () => {
    const { app, chat } = channelsExample();
    const answers = [
      await request(app).post("/api/chat"),
      await request(app).post("/api/chat").set("Content-Type", "text/plain").send("hi"),
      await request(app).post("/api/chat").send({ user: "ada" }),
      await request(app).post("/api/chat").send({ user: "  ", text: "hi" }),
      await request(app)
        .post("/api/chat")
        .send({ user: "ada", text: "x".repeat(501) }),
      await request(app).post("/api/typing"),
    ];
    for (const res of answers) {
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error: expect.stringMatching(/^send JSON/) });
    }
    expect(chat.stats().events).toBe(0); // nothing was published
  });

  test("a valid message: 202 {id}, and a subscriber gets it; typing arrives as its own event", async () => {
    const { app, chat } = channelsExample();
    const { url } = await listen(app);
    const pending = collectEvents(url, { path: "/api/chat", count: 2 });
    await waitFor(() => chat.size === 1, { what: "the subscriber" });
    const res = await request(app).post("/api/chat").send({ user: " ada ", text: "hello" });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ id: expect.any(String) });
    await request(app).post("/api/typing").send({ user: "bob" }).expect(204);
    const { events } = await pending;
    expect(events.map((e) => [e.event, e.id, e.data])).toEqual([
      ["message", res.body.id, JSON.stringify({ user: "ada", text: "hello" })],
      ["typing", expect.any(String), "bob"], // a string is sent as it is
    ]);
  });
});
