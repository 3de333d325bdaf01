/**
 * Debian's Chromium, headless, driven by playwright-core: launched the way every browser test of
 * the workspace needs it on this closed network (test-support/chromium.ts).
 */
import { chromium, type Browser } from "playwright-core";
import { chromiumLaunchOptions } from "../../../../test-support/chromium";

/** Launches headless Chromium; installs it when it can, else fails naming the Debian package. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch(chromiumLaunchOptions());
}
