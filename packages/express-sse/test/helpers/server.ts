import http, { type RequestListener, type Server } from "node:http";
import net, { type AddressInfo, type Socket } from "node:net";

export interface TestServer {
  server: Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

const open = new Set<TestServer>();

/**
 * Starts `handler` on 127.0.0.1:0. Every server started here is closed after each test
 * (`closeAllServers` in `afterEach`), with its connections, so no test leaks into the next.
 */
export async function listen(handler: RequestListener): Promise<TestServer> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const testServer: TestServer = {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      if (!open.delete(testServer)) return;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  open.add(testServer);
  return testServer;
}

export async function closeAllServers(): Promise<void> {
  await Promise.all([...open].map((s) => s.close()));
}

/**
 * A raw HTTP/1.1 client on a plain socket, for byte-level and slow-reader tests. `paused: true`
 * never reads, so the server's writes pile up in the kernel and then in the process.
 */
export function rawRequest(
  port: number,
  path: string,
  options: {
    paused?: boolean;
    headers?: Record<string, string>;
    method?: string;
    /** @defaultValue "1.1" */
    httpVersion?: "1.0" | "1.1";
    /** How header values become bytes: "utf8" (a browser's UTF-8 id), or "latin1" (undici's). */
    headerEncoding?: "utf8" | "latin1";
  } = {},
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => {
      const headers = Object.entries({
        Host: `127.0.0.1:${port}`,
        Accept: "text/event-stream",
        ...options.headers,
      })
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join("");
      const head = `${options.method ?? "GET"} ${path} HTTP/${options.httpVersion ?? "1.1"}\r\n`;
      socket.write(Buffer.from(`${head}${headers}\r\n`, options.headerEncoding ?? "utf8"));
      if (options.paused) socket.pause();
      resolve(socket);
    });
    socket.on("error", reject);
  });
}

/** Resolves when `predicate()` is true, polling every few ms; rejects after `timeout` ms. */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  { timeout = 5000, interval = 5, what = "condition" } = {},
): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** A promise with its resolve function, for handing values out of request handlers. */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * What `fn` throws, or `undefined`. For request handlers: an `expect` there would fail inside
 * Express (a 500 the test might never look at), so a handler records what happened and the test
 * asserts on it afterwards.
 */
export function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** What the promise rejects with, or `undefined` if it resolves. */
export function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

/** `{ name, message }` of an error, to compare errors exactly (class and message) with toEqual. */
export function errorShape(error: unknown): { name: string; message: string } | unknown {
  return error instanceof Error ? { name: error.constructor.name, message: error.message } : error;
}

/** Opens a stream with http.get and resolves with the response as soon as headers arrive. */
export function getHeaders(
  url: string,
  headers: Record<string, string> = {},
): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, resolve);
    req.on("error", reject);
  });
}
