/**
 * Debian's Chromium, headless, driven by playwright-core: launched the way every browser test of
 * the demo needs it on this closed network.
 */
import { chromium, type Browser } from "playwright-core";
import { findProgram } from "../../../../test-support/system";

/** Launches headless Chromium; fails naming the Debian package if it is missing. */
export async function launchChromium(): Promise<Browser> {
  const executablePath = findProgram("chromium");
  if (executablePath === undefined) {
    throw new Error("chromium is not installed (Debian package: chromium)");
  }
  return chromium.launch({
    executablePath,
    headless: true,
    // The flags this machine needs (closed network: no background connections, no QUIC).
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}
