/// <reference lib="dom" />
/**
 * The demo page in a real browser: Debian's Chromium driven by playwright-core, through Debian's
 * nginx running the repository's own configuration (HTTPS + HTTP/2 and plain HTTP/1.1).
 *
 * The screenshot of the page is written to apps/demo/test-artifacts/ (ignored by git) so a person
 * can look at what the test saw.
 */
import fs from "node:fs";
import http, { type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { createApp, type DemoApp } from "../src/app";
import { signToken } from "../src/auth/token";
import { startNginx, type RunningNginx } from "./helpers/nginx";
import { launchChromium } from "./helpers/browser";

jest.setTimeout(60_000);

const ARTIFACTS = path.resolve(__dirname, "..", "test-artifacts");

let app: DemoApp;
let server: Server;
let nginx: RunningNginx;
let browser: Browser;
let context: BrowserContext;
/** Every request the app received (through nginx), in order, with its status once answered. */
interface Received {
  method: string;
  url: string;
  authorization: string | undefined;
  lastEventId: string | undefined;
  status?: number;
}
const requests: Received[] = [];

beforeAll(async () => {
  app = createApp({
    tickMs: 200,
    tickerIntervalMs: 100,
    progressStepMs: 50,
    // Private streams that outlive their token within seconds, so the page's refusal-and-resume
    // loop runs during the test (in production: 60 s tokens, 15 min streams).
    streamTokenTtlMs: 1_000,
    privateStreamLifetimeMs: 1_500,
  });
  server = http.createServer((req, res) => {
    const received: Received = {
      method: req.method ?? "",
      url: req.url ?? "",
      authorization: req.headers.authorization,
      lastEventId: req.headers["last-event-id"] as string | undefined,
    };
    requests.push(received);
    // A refused request's status; a stream's once its head is written (it ends much later).
    const record = () => (received.status ??= res.statusCode);
    res.once("finish", record);
    const writeHead = res.writeHead;
    res.writeHead = function (this: typeof res, ...args: Parameters<typeof writeHead>) {
      const result = writeHead.apply(this, args);
      record();
      return result;
    } as typeof writeHead;
    app(req, res);
  });
  server.listen(0, "127.0.0.1");
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  nginx = await startNginx({ upstreamPort: (server.address() as AddressInfo).port });
  browser = await launchChromium();
  // The certificate is the self-signed one nginx/gen-cert.sh made.
  context = await browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 900 },
  });
});

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await nginx?.stop();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await app?.close();
});

const httpsOrigin = () => `https://127.0.0.1:${nginx.httpsPort}`;
const httpOrigin = () => `http://127.0.0.1:${nginx.httpPort}`;

async function protocolOf(page: Page): Promise<string> {
  return page.evaluate(
    () =>
      (performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming)
        .nextHopProtocol,
  );
}

/** Resolves once the page has laid out and painted a frame (after a resize, say). */
async function nextFrame(page: Page): Promise<void> {
  await page.evaluate(
    () =>
      new Promise<void>((resolve) =>
        requestAnimationFrame(() => requestAnimationFrame(() => resolve())),
      ),
  );
}

/** How many columns the page's grid of panels has now. */
function gridColumns(page: Page): Promise<number> {
  return page.evaluate(
    () => getComputedStyle(document.querySelector("main")!).gridTemplateColumns.split(" ").length,
  );
}

/** Opens `count` EventSources to `path` in the page and returns how many got an event in `ms`. */
async function concurrentStreams(page: Page, count: number, ms: number): Promise<number> {
  return page.evaluate(
    ({ count, ms }) =>
      new Promise<number>((resolve) => {
        const sources: EventSource[] = [];
        const received = new Set<number>();
        for (let i = 0; i < count; i++) {
          const source = new EventSource("/api/time");
          source.addEventListener("time", () => received.add(i));
          sources.push(source);
        }
        setTimeout(() => {
          for (const source of sources) source.close();
          resolve(received.size);
        }, ms);
      }),
    { count, ms },
  );
}

describe("the demo page in Chromium", () => {
  test("over HTTPS + HTTP/2 through nginx: streams open, the clock ticks, the chart draws", async () => {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (err) => errors.push(String(err)));
    try {
      await page.goto(`${httpsOrigin()}/`);
      expect(await protocolOf(page)).toBe("h2");
      for (const stream of ["time", "client-count", "chat", "ticker", "updates"]) {
        await page.waitForFunction(
          (id) => document.getElementById(id)?.textContent?.trim() === "OPEN",
          `state-${stream}`,
          { timeout: 10_000 },
        );
      }
      // Panels the page has not opened (the job, private notifications) or has closed itself
      // (/sse after demo10) read IDLE, not CLOSED: nothing went wrong.
      for (const stream of ["progress", "private", "sse"]) {
        await page.waitForFunction(
          (id) => document.getElementById(id)?.textContent?.trim() === "IDLE",
          `state-${stream}`,
          { timeout: 10_000 },
        );
      }
      const first = await page.textContent("#clock");
      await page.waitForFunction(
        (before) => document.getElementById("clock")?.textContent !== before,
        first,
        {
          timeout: 5_000,
        },
      );
      // The ticker chart has drawn something: some pixel of the canvas is not transparent.
      await page.waitForFunction(
        () => {
          const canvas = document.getElementById("ticker-chart") as HTMLCanvasElement | null;
          const ctx = canvas?.getContext("2d");
          if (!canvas || !ctx || canvas.width === 0) return false;
          const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
          for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return true;
          return false;
        },
        undefined,
        { timeout: 5_000 },
      );
      // A progress job runs to 100 %.
      await page.click("#progress-start");
      await page.waitForFunction(
        () =>
          (document.getElementById("progress-bar") as HTMLProgressElement | null)?.dataset[
            "state"
          ] === "done",
        undefined,
        {
          timeout: 10_000,
        },
      );
      expect(await page.getAttribute("#progress-bar", "value")).toBe("100");
      // For the screenshot only (nothing below depends on it): the bar's 0.2 s width transition,
      // on a pseudo-element that no animation API reports, has ended.
      await page.waitForTimeout(300);
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, "demo-h2.png"), fullPage: true });
      expect(errors).toEqual([]);
      // As the README says: three columns on a wide screen (the page is at most 76rem wide).
      expect(await gridColumns(page)).toBe(3);

      // The same page on a phone-sized screen: one column, nothing wider than the viewport.
      await page.setViewportSize({ width: 390, height: 844 });
      await nextFrame(page);
      expect(await gridColumns(page)).toBe(1);
      const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - window.innerWidth,
      );
      expect(overflow).toBeLessThanOrEqual(0);
      await page.screenshot({ path: path.join(ARTIFACTS, "demo-phone.png") });
    } finally {
      await page.close();
    }
  });

  test("a chat message posted in one page appears in a second page", async () => {
    const [alice, bob] = [await context.newPage(), await context.newPage()];
    try {
      await Promise.all([alice.goto(`${httpsOrigin()}/`), bob.goto(`${httpsOrigin()}/`)]);
      for (const page of [alice, bob]) {
        await page.waitForFunction(
          () => document.getElementById("state-chat")?.textContent?.trim() === "OPEN",
        );
      }
      const text = `hello from alice ${Date.now()}`;
      await alice.fill("#chat-user", "alice");
      await alice.fill("#chat-text", text);
      await alice.click("#chat-send");
      await bob.waitForFunction(
        (t) => document.getElementById("chat-messages")?.textContent?.includes(t),
        text,
        {
          timeout: 5_000,
        },
      );
      expect(await bob.textContent("#chat-messages")).toContain("alice");
      // 24-hour time, as the clock and the log (no AM/PM).
      const time = await bob.textContent("#chat-messages li:last-child time");
      expect(time).toMatch(/^\d{2}:\d{2}$/);
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  test("HTTP/2 lifts the 6-connection limit: 10 EventSources to one origin all get events; over HTTP/1.1 only 6 do", async () => {
    const h2 = await context.newPage();
    const h1 = await context.newPage();
    try {
      // A page with no streams of its own, so the count is only the test's EventSources.
      await h2.goto(`${httpsOrigin()}/healthz`);
      expect(await protocolOf(h2)).toBe("h2");
      expect(await concurrentStreams(h2, 10, 2_500)).toBe(10);

      await h1.goto(`${httpOrigin()}/healthz`);
      expect(await protocolOf(h1)).toBe("http/1.1");
      expect(await concurrentStreams(h1, 10, 2_500)).toBe(6);
    } finally {
      await h2.close();
      await h1.close();
    }
  });

  test("private notifications through @sluice/client: sign in, send one to yourself, it appears once; the token goes in the Authorization header; expired tokens are re-minted and nothing is lost", async () => {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (err) => errors.push(String(err)));
    const user = `carol-${Date.now()}`;
    try {
      await page.goto(`${httpsOrigin()}/`);
      await page.fill("#private-user", user);
      await page.click("#private-login");
      await page.waitForFunction(
        () => document.getElementById("state-private")?.textContent?.trim() === "OPEN",
      );
      expect(await page.textContent("#private-whoami")).toBe(user);
      expect(await page.inputValue("#private-to")).toBe(user); // yourself, by default

      await page.fill("#private-text", "a note to self");
      await page.click("#private-send");
      await page.waitForFunction(
        () =>
          document.getElementById("private-notifications")?.textContent?.includes("note to self"),
        undefined,
        { timeout: 5_000 },
      );
      expect(await page.textContent("#private-notifications .who")).toBe(user);
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      await page
        .locator("#panel-private")
        .screenshot({ path: path.join(ARTIFACTS, "demo-private.png") });

      // Streams end after ~1.5 s and tokens after 1 s: the client's reconnect is refused (401), its
      // onUnauthorized mints a token and it resumes. Notifications sent meanwhile all arrive.
      const sent: string[] = [];
      for (let i = 1; i <= 12; i++) {
        sent.push(`tick ${i}`);
        await page.fill("#private-text", `tick ${i}`);
        await page.click("#private-send");
        await page.waitForFunction(
          () => (document.getElementById("private-text") as HTMLInputElement).value === "",
        );
        await page.waitForTimeout(350);
      }
      await page.waitForFunction(
        (n) => document.querySelectorAll("#private-notifications li:not(.notice)").length === n,
        sent.length + 1,
        { timeout: 10_000 },
      );
      const texts = await page.$$eval("#private-notifications li .text", (els) =>
        els.map((el) => el.textContent),
      );
      expect(texts.reverse()).toEqual(["a note to self", ...sent]); // the list is newest first
      expect(Number(await page.textContent("#reconnects-private"))).toBeGreaterThanOrEqual(1);

      // Every stream request carried its token in the header, none in the URL (access logs).
      const streams = requests.filter((r) => r.url.split("?")[0] === "/api/me/events");
      expect(streams.length).toBeGreaterThanOrEqual(3);
      for (const r of streams) {
        expect(r.url).toBe("/api/me/events");
        expect(r.authorization).toMatch(/^Bearer [\w-]+\.[\w-]+$/);
      }
      // An expired token was refused, and the next request had a new one and resumed by header.
      const refused = streams.findIndex((r) => r.status === 401);
      expect(refused).toBeGreaterThanOrEqual(1);
      const retried = streams[refused + 1];
      expect(retried?.authorization).not.toBe(streams[refused]?.authorization);
      expect(retried?.lastEventId).toMatch(/.+/);
      expect(streams.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(2);
      expect(requests.some((r) => r.method === "POST" && r.url === "/api/stream-token")).toBe(true);
      expect(await page.locator("#private-notifications .notice").count()).toBe(0);
      expect(errors).toEqual([]);

      // On a phone: the forms above the list, nothing wider than the screen.
      await page.setViewportSize({ width: 390, height: 844 });
      await nextFrame(page);
      const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - window.innerWidth,
      );
      expect(overflow).toBeLessThanOrEqual(0);
      await page
        .locator("#panel-private")
        .screenshot({ path: path.join(ARTIFACTS, "demo-private-phone.png") });
    } finally {
      await page.close();
    }
  });

  test("an EventSource with a forged token ends CLOSED (readyState 2) after exactly one request", async () => {
    const page = await context.newPage();
    try {
      await page.goto(`${httpsOrigin()}/healthz`);
      const forged = signToken("not-the-server-secret-0123456789-abcdef", {
        sub: "alice",
        exp: Date.now() + 60_000,
        aud: "stream",
      });
      const states = await page.evaluate(
        (token) =>
          new Promise<number[]>((resolve) => {
            const source = new EventSource(`/api/me/events?token=${token}`);
            const seen: number[] = [];
            source.addEventListener("error", () => seen.push(source.readyState));
            // Long enough for the retries a non-fatal error would bring (the stream sends
            // retry: 3000 only once open, so use the browser's default of ~3 s and more).
            setTimeout(() => resolve([...seen, source.readyState]), 4_000);
          }),
        forged,
      );
      expect(states).toEqual([2, 2]); // one error, CLOSED, and still CLOSED
      expect(requests.filter((r) => r.url.includes(forged))).toHaveLength(1);
    } finally {
      await page.close();
    }
  });
});
