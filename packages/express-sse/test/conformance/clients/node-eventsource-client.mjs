// Node's own EventSource (undici's, behind --experimental-eventsource since Node 22), driven
// over JSON lines like the Python client (see child.ts). Run with that flag where needed.
import readline from "node:readline";

const sources = new Map();
const report = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

if (typeof globalThis.EventSource !== "function") {
  process.stderr.write(`no EventSource in Node ${process.versions.node}\n`);
  process.exit(2);
}
report({ ready: true });
const input = readline.createInterface({ input: process.stdin });
input.on("line", (line) => {
  const command = JSON.parse(line);
  if (command.cmd === "open") {
    const { sid, url, listen } = command;
    const source = new EventSource(url);
    let told = source.readyState;
    // A source that closes itself without an event is reported by polling its readyState.
    const poll = setInterval(() => {
      if (source.readyState === told) return;
      told = source.readyState;
      report({ sid, kind: "state", readyState: told });
    }, 10);
    sources.set(sid, { source, poll });
    source.addEventListener("open", () => {
      told = source.readyState;
      report({ sid, kind: "open" });
    });
    source.addEventListener("error", () => {
      told = source.readyState;
      report({ sid, kind: "error", readyState: source.readyState });
    });
    for (const type of listen) {
      source.addEventListener(type, (event) =>
        report({ sid, kind: "event", type, data: event.data, lastEventId: event.lastEventId }),
      );
    }
  } else if (command.cmd === "close") {
    const entry = sources.get(command.sid);
    if (entry !== undefined) {
      clearInterval(entry.poll);
      entry.source.close();
    }
    sources.delete(command.sid);
    report({ sid: command.sid, kind: "closed" });
  }
});
input.on("close", () => {
  for (const { source, poll } of sources.values()) {
    clearInterval(poll);
    source.close();
  }
  process.exit(0);
});
