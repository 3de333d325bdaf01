import { SseClient, SseError, type SseClientOptions } from "../src";

// Options are checked in the constructor: a mistake is a TypeError that names the option, thrown
// before any request. Requests that cannot be built end in a fatal `request` error, not a loop.

const URL_OK = "http://127.0.0.1:9/events";

/** A fetch that records its requests and never answers (until aborted). */
function pendingFetch() {
  const requests: Request[] = [];
  const fetch = (request: Request) => {
    requests.push(request);
    return new Promise<Response>((_resolve, reject) => {
      request.signal.addEventListener("abort", () => reject(request.signal.reason));
    });
  };
  return { requests, fetch };
}

describe("bad options at construction", () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ["options", 5, /^The SseClient options must be an object, got number$/],
    ["options", null, /^The SseClient options must be an object, got null$/],
    ["unknown", { reconectOnEnd: true }, /^Unknown SseClient option "reconectOnEnd"$/],
    ["method", { method: "" }, /^The "method" option must be a non-empty string, got ""$/],
    ["method", { method: 5 }, /^The "method" option must be a non-empty string, got number$/],
    ["headers", { headers: "x" }, /^The "headers" option must be .*, got "x"$/],
    ["signal", { signal: {} }, /^The "signal" option must be an AbortSignal, got object$/],
    ["init", { init: "cors" }, /^The "init" option must be an object, got "cors"$/],
    ["fetch", { fetch: "fetch" }, /^The "fetch" option must be a function, got "fetch"$/],
    ["lastEventId", { lastEventId: 7 }, /^The "lastEventId" option must be a string, got number$/],
    [
      "retry",
      { retry: -1 },
      /^The "retry" option must be a non-negative integer \(ms\), got number$/,
    ],
    ["retry", { retry: 1.5 }, /^The "retry" option must be a non-negative integer/],
    ["retry", { retry: "1000" }, /^The "retry" option must be a non-negative integer.*got "1000"$/],
    ["retry", { retry: NaN }, /^The "retry" option must be a non-negative integer/],
    ["maxRetryDelay", { maxRetryDelay: Infinity }, /^The "maxRetryDelay" option must be/],
    [
      "heartbeatTimeout",
      { heartbeatTimeout: -1 },
      /^The "heartbeatTimeout" option must be a non-negative integer \(ms\), got number$/,
    ],
    [
      "heartbeatTimeout",
      { heartbeatTimeout: "30s" },
      /^The "heartbeatTimeout" option .*got "30s"$/,
    ],
    ["heartbeatTimeout", { heartbeatTimeout: 0.5 }, /^The "heartbeatTimeout" option must be/],
    [
      "reconnectOnEnd",
      { reconnectOnEnd: "yes" },
      /^The "reconnectOnEnd" option must be true or false/,
    ],
    [
      "pauseWhenHidden",
      { pauseWhenHidden: 1 },
      /^The "pauseWhenHidden" option must be true or false/,
    ],
    ["onUnauthorized", { onUnauthorized: true }, /^The "onUnauthorized" option must be a function/],
    ["parse", { parse: JSON }, /^The "parse" option must be a function, got object$/],
    ["body", { method: "GET", body: "x" }, /^The "body" option cannot be sent with GET/],
    ["body", { method: "head", body: () => "x" }, /^The "body" option cannot be sent with head/],
    ["body", { body: new ReadableStream() }, /^The "body" option cannot be a ReadableStream/],
  ];

  test.each(cases)("%s: %p", (_name, options, message) => {
    const { requests, fetch } = pendingFetch();
    const make = () =>
      new SseClient(URL_OK, { fetch, ...(options as SseClientOptions) } as SseClientOptions);
    // Options that are not an object are passed as they are.
    const makeRaw = () => new SseClient(URL_OK, options as SseClientOptions);
    const build = typeof options === "object" && options !== null ? make : makeRaw;
    expect(build).toThrow(TypeError);
    expect(build).toThrow(message);
    expect(requests).toHaveLength(0);
  });

  test.each([
    [42, /^The url must be a string, a URL or a function returning one, got number$/],
    [undefined, /^The url must be a string, a URL or a function returning one, got undefined$/],
    [
      "/events",
      /^The url must be an absolute URL \(or one relative to the page\), got "\/events"$/,
    ],
    ["http://", /^The url must be an absolute URL/],
  ])("the url: %p", (url, message) => {
    expect(() => new SseClient(url as string)).toThrow(TypeError);
    expect(() => new SseClient(url as string)).toThrow(message);
  });

  test("valid options are taken, and the first request uses them", async () => {
    const { requests, fetch } = pendingFetch();
    const signal = new AbortController().signal;
    const client = new SseClient(new URL(URL_OK), {
      method: "PUT",
      headers: [["X-Trace", "1"]],
      body: "hello",
      signal,
      init: { credentials: "include", referrerPolicy: "no-referrer" },
      fetch,
      lastEventId: "41",
      retry: 0,
      maxRetryDelay: 0,
      heartbeatTimeout: 30_000,
      reconnectOnEnd: true,
      pauseWhenHidden: true,
      onUnauthorized: () => true,
      parse: (data) => data,
    });
    await waitFor(() => requests.length === 1);
    const [request] = requests;
    expect(request!.method).toBe("PUT");
    expect(request!.url).toBe(URL_OK);
    expect(request!.headers.get("x-trace")).toBe("1");
    expect(request!.headers.get("accept")).toBe("text/event-stream");
    expect(request!.headers.get("last-event-id")).toBe("41");
    expect(request!.credentials).toBe("include");
    expect(request!.referrerPolicy).toBe("no-referrer");
    expect(request!.cache).toBe("no-store");
    expect(await request!.text()).toBe("hello");
    client.close();
  });

  test("a body without a method is POSTed; an explicit Accept header is kept", async () => {
    const { requests, fetch } = pendingFetch();
    const client = new SseClient(URL_OK, {
      body: () => JSON.stringify({ prompt: "hi" }),
      headers: async () => ({ Accept: "text/event-stream, application/json" }),
      fetch,
    });
    await waitFor(() => requests.length === 1);
    expect(requests[0]!.method).toBe("POST");
    expect(requests[0]!.headers.get("accept")).toBe("text/event-stream, application/json");
    expect(requests[0]!.headers.get("last-event-id")).toBeNull();
    client.close();
  });
});

describe("requests that cannot be built", () => {
  const cases: Array<[string, SseClientOptions, string | (() => string)]> = [
    ["the headers function throws", { headers: () => { throw new Error("no token"); } }, URL_OK], // prettier-ignore
    ["an invalid header name", { headers: { "bad header": "x" } }, URL_OK],
    ["the url function returns a relative URL", {}, () => "/relative"],
    ["the body function rejects", { body: () => Promise.reject(new Error("gone")) }, URL_OK],
  ];

  test.each(cases)("%s: a fatal request error, no fetch, no retry", async (_name, options, url) => {
    const { requests, fetch } = pendingFetch();
    const client = new SseClient(url, { ...options, fetch, retry: 0 });
    const errors: SseError[] = [];
    client.addEventListener("error", (event) => errors.push(event.error));
    let closedWith: SseError | undefined;
    client.addEventListener("close", (event) => (closedWith = event.error));
    await waitFor(() => client.readyState === SseClient.CLOSED);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(SseError);
    expect(errors[0]).toMatchObject({ name: "SseError", code: "request", fatal: true });
    expect(errors[0]!.message).toMatch(/^Cannot build the request: /);
    expect(errors[0]!.cause).toBeDefined();
    expect(closedWith).toBe(errors[0]);
    expect(requests).toHaveLength(0);
  });
});

describe("lifecycle without a server", () => {
  test("close() before the first request: no request, one close event, readyState 2", async () => {
    const { requests, fetch } = pendingFetch();
    const client = new SseClient(URL_OK, { fetch });
    let closes = 0;
    client.addEventListener("close", () => closes++);
    expect(client.readyState).toBe(SseClient.CONNECTING);
    client.close();
    client.close();
    await new Promise((r) => setTimeout(r, 10));
    expect(closes).toBe(1);
    expect(requests).toHaveLength(0);
    expect(client.readyState).toBe(2);
    expect([SseClient.CONNECTING, SseClient.OPEN, SseClient.CLOSED]).toEqual([0, 1, 2]);
  });

  test("for await on a closed client ends at once; a loop left early closes the client", async () => {
    const { fetch } = pendingFetch();
    const closed = new SseClient(URL_OK, { fetch });
    closed.close();
    for await (const event of closed) throw new Error(`unexpected ${event.type}`);

    // An app that stops reading a stream it no longer needs: the request is aborted.
    const { requests, fetch: fetch2 } = pendingFetch();
    const client = new SseClient(URL_OK, {
      fetch: (request) => {
        fetch2(request).catch(() => undefined); // only records it
        const body = new ReadableStream({
          start(controller) {
            controller.enqueue(new TextEncoder().encode("data: 1\n\ndata: 2\n\n"));
          },
        });
        return Promise.resolve(
          new Response(body, { headers: { "content-type": "text/event-stream" } }),
        );
      },
    });
    const seen: unknown[] = [];
    for await (const event of client) {
      seen.push(event.data);
      break;
    }
    expect(seen).toEqual([1]);
    expect(client.readyState).toBe(SseClient.CLOSED);
    expect(requests[0]!.signal.aborted).toBe(true);
  });
});

async function waitFor(predicate: () => boolean, timeout = 2000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error("Timed out");
    await new Promise((r) => setTimeout(r, 2));
  }
}
