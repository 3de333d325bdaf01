/**
 * The conformance matrix against Node's own `EventSource`, where this Node has one (from Node 22,
 * behind --experimental-eventsource). Node 20 has none: then the matrix says so, and asserts it.
 */
import { nodeClient, nodeEventSource } from "./clients/node";
import { runMatrix } from "./matrix";

const builtin = nodeEventSource();
const major = Number(process.versions.node.split(".")[0]);

if (builtin.available) {
  const client = nodeClient(builtin.flags);
  describe(client.description, () => runMatrix(client));
} else {
  test(`Node ${process.versions.node} has no EventSource: none in this process, none under --experimental-eventsource (Node 22 added it); the matrix runs it where it exists`, () => {
    // Absent only where it should be: from Node 22 on, a missing EventSource is a failure.
    expect(major).toBeLessThan(22);
    expect(typeof (globalThis as { EventSource?: unknown }).EventSource).toBe("undefined");
    expect(builtin.why).toBe(
      'typeof EventSource is "undefined", and --experimental-eventsource gives exit code 9',
    );
    expect(builtin.stderr).toContain("bad option: --experimental-eventsource");
  });
}
