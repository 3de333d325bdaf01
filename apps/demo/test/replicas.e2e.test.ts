/// <reference lib="dom" />
/**
 * The deployment of docker-compose.yml without Docker: two replicas of the demo on one Redis
 * (Debian's redis-server), behind Debian's nginx running the repository's configuration with both
 * replicas as upstreams, and two pages in headless Chromium whose client-count streams are served
 * by different replicas. Both show 2 clients, and both list both people in the chat.
 */
import type { Browser, BrowserContext, Page } from "playwright-core";
import {
  ensureRedisServer,
  startRedisServer,
  type RedisServer,
} from "../../../packages/redis/test/helpers/redis-server";
import { launchChromium } from "./helpers/browser";
import { startNginx, type RunningNginx } from "./helpers/nginx";
import { startReplicas, stopReplicas, type Replica } from "./helpers/replicas";
import { waitFor } from "./harness";

jest.setTimeout(90_000);

let redis: RedisServer;
let replicas: Replica[] = [];
let nginx: RunningNginx;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  ensureRedisServer();
  redis = await startRedisServer();
  replicas = await startReplicas(redis.url, 2);
  nginx = await startNginx({
    upstreamPort: replicas.map((replica) => Number(new URL(replica.url).port)),
  });
  browser = await launchChromium();
});

afterAll(async () => {
  for (const context of contexts) await context.close();
  await browser?.close();
  await nginx?.stop();
  await stopReplicas(replicas);
  await redis?.dispose();
});

/** This replica's own client-count subscribers (not the count across replicas). */
const localViewers = (replica: Replica): number => replica.app.feeds.clientCount.channel.size;
const viewers = (): number[] => replicas.map(localViewers);

/** A page of its own browser context (its own storage), its chat name set before it loads. */
async function openPage(user: string): Promise<Page> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  contexts.push(context);
  await context.addInitScript((name) => localStorage.setItem("sluice-demo-user", name), user);
  const page = await context.newPage();
  await page.goto(`https://127.0.0.1:${nginx.httpsPort}/`);
  return page;
}

async function shows(page: Page): Promise<{ count: string; here: string; members: string[] }> {
  return {
    count: (await page.textContent("#client-count")) ?? "",
    here: (await page.textContent("#chat-here-count")) ?? "",
    members: (
      await page.$$eval("#chat-members li", (items) =>
        items.map((li) => li.firstChild?.textContent ?? ""),
      )
    ).sort(),
  };
}

describe("two replicas on Redis behind nginx, in Chromium", () => {
  test("pages served by different replicas both count 2 clients and list both names; 1 once one leaves", async () => {
    const ann = await openPage("ann");
    await waitFor(
      () => viewers().reduce((a, b) => a + b) === 1,
      "ann's client-count stream",
      10_000,
    );
    const annOn = viewers().indexOf(1);

    // nginx balances requests round robin (per worker), and every page makes the same requests in
    // the same order: open bob's page until its client-count stream lands on the other replica,
    // with a few requests in between each try to shift the rotation (bounded).
    let bob: Page | undefined;
    for (let attempt = 1; attempt <= 10 && bob === undefined; attempt++) {
      const page = await openPage("bob");
      await waitFor(
        () => viewers().reduce((a, b) => a + b) === 2,
        "bob's client-count stream",
        10_000,
      );
      if (localViewers(replicas[1 - annOn]!) === 1) bob = page;
      else {
        await page.context().close();
        for (let i = 0; i < attempt; i++) {
          await (await fetch(`http://127.0.0.1:${nginx.httpPort}/healthz`)).arrayBuffer();
        }
        await waitFor(
          () => viewers().reduce((a, b) => a + b) === 1,
          "the extra page to leave",
          10_000,
        );
      }
    }
    if (bob === undefined)
      throw new Error("bob's stream never reached the other replica in 10 tries");
    expect(viewers()).toEqual([1, 1]);

    const want = { count: "2", here: "2", members: ["ann", "bob"] };
    for (const page of [ann, bob]) {
      await page.waitForFunction(
        () =>
          document.getElementById("client-count")?.textContent === "2" &&
          document.querySelectorAll("#chat-members li").length === 2,
        undefined,
        { timeout: 10_000 },
      );
      expect(await shows(page)).toEqual(want);
    }

    await bob.context().close();
    await ann.waitForFunction(
      () =>
        document.getElementById("client-count")?.textContent === "1" &&
        document.querySelectorAll("#chat-members li").length === 1,
      undefined,
      { timeout: 10_000 },
    );
    expect(await shows(ann)).toEqual({ count: "1", here: "1", members: ["ann"] });
  });
});
