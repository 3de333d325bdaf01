/**
 * The conformance matrix against Node's own `EventSource` where this Node has one: undici's,
 * bundled, behind --experimental-eventsource (Node 20.20.2 has it; Node 22 and later too). A
 * Node without one says so: the test asserts its absence, and that this Node is too old to have
 * it.
 */
import { nodeClient, nodeEventSource } from "./clients/node";
import { runMatrix } from "./matrix";

const builtin = nodeEventSource();

if (builtin.available) {
  const client = nodeClient(builtin.flags);
  describe(client.description, () => runMatrix(client));
} else {
  test(`Node ${process.versions.node} has no EventSource, with or without --experimental-eventsource`, () => {
    expect(Number(process.versions.node.split(".")[0])).toBeLessThan(22);
    expect(typeof (globalThis as { EventSource?: unknown }).EventSource).toBe("undefined");
    expect(builtin.why).toMatch(
      /^typeof EventSource is "undefined", and --experimental-eventsource /,
    );
  });
}
