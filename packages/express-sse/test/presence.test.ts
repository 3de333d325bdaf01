/**
 * Presence on the in-memory adapter: the subscriber count and its coalesced `count` event, the
 * members' app data (`subscribe({ member })`), and bad app data refused before the stream opens.
 */
import express from "express";
import type { Socket } from "node:net";
import { Channel, MAX_MEMBER_BYTES, sse } from "../src";
import { activeResources } from "./helpers/gc";
import { closeAllServers, listen, rawRequest, waitFor } from "./helpers/server";

afterEach(closeAllServers);

/** An app whose `/c?user=…` subscribes with `{ member: { user } }`, and `/c` without app data. */
async function presenceApp(channel: Channel) {
  const app = express();
  app.use(sse({ heartbeat: 0 }));
  const refused: string[] = [];
  app.get("/c", (req, res) => {
    const user = req.query["user"];
    try {
      void channel.subscribe(res, typeof user === "string" ? { member: { user } } : {});
    } catch (error) {
      refused.push((error as Error).message);
      res.status(400).end();
    }
  });
  app.get("/bad/:kind", (req, res) => {
    const circular: Record<string, unknown> = {};
    circular["self"] = circular;
    const members: Record<string, unknown> = {
      circular,
      bigint: { n: 1n },
      function: () => undefined,
      symbol: Symbol("x"),
      large: { text: "x".repeat(MAX_MEMBER_BYTES) },
    };
    try {
      void channel.subscribe(res, { member: members[req.params["kind"]!] });
      refused.push("accepted");
    } catch (error) {
      refused.push(`${(error as Error).name}: ${(error as Error).message}`);
      // The stream was never opened: the app can still answer as it likes.
      res.status(400).json({ headersSentBefore: res.headersSent });
    }
  });
  const server = await listen(app);
  return { server, refused };
}

const open = (port: number, path: string): Promise<Socket> => rawRequest(port, path);

test("count: every join and leave is counted; count events are coalesced and end on the exact count", async () => {
  const interval = 100;
  const channel = new Channel("presence-count", { presenceInterval: interval });
  const counts: Array<[number, number]> = [];
  channel.on("count", (count) => counts.push([performance.now(), count]));
  const { server } = await presenceApp(channel);

  const start = performance.now();
  const sockets = await Promise.all(Array.from({ length: 300 }, () => open(server.port, "/c")));
  await waitFor(() => channel.count === 300, { what: "300 subscribers" });
  await waitFor(() => counts.at(-1)?.[1] === 300, { what: "a last count of 300" });
  const joined = performance.now();
  // At most one per interval, plus the first one at once.
  expect(counts.length).toBeLessThanOrEqual(Math.ceil((joined - start) / interval) + 1);
  for (let i = 1; i < counts.length; i++) {
    expect(counts[i]![0] - counts[i - 1]![0]).toBeGreaterThanOrEqual(interval - 2);
  }

  for (const socket of sockets.slice(0, 120)) socket.destroy();
  await waitFor(() => channel.count === 180 && counts.at(-1)?.[1] === 180, {
    what: "a last count of 180",
  });
  expect(channel.count).toBe(channel.size);
  for (const socket of sockets.slice(120)) socket.destroy();
  await waitFor(() => counts.at(-1)?.[1] === 0, { what: "a last count of 0" });
  expect(counts.every(([, count]) => count >= 0 && count <= 300)).toBe(true);
  await channel.close();
}, 20_000);

test("no count listener: no timer; presenceInterval 0 tells every change", async () => {
  const quiet = new Channel("presence-quiet", { presenceInterval: 10_000 });
  const { server } = await presenceApp(quiet);
  const before = activeResources()["Timeout"] ?? 0;
  const socket = await open(server.port, "/c");
  await waitFor(() => quiet.count === 1, { what: "a subscriber" });
  // Timers of the previous test's closing sockets may still be running: wait until they end,
  // well within presenceInterval (10 s), so a presence timer would still be caught.
  await waitFor(() => (activeResources()["Timeout"] ?? 0) <= before, {
    timeout: 2_000,
    what: "no timer beyond those before the subscriber",
  });
  expect(activeResources()["Timeout"] ?? 0).toBe(before);
  socket.destroy();
  await waitFor(() => quiet.count === 0, { what: "no subscriber" });
  await quiet.close();

  const every = new Channel("presence-every", { presenceInterval: 0 });
  const counts: number[] = [];
  every.on("count", (count) => counts.push(count));
  const app = await presenceApp(every);
  const sockets = [];
  for (let i = 0; i < 3; i++) {
    sockets.push(await open(app.server.port, "/c"));
    await waitFor(() => counts.length === i + 1, { what: `count ${i + 1}` });
  }
  expect(counts).toEqual([1, 2, 3]);
  await every.close();
  expect(() => new Channel("x", { presenceInterval: -1 })).toThrow(RangeError);
});

test("members: each subscriber's app data once, the total with those without; a client that leaves disappears", async () => {
  const channel = new Channel("presence-members");
  const joins: unknown[] = [];
  const leaves: unknown[] = [];
  channel.on("member:join", (member) => joins.push(member));
  channel.on("member:leave", (member) => leaves.push(member));
  const { server } = await presenceApp(channel);

  const ann = await open(server.port, "/c?user=ann");
  const bob = await open(server.port, "/c?user=bob");
  const annAgain = await open(server.port, "/c?user=ann"); // a second tab: a second subscriber
  const anonymous = await open(server.port, "/c");
  await waitFor(() => channel.count === 4, { what: "4 subscribers" });

  const all = await channel.members();
  expect(all.total).toBe(4);
  expect(all.members).toEqual([{ user: "ann" }, { user: "bob" }, { user: "ann" }]);
  expect(joins).toEqual(all.members);
  const two = await channel.members({ limit: 2 });
  expect(two).toEqual({ total: 4, members: [{ user: "ann" }, { user: "bob" }] });

  bob.destroy();
  await waitFor(() => channel.count === 3, { what: "bob to leave" });
  expect(leaves).toEqual([{ user: "bob" }]);
  expect((await channel.members()).members).toEqual([{ user: "ann" }, { user: "ann" }]);
  anonymous.destroy();
  await waitFor(() => channel.count === 2, { what: "the anonymous client to leave" });
  expect(leaves).toEqual([{ user: "bob" }]); // no app data, no member:leave
  expect(() => channel.members({ limit: -1 })).toThrow(RangeError);
  ann.destroy();
  annAgain.destroy();
  await channel.close();
});

test("bad app data: a TypeError at subscribe() that says why, and the stream is not opened", async () => {
  const channel = new Channel("presence-bad");
  const { server, refused } = await presenceApp(channel);
  for (const kind of ["circular", "bigint", "function", "symbol", "large"]) {
    const res = await fetch(`${server.url}/bad/${kind}`);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ headersSentBefore: false });
  }
  expect(refused[0]).toMatch(
    /^TypeError: The "member" option must be JSON-serializable: .*circular/i,
  );
  expect(refused[1]).toMatch(/^TypeError: The "member" option must be JSON-serializable: .*BigInt/);
  expect(refused[2]).toMatch(/^TypeError: The "member" option must be JSON-serializable, got/);
  expect(refused[3]).toMatch(/^TypeError: The "member" option must be JSON-serializable, got/);
  expect(refused[4]).toMatch(
    new RegExp(
      `^TypeError: The "member" option is \\d+ bytes as JSON; at most ${MAX_MEMBER_BYTES}`,
    ),
  );
  expect(channel.count).toBe(0);
  expect(channel.size).toBe(0);
  // The channel goes on: a good subscriber after the bad ones.
  const socket = await open(server.port, "/c?user=ann");
  await waitFor(() => channel.count === 1, { what: "a subscriber" });
  socket.destroy();
  await waitFor(() => channel.count === 0, { what: "the subscriber to leave" });
  await channel.close();
});
