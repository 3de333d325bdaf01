/** The conformance matrix against the `eventsource` package (see cases.ts, deviations.ts). */
import { eventsourceClient } from "./clients/eventsource";
import { runMatrix } from "./matrix";

describe(eventsourceClient.description, () => runMatrix(eventsourceClient));
