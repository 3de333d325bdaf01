/**
 * The page's script in the browser run: the client (from source) and the shared scenarios,
 * bundled by esbuild (test/browser.test.ts). `window.runScenario(name, run, arg)` runs one.
 */
import { SseClient } from "../../src";
import { scenarios, type Env, type ScenarioName } from "./scenarios";

function setHidden(hidden: boolean): void {
  Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
  Object.defineProperty(document, "visibilityState", {
    configurable: true,
    get: () => (hidden ? "hidden" : "visible"),
  });
  document.dispatchEvent(new Event("visibilitychange"));
}

function heap(): number {
  // Chromium runs with --js-flags=--expose-gc and --enable-precise-memory-info.
  (window as unknown as { gc(): void }).gc();
  return (performance as unknown as { memory: { usedJSHeapSize: number } }).memory.usedJSHeapSize;
}

(window as unknown as { runScenario: unknown }).runScenario = (
  name: ScenarioName,
  run: string,
  arg?: unknown,
) => {
  const env: Env = { SseClient, base: location.origin, run, setHidden, heap };
  return (scenarios[name] as (env: Env, arg?: unknown) => Promise<unknown>)(env, arg);
};
