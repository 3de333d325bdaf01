import * as api from "../src";
import * as testing from "../src/testing";

describe("public surface", () => {
  test("the main entry exports exactly these values", () => {
    expect(Object.keys(api).sort()).toEqual([
      "Channel",
      "Frame",
      "MAX_MEMBER_BYTES",
      "MemoryAdapter",
      "SseStream",
      "StreamClosedError",
      "shutdown",
      "sse",
    ]);
  });

  test("the testing entry exports exactly these values", () => {
    expect(Object.keys(testing).sort()).toEqual([
      "NotAnEventStreamError",
      "collectEvents",
      "createParser",
      "parseEventStream",
    ]);
  });
});
