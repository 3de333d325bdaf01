/**
 * The README's "Client quirks" table and the recorded deviations say the same thing, and the
 * table's advice works: `eventsource` given a `fetch` that sends `Last-Event-ID` UTF-8 encoded
 * gets every non-ASCII id back, as the spec says.
 */
import fs from "node:fs";
import path from "node:path";
import { EventSource } from "eventsource";
import { CASES } from "./cases";
import { recordEventSource } from "./clients/event-source-like";
import type { ClientAdapter, ClientName } from "./clients/types";
import { DEVIATIONS } from "./deviations";
import { runMatrix } from "./matrix";

/** How the README names each client in the table. */
const README_NAMES: Record<ClientName, string> = {
  eventsource: "`eventsource`",
  "eventsource-parser": "`eventsource-parser`",
  undici: "undici 7",
  node: "Node's `EventSource`",
  chromium: "Chromium",
  python: "Python",
};

function quirkRows(): string[] {
  const readme = fs.readFileSync(path.join(__dirname, "..", "..", "README.md"), "utf8");
  const start = readme.indexOf("## Client quirks");
  const end = readme.indexOf("\n## ", start + 1);
  expect(start).toBeGreaterThan(-1);
  return readme
    .slice(start, end)
    .split("\n")
    .filter((line) => line.startsWith("| ") && line.includes("**"));
}

describe("the README's Client quirks table", () => {
  test.each(DEVIATIONS.map((d) => [d.client, d.case, d] as const))(
    "tells %s's deviation in case %s",
    (_client, _case, deviation) => {
      const rows = quirkRows().filter((row) => row.includes(`**${deviation.quirk}**`));
      expect(
        rows.map((row) => row.split("|")[1]!.includes(README_NAMES[deviation.client])),
      ).toContain(true);
    },
  );

  test("has no row that no recorded deviation stands behind", () => {
    const quirks = new Set(DEVIATIONS.map((d) => d.quirk));
    for (const row of quirkRows()) {
      const label = /\*\*(.+?)\*\*/.exec(row)?.[1];
      expect(quirks).toContain(label);
      const clients = row.split("|")[1]!;
      for (const [client, name] of Object.entries(README_NAMES) as Array<[ClientName, string]>) {
        if (!clients.includes(name)) continue;
        expect({
          client,
          label,
          recorded: DEVIATIONS.some((d) => d.client === client && d.quirk === label),
        }).toEqual({
          client,
          label,
          recorded: true,
        });
      }
    }
  });
});

/** The README's advice for `eventsource`: its `fetch` option, sending the header UTF-8 encoded. */
const utf8Eventsource: ClientAdapter = {
  name: "eventsource",
  description: "eventsource with a fetch that sends Last-Event-ID UTF-8 encoded",
  start: async () => undefined,
  stop: async () => undefined,
  open: async (url, listen) =>
    recordEventSource(
      new EventSource(url, {
        fetch: (input, init) =>
          fetch(input, {
            ...init,
            headers: Object.fromEntries(
              Object.entries(init.headers ?? {}).map(([name, value]) => [
                name,
                name.toLowerCase() === "last-event-id"
                  ? Buffer.from(value, "utf8").toString("latin1")
                  : value,
              ]),
            ),
          }),
      }),
      listen,
    ),
};

describe("the README's workaround: eventsource with a fetch that sends Last-Event-ID as UTF-8", () =>
  runMatrix(
    utf8Eventsource,
    CASES.filter((c) => /^back-(latin1|c1|bmp|non-bmp|mojibake|bom)$/.test(c.name)),
    { knownDeviations: false },
  ));
