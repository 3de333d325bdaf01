/**
 * How every browser test of the workspace launches Debian's Chromium through playwright-core: the
 * executable (installed with apt-get when missing, as root on Debian, or a failure that names the
 * package) and the flags this closed network needs. Each suite passes its own playwright-core
 * `chromium` (the package is a dev dependency of each suite, not of this folder).
 */
import { ensurePrograms } from "./system";

/** No sandbox (root in a container), no GPU, and no connection anywhere but the test's servers. */
export const CHROMIUM_ARGS: readonly string[] = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** The options for `chromium.launch()`: headless Debian Chromium, with `extraArgs` appended. */
export function chromiumLaunchOptions(extraArgs: readonly string[] = []): {
  executablePath: string;
  headless: true;
  args: string[];
} {
  const executablePath = ensurePrograms([{ program: "chromium", debianPackage: "chromium" }]).get(
    "chromium",
  );
  if (executablePath === undefined)
    throw new Error("chromium is not installed (Debian package: chromium)");
  return { executablePath, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs] };
}
