/** The conformance matrix against undici's `EventSource` (see cases.ts, deviations.ts). */
import { undiciClient } from "./clients/undici";
import { runMatrix } from "./matrix";

describe(undiciClient.description, () => runMatrix(undiciClient));
