/**
 * Where a client does not do what the spec says, as the matrix found it: the case, the client,
 * the spec section it departs from, what it does instead (asserted: the matrix fails if the
 * client changes, so a fixed client is noticed) and what to do about it. The package README's
 * "Client quirks" table says the same in prose; `quirks.test.ts` checks they agree.
 */
import type { ClientName } from "./clients/types";

export interface Deviation {
  client: ClientName;
  case: string;
  /** The row of the README's "Client quirks" table that tells it (in bold there). */
  quirk: string;
  /** The spec's rule the client departs from. */
  section: string;
  /** What the client does instead, in words. */
  what: string;
  /** What `observe` gives for this client (compared exactly). */
  observed: unknown;
}

const NEVER_SENT = "never sent: the client retries without reaching the server";

/** The header sections the round-trip deviations depart from. */
const UTF8_HEADER = "§9.2.3: `Last-Event-ID` is the last event ID string encoded as UTF-8";

/**
 * Node's HTTP stack (undici, under `fetch` and under its `EventSource`) writes a header value one
 * byte per char (Latin-1), and refuses a value with a char above U+00FF before sending anything:
 * a network error, so the client reconnects again and again, never reaching the server.
 */
function latin1Header(
  client: ClientName,
  stack: string,
  refusal: { back: string; what: string } = {
    back: NEVER_SENT,
    what: "it retries forever without reaching the server",
  },
): Deviation[] {
  const latin1 = (name: string, id: string, header = id): Deviation => ({
    client,
    case: name,
    quirk: "Last-Event-ID in Latin-1",
    section: UTF8_HEADER,
    what: `${stack} sends the id as Latin-1 bytes (Sluice reads them as Latin-1 when they are not valid UTF-8)`,
    observed: { seen: id, back: { header, bytes: "latin-1" } },
  });
  const refused = (name: string, id: string): Deviation => ({
    client,
    case: name,
    quirk: "ids above U+00FF never come back",
    section: UTF8_HEADER,
    what: `${stack} will not send a header value with a character above U+00FF: ${refusal.what}`,
    observed: { seen: id, back: refusal.back },
  });
  return [
    latin1("back-latin1", "café"),
    latin1("back-c1", "ÿ\u0085"),
    // Latin-1 bytes that are valid UTF-8 are read as UTF-8: the one id that comes back wrong.
    latin1("back-mojibake", "Ã©", "é"),
    refused("back-bmp", "☃"),
    refused("back-non-bmp", "🎉"),
    refused("back-bom", "\uFEFF1"),
  ];
}

const message = (data: string, lastEventId: string) => ({ type: "message", data, lastEventId });

export const DEVIATIONS: readonly Deviation[] = [
  // eventsource 4.1.1: a message event's lastEventId is the event's own id field, "" without one.
  // (Fixed upstream in EventSource/eventsource#358, in the 5.x line, which needs Node >= 22.12.)
  {
    client: "eventsource",
    case: "id-tracking",
    quirk: "lastEventId of an event without id",
    section:
      "§9.2.6 dispatch: the event's lastEventId is the source's last event ID string, which persists across events",
    what: 'an event without an id field gets lastEventId "" instead of the last id (the Last-Event-ID it sends is right)',
    observed: {
      events: [
        message("a", "1"),
        message("b", ""),
        message("c", ""),
        message("d", ""),
        message("e", "café ☃ 🎉"),
        message("f", "7"),
      ],
      connections: 1,
    },
  },
  {
    client: "eventsource",
    case: "raw-id-with-nul",
    quirk: "lastEventId of an event without id",
    section:
      "§9.2.6 dispatch: the event's lastEventId is the source's last event ID string, which persists across events",
    what: 'an event whose id field was ignored (NUL) gets lastEventId "" instead of the last id',
    observed: { events: [message("a", "7"), message("b", "")], connections: 1 },
  },
  ...latin1Header("eventsource", "Node's fetch"),
  ...latin1Header("eventsource-parser", "Node's fetch"),
  ...latin1Header("undici", "undici"),
  {
    client: "undici",
    case: "back-emptied",
    quirk: "an empty id keeps the old header",
    section: "§9.2.3: no `Last-Event-ID` header when the last event ID string is empty",
    what: "once it has sent a Last-Event-ID, an empty id does not remove it: the old id is sent again",
    observed: { seen: ["1", ""], headers: [null, "1", "1"] },
  },

  // Node's own EventSource, as this Node bundles it: Node 20.20.2 has undici 6.24.1's, behind
  // --experimental-eventsource (another Node version may differ: the matrix then says where).
  ...latin1Header("node", "Node's EventSource", {
    back: "never sent: the client closed itself",
    what:
      "after a failed attempt it closes itself (readyState CLOSED, without an error event), " +
      "where a network error must reconnect (§9.2.3)",
  }),
  {
    client: "node",
    case: "id-tracking",
    quirk: "an empty id is ignored",
    section:
      "§9.2.6 id field: the last event ID buffer is set to the value, the empty string included",
    what: "an empty id does not reset the last event id: later events keep the old one",
    observed: {
      events: [
        message("a", "1"),
        message("b", "1"),
        message("c", "1"),
        message("d", "1"),
        message("e", "café ☃ 🎉"),
        message("f", "7"),
      ],
      connections: 1,
    },
  },
  {
    client: "node",
    case: "back-empty",
    quirk: "an empty id is ignored",
    section: "§9.2.6 id field (an empty id resets); §9.2.3 no header for an empty last event ID",
    what: "an empty id does not reset the last event id, so the old one is sent back",
    observed: { seen: ["1", "1"], back: { header: "1", bytes: "ascii" } },
  },
  {
    client: "node",
    case: "back-emptied",
    quirk: "an empty id is ignored",
    section: "§9.2.6 id field (an empty id resets); §9.2.3 no header for an empty last event ID",
    what: "an empty id does not reset the last event id, so the old one is sent back",
    observed: { seen: ["1", "1"], headers: [null, "1", "1"] },
  },
];

export function deviationOf(client: ClientName, name: string): Deviation | undefined {
  return DEVIATIONS.find((d) => d.client === client && d.case === name);
}
