/** The conformance matrix against headless Chromium's EventSource (see cases.ts, deviations.ts). */
import { chromiumClient } from "./clients/chromium";
import { runMatrix } from "./matrix";

describe("Chromium (headless)", () => runMatrix(chromiumClient));
