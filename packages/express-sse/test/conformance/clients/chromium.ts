/// <reference lib="dom" />
/**
 * Headless Chromium's native `EventSource` (Debian's chromium, driven by playwright-core): one
 * browser and one page on the server's origin per test file; each source reports to Node through
 * a binding, in order.
 */
import { chromium, type Browser, type Page } from "playwright-core";
import { chromiumLaunchOptions } from "../../../../../test-support/chromium";
import { PAGE_PATH } from "../server";
import type { ClientAdapter, ClientSession, Observation } from "./types";

let browser: Browser | undefined;
let page: Page | undefined;
let nextSid = 1;
const logs = new Map<number, Observation[]>();

declare global {
  interface Window {
    sluiceReport(sid: number, observation: Observation): void;
    sluiceOpen(sid: number, url: string, listen: string[]): void;
    sluiceClose(sid: number): void;
  }
}

export const chromiumClient: ClientAdapter = {
  name: "chromium",
  description: "Chromium (headless, Debian's package)",
  async start(origin) {
    // Installs chromium with apt-get when missing (as root on Debian), or fails naming it.
    browser = await chromium.launch(chromiumLaunchOptions());
    page = await browser.newPage();
    await page.exposeBinding("sluiceReport", (_source, sid: number, observation: Observation) => {
      logs.get(sid)?.push(observation);
    });
    await page.goto(`${origin}${PAGE_PATH}`);
    await page.evaluate(() => {
      const sources = new Map<number, EventSource>();
      window.sluiceOpen = (sid, url, listen) => {
        const source = new EventSource(url);
        sources.set(sid, source);
        source.addEventListener("open", () => window.sluiceReport(sid, { kind: "open" }));
        source.addEventListener("error", () =>
          window.sluiceReport(sid, { kind: "error", readyState: source.readyState }),
        );
        for (const type of listen) {
          source.addEventListener(type, (event) =>
            window.sluiceReport(sid, {
              kind: "event",
              type,
              data: (event as MessageEvent<string>).data,
              lastEventId: (event as MessageEvent<string>).lastEventId,
            }),
          );
        }
      };
      window.sluiceClose = (sid) => {
        sources.get(sid)?.close();
        sources.delete(sid);
      };
    });
  },
  async stop() {
    await browser?.close();
    browser = undefined;
    page = undefined;
  },
  async open(url, listen): Promise<ClientSession> {
    if (page === undefined) throw new Error("chromium adapter: start() first");
    const sid = nextSid++;
    const log: Observation[] = [];
    logs.set(sid, log);
    const p = page;
    await p.evaluate(([s, u, l]) => window.sluiceOpen(s, u, [...l]), [sid, url, listen] as const);
    return {
      log,
      close: async () => {
        await p.evaluate((s) => window.sluiceClose(s), sid);
        logs.delete(sid);
      },
    };
  },
};
