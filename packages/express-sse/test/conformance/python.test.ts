/** The conformance matrix against a Python client (see clients/sse_client.py, cases.ts). */
import { pythonClient, pythonVersion } from "./clients/python";
import { runMatrix } from "./matrix";

describe(`${pythonClient.description}, ${pythonVersion()}`, () => runMatrix(pythonClient));
