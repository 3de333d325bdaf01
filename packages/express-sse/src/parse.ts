/**
 * A small, spec-exact `text/event-stream` parser, used by the testing helper. Kept in the package
 * (instead of depending on eventsource-parser) so that `@sluice/express-sse` has no runtime
 * dependency; the test suite checks it against eventsource-parser.
 *
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
 */

/** One dispatched event, as an `EventSource` would see it. */
export interface ParsedEvent {
  /** The event type: the `event` field, or `"message"`. */
  event: string;
  /** The data, lines joined with `\n`. */
  data: string;
  /** The last event id in force when the event was dispatched (`""` if none). */
  id: string;
}

export interface ParserCallbacks {
  onEvent(event: ParsedEvent): void;
  onRetry?(ms: number): void;
  onComment?(text: string): void;
}

export interface Parser {
  /** Feeds a chunk of decoded text; lines may be split anywhere. */
  feed(chunk: string): void;
}

const DIGITS = /^[0-9]+$/;

export function createParser(callbacks: ParserCallbacks): Parser {
  let buffer = "";
  let first = true;
  let pendingCR = false;
  let data = "";
  let hasData = false;
  let type = "";
  let lastId = "";

  function processLine(line: string): void {
    // "If the line is empty (a blank line) Dispatch the event"
    if (line === "") {
      if (hasData) {
        // "If the data buffer's last character is a U+000A LINE FEED (LF) character, then
        // remove the last character from the data buffer."
        callbacks.onEvent({
          event: type === "" ? "message" : type,
          data: data.slice(0, -1),
          id: lastId,
        });
      }
      data = "";
      hasData = false;
      type = "";
      return;
    }
    // "If the line starts with a U+003A COLON character (:) Ignore the line."
    if (line.charCodeAt(0) === 0x3a) {
      callbacks.onComment?.(line.slice(line.charCodeAt(1) === 0x20 ? 2 : 1));
      return;
    }
    const colon = line.indexOf(":");
    let field = line;
    let value = "";
    if (colon !== -1) {
      field = line.slice(0, colon);
      // "If value starts with a U+0020 SPACE character, remove it from value."
      value = line.slice(line.charCodeAt(colon + 1) === 0x20 ? colon + 2 : colon + 1);
    }
    switch (field) {
      case "event":
        type = value;
        break;
      case "data":
        data += `${value}\n`;
        hasData = true;
        break;
      case "id":
        // "If the field value does not contain U+0000 NULL, then set the last event ID buffer"
        if (value.indexOf("\0") === -1) lastId = value;
        break;
      case "retry":
        if (DIGITS.test(value)) callbacks.onRetry?.(Number(value));
        break;
      default:
      // "Otherwise: The field is ignored."
    }
  }

  return {
    feed(chunk: string): void {
      // An empty chunk must not clear a pending CR (it would turn a CRLF into two line breaks).
      if (chunk === "") return;
      if (first) {
        first = false;
        if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
      }
      // A CR that ended the previous chunk may be the first half of a CRLF.
      if (pendingCR && chunk.charCodeAt(0) === 0x0a) chunk = chunk.slice(1);
      pendingCR = false;
      buffer += chunk;
      let start = 0;
      for (let i = 0; i < buffer.length; i++) {
        const c = buffer.charCodeAt(i);
        if (c !== 0x0a && c !== 0x0d) continue;
        processLine(buffer.slice(start, i));
        if (c === 0x0d) {
          if (i + 1 === buffer.length) pendingCR = true;
          else if (buffer.charCodeAt(i + 1) === 0x0a) i++;
        }
        start = i + 1;
      }
      buffer = buffer.slice(start);
    },
  };
}

/** Parses a whole event stream and returns its events. */
export function parseEventStream(text: string): ParsedEvent[] {
  const events: ParsedEvent[] = [];
  createParser({ onEvent: (event) => events.push(event) }).feed(text);
  return events;
}
