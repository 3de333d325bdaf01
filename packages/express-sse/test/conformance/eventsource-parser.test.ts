/** The conformance matrix against eventsource-parser over fetch (see cases.ts, deviations.ts). */
import { eventsourceParserClient } from "./clients/eventsource-parser";
import { runMatrix } from "./matrix";

describe(eventsourceParserClient.description, () => runMatrix(eventsourceParserClient));
