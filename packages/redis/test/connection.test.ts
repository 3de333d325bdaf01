/**
 * The adapter's own pub/sub connection (pubsub-connection.ts, endpoint.ts) against real
 * redis-server processes configured the ways an app's Redis can be: a password (`requirepass`),
 * an ACL user, TLS (a CA made here with openssl), a Unix socket. Each time the pub/sub connection
 * must reach the same server as the command client, with the same credentials and TLS settings,
 * whether the adapter got a URL or the user's own client, and deliver a live event; a wrong
 * password is reported, naming the failure. Every test ends with nothing left running.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { createClient } from "redis";
import { createClient as createClient5 } from "redis5";
import type { AdapterChannel, AdapterEvent } from "@sluice/express-sse";
import { resolveHistoryOptions } from "../../express-sse/src/history";
import { activeResources, collectGarbage } from "../../express-sse/test/helpers/gc";
import { sleep, waitFor } from "../../express-sse/test/helpers/server";
import { createRedisAdapter, type RedisAdapter, type RedisAdapterOptions } from "../src";
import { ensurePrograms, freePort } from "../../../test-support/system";
import { adminCommand, answersPing, ensureRedisServer } from "./helpers/redis-server";

const START_TIMEOUT_MS = 10_000;
const TEST_TIMEOUT_MS = 30_000;

type Client = ReturnType<typeof createClient>;
type UserClient = Client | ReturnType<typeof createClient5>;

/** A user's client of either supported node-redis major (option shapes differ between them). */
type ClientOptions = Parameters<typeof createClient>[0];
const versions: ReadonlyArray<readonly [string, (options: ClientOptions) => UserClient]> = [
  ["node-redis 6", (options) => createClient(options)],
  ["node-redis 5", (options) => createClient5(options as Parameters<typeof createClient5>[0])],
];

/** A redis-server of this file's, started with extra options. */
interface Server {
  readonly port: number;
  readonly dir: string;
  dispose(): Promise<void>;
}

/**
 * Starts `redis-server` on loopback with `extraArgs(port, dir)` (a free port, a temporary
 * directory), no persistence. Ready once `probe()` gets an answer to PING (PONG or NOAUTH).
 * Retries on another port if one was taken meanwhile.
 */
async function startServer(
  extraArgs: (port: number, dir: string) => string[],
  probe: (port: number, dir: string) => net.Socket,
): Promise<Server> {
  const program = ensureRedisServer();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sluice-conn-"));
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const args = [
      "--bind",
      "127.0.0.1 -::1", // loopback only (::1 if this machine has it)
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
      "--daemonize",
      "no",
      "--loglevel",
      "warning",
      ...extraArgs(port, dir),
    ];
    const child = spawn(program, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    const killOnExit = () => child.kill("SIGKILL");
    process.once("exit", killOnExit);
    const stop = async (): Promise<void> => {
      process.off("exit", killOnExit);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGKILL");
      await exited;
    };
    try {
      await untilAnswers(
        child,
        () => probe(port, dir),
        () => output,
        args,
      );
    } catch (error) {
      await stop();
      if (attempt >= 2) {
        fs.rmSync(dir, { recursive: true, force: true });
        throw error;
      }
      continue;
    }
    return {
      port,
      dir,
      dispose: async () => {
        await stop();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}

async function untilAnswers(
  child: ChildProcess,
  connect: () => net.Socket,
  output: () => string,
  args: readonly string[],
): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`redis-server exited at start (${args.join(" ")}):\n${output()}`);
    }
    if (await answersPing(connect)) return;
    if (Date.now() > deadline) {
      throw new Error(`redis-server did not answer within ${START_TIMEOUT_MS} ms:\n${output()}`);
    }
    await sleep(20);
  }
}

const tcpProbe = (port: number) => net.connect(port, "127.0.0.1");

/** Runs one command on a server, on a connection of its own (so none stays open meanwhile). */
type Admin = (args: string[]) => Promise<unknown>;

function adminOf(options: ClientOptions): Admin {
  return (args) => adminCommand(options, args);
}

/** `CLIENT LIST`, one record of its fields per connection. */
async function clientList(admin: Admin): Promise<Array<Record<string, string>>> {
  const list = String(await admin(["CLIENT", "LIST"]));
  return list
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const fields: Record<string, string> = {};
      for (const field of line.trim().split(" ")) {
        const at = field.indexOf("=");
        fields[field.slice(0, at)] = field.slice(at + 1);
      }
      return fields;
    });
}

/**
 * The adapter's established pub/sub connections (named `sluice-sub`, on RESP3: HELLO succeeded),
 * once there are `count` of them and `also` holds (polled for up to 5 s: Redis may list a closed
 * connection for a moment, and Redis 7.0 names a connection whose HELLO failed authentication).
 */
async function subscribers(
  admin: Admin,
  count: number,
  also: (subs: Array<Record<string, string>>) => boolean = () => true,
): Promise<Array<Record<string, string>>> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const subs = (await clientList(admin)).filter(
      (c) => c["name"] === "sluice-sub" && c["resp"] === "3",
    );
    if (subs.length === count && also(subs)) return subs;
    if (Date.now() > deadline) {
      throw new Error(`Expected ${count} pub/sub connection(s), found: ${JSON.stringify(subs)}`);
    }
    await sleep(20);
  }
}

// What a test creates, closed after it even when it fails.
let adapters: RedisAdapter[] = [];
let clients: UserClient[] = [];
let baseline: Record<string, number> = {};
let counter = 0;

const unique = (label: string) => `conn:${label}:${process.pid}:${++counter}`;

/** An adapter whose reports go to `reports`; closed after the test. */
function adapterFor(options: RedisAdapterOptions, reports: string[] = []): RedisAdapter {
  const adapter = createRedisAdapter({ reconnect: { minDelay: 20, maxDelay: 250 }, ...options });
  adapter.on("error", (error) => reports.push(error.message));
  adapters.push(adapter);
  return adapter;
}

/** A user's client made by `create`, connected; closed after the test. */
async function userClient(
  create: (options: ClientOptions) => UserClient,
  options: ClientOptions,
): Promise<UserClient> {
  const client = create(options);
  client.on("error", () => undefined);
  clients.push(client);
  await client.connect();
  return client;
}

/** Opens `name` on `adapter`, listening and active, as a Channel with a subscriber does. */
function listening(
  adapter: RedisAdapter,
  name: string,
): { channel: AdapterChannel; received: AdapterEvent[] } {
  const channel = adapter.open(name, {
    history: resolveHistoryOptions({ max: 1000, maxBytes: 4 * 1024 * 1024, maxAge: Infinity }),
  });
  const received: AdapterEvent[] = [];
  channel.listen((event) => received.push(event));
  channel.setActive!(true);
  return { channel, received };
}

/** Waits until `adapter` is ready, at most `ms`. */
async function readyWithin(adapter: RedisAdapter, ms = 10_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      adapter.ready(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`adapter not ready within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Publishes `data` on `channel` and waits for it to arrive, alone, in `received`. */
async function deliversLive(channel: AdapterChannel, received: AdapterEvent[], data: string) {
  const start = received.length;
  await channel.publish({ event: undefined, data });
  await waitFor(() => received.length > start, { timeout: 5000, what: `the event "${data}"` });
  expect(received.slice(start).map((e) => e.data)).toEqual([data]);
}

/** `a` has no more resources of any type than `b`. */
const noMoreThan = (a: Record<string, number>, b: Record<string, number>): boolean =>
  Object.entries(a).every(([type, count]) => count <= (b[type] ?? 0));

beforeEach(async () => {
  await collectGarbage();
  // Timers of jest's own come and go: the fewest of each type over a few turns.
  baseline = activeResources();
  for (let i = 0; i < 5; i++) {
    await sleep(5);
    const now = activeResources();
    for (const type of Object.keys(baseline)) {
      baseline[type] = Math.min(baseline[type]!, now[type] ?? 0);
    }
  }
});

afterEach(async () => {
  await Promise.all(adapters.splice(0).map((adapter) => adapter.close()));
  await Promise.all(clients.splice(0).map((client) => client.close().catch(() => undefined)));
  // Nothing left running: sockets, timers (the servers are older).
  const deadline = Date.now() + 5000;
  while (!noMoreThan(activeResources(), baseline)) {
    if (Date.now() > deadline) {
      throw new Error(
        `Active resources not back to ${JSON.stringify(baseline)} within 5 s: ${JSON.stringify(activeResources())}`,
      );
    }
    await sleep(10);
  }
}, 15_000);

describe("a password (requirepass) and an ACL user", () => {
  let server: Server;
  let admin: Admin;
  let url: (credentials: string) => string;

  beforeAll(async () => {
    server = await startServer(
      (port) => ["--port", String(port), "--requirepass", "s3cret"],
      tcpProbe,
    );
    url = (credentials) => `redis://${credentials}127.0.0.1:${server.port}`;
    admin = adminOf({ url: url(":s3cret@") });
    await admin(["ACL", "SETUSER", "ann", "on", ">pw", "~*", "&*", "+@all"]);
    await admin(["ACL", "SETUSER", "bob", "on", "nopass", "~*", "&*", "+@all"]);
  }, TEST_TIMEOUT_MS);

  afterAll(async () => {
    await server?.dispose();
  });

  test(
    "the password in the URL: ready, a live event, and the pub/sub connection is sluice-sub (as default)",
    async () => {
      const reports: string[] = [];
      const adapter = adapterFor({ url: url(":s3cret@") }, reports);
      const { channel, received } = listening(adapter, unique("password"));
      await readyWithin(adapter);
      await deliversLive(channel, received, "x");
      const subs = await subscribers(admin, 1);
      expect(subs[0]).toMatchObject({ name: "sluice-sub", user: "default", resp: "3" });
      expect(Number(subs[0]!["ssub"])).toBe(1);
      expect(reports).toEqual([]);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "a wrong password: reported through 'error', naming the failure; never ready; nothing left after close()",
    async () => {
      const reports: string[] = [];
      const adapter = adapterFor({ url: url(":wrong@") }, reports);
      listening(adapter, unique("wrong"));
      const ready = adapter.ready().then(
        () => "ready",
        (error: Error) => `rejected: ${error.message}`,
      );
      await waitFor(() => reports.some((r) => r.startsWith("Lost the Redis pub/sub connection")), {
        timeout: 5000,
        what: `a pub/sub report (reports: ${JSON.stringify(reports)})`,
      });
      expect(reports).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^Lost the Redis pub/sub connection \\(127\\.0\\.0\\.1:${server.port}: WRONGPASS invalid username-password pair`,
          ),
        ),
      );
      expect(await Promise.race([ready, sleep(500).then(() => "pending")])).toBe("pending");
      expect(await subscribers(admin, 0)).toEqual([]);
      // Reported once per outage, not once per reconnect attempt.
      await sleep(500);
      expect(reports.filter((r) => r.startsWith("Lost the Redis pub/sub")).length).toBe(1);
      await adapter.close();
      expect(await ready).toBe("rejected: The Redis adapter was closed");
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "no password at all: the pub/sub connection's NOAUTH is reported; never ready",
    async () => {
      const reports: string[] = [];
      const adapter = adapterFor({ url: url("") }, reports);
      listening(adapter, unique("none"));
      await waitFor(() => reports.some((r) => r.startsWith("Lost the Redis pub/sub connection")), {
        timeout: 5000,
        what: `a pub/sub report (reports: ${JSON.stringify(reports)})`,
      });
      expect(reports).toContainEqual(
        expect.stringMatching(/^Lost the Redis pub\/sub connection \(127\.0\.0\.1:\d+: NOAUTH /),
      );
      expect(adapter.stats().subscriberConnected).toBe(false);
      expect(await subscribers(admin, 0)).toEqual([]);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "an ACL user in the URL: the pub/sub connection authenticates as that user",
    async () => {
      const reports: string[] = [];
      const adapter = adapterFor({ url: url("ann:pw@") }, reports);
      const { channel, received } = listening(adapter, unique("acl-url"));
      await readyWithin(adapter);
      await deliversLive(channel, received, "for ann");
      const subs = await subscribers(admin, 1);
      expect(subs[0]).toMatchObject({ name: "sluice-sub", user: "ann" });
      expect(reports).toEqual([]);
    },
    TEST_TIMEOUT_MS,
  );

  test.each(versions)(
    "a user's client (%s) with username and password options: the pub/sub connection authenticates as that user",
    async (_version, create) => {
      const client = await userClient(create, {
        socket: { host: "127.0.0.1", port: server.port },
        username: "ann",
        password: "pw",
      });
      const reports: string[] = [];
      const adapter = adapterFor({ client }, reports);
      const { channel, received } = listening(adapter, unique("acl-client"));
      await readyWithin(adapter);
      await deliversLive(channel, received, "via ann's client");
      const subs = await subscribers(admin, 1);
      expect(subs[0]).toMatchObject({ name: "sluice-sub", user: "ann" });
      expect(reports).toEqual([]);
      await adapter.close();
      expect(await client.sendCommand(["PING"])).toBe("PONG"); // the user's client stays open
    },
    TEST_TIMEOUT_MS,
  );

  test.each(versions)(
    "a user's client (%s) with a username and no password (an ACL nopass user): the pub/sub connection logs in as that user, not as default",
    async (version, create) => {
      const client = await userClient(create, {
        socket: { host: "127.0.0.1", port: server.port },
        username: "bob",
        // node-redis logs in a user without a password only with AUTH (AUTH bob ""): its HELLO
        // skips AUTH without a password. Version 5 uses AUTH by default; 6 with RESP2.
        ...(version === "node-redis 6" ? { RESP: 2 as const } : {}),
      });
      const reports: string[] = [];
      const adapter = adapterFor({ client }, reports);
      const { channel, received } = listening(adapter, unique("nopass"));
      await readyWithin(adapter);
      await deliversLive(channel, received, "via bob's client");
      const subs = await subscribers(admin, 1);
      expect(subs[0]).toMatchObject({ name: "sluice-sub", user: "bob" });
      expect(reports).toEqual([]);
      await adapter.close();
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "CLIENT KILL of an authenticated pub/sub connection: the next one authenticates again, and delivery resumes",
    async () => {
      // (faults.test.ts covers CLIENT KILL on a server without credentials.)
      const reports: string[] = [];
      const adapter = adapterFor({ url: url("ann:pw@") }, reports);
      const { channel, received } = listening(adapter, unique("kill"));
      await readyWithin(adapter);
      await deliversLive(channel, received, "before");
      const [before] = await subscribers(admin, 1);
      await admin(["CLIENT", "KILL", "ID", before!["id"]!]);
      await waitFor(() => adapter.stats().reconnects === 1, {
        timeout: 5000,
        what: "the pub/sub connection to come back",
      });
      await channel.publish({ event: undefined, data: "after" });
      await waitFor(() => received.length === 2, {
        timeout: 5000,
        what: "the event after the kill",
      });
      expect(received.map((e) => e.data)).toEqual(["before", "after"]);
      const after = await subscribers(admin, 1, ([sub]) => sub!["id"] !== before!["id"]);
      expect(after[0]).toMatchObject({ name: "sluice-sub", user: "ann" });
      expect(after[0]!["id"]).not.toBe(before!["id"]);
      expect(reports).toEqual([
        expect.stringMatching(
          /^Lost the Redis pub\/sub connection \(127\.0\.0\.1:\d+: (connection closed|.*ECONNRESET)\)/,
        ),
      ]);
    },
    TEST_TIMEOUT_MS,
  );
});

describe("TLS", () => {
  let server: Server;
  let admin: Admin;
  let ca: string;
  /** The CA's and the server's keys and certificates. */
  let certs: string | undefined;

  beforeAll(async () => {
    // Not installed: installed (root on Debian), or a failure naming the package; never a skip.
    const openssl = ensurePrograms([{ program: "openssl", debianPackage: "openssl" }]).get(
      "openssl",
    )!;
    certs = fs.mkdtempSync(path.join(os.tmpdir(), "sluice-tls-"));
    const dir = certs;
    const file = (name: string) => path.join(dir, name);
    const run = (...args: string[]) => execFileSync(openssl, args, { stdio: "pipe" });
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(
      "req",
      "-x509",
      ...ec,
      "-keyout",
      file("ca.key"),
      "-out",
      file("ca.crt"),
      "-days",
      "2",
      "-subj",
      "/CN=sluice test CA",
    );
    run(
      "req",
      ...ec,
      "-keyout",
      file("server.key"),
      "-out",
      file("server.csr"),
      "-subj",
      "/CN=localhost",
    );
    fs.writeFileSync(
      file("server.ext"),
      "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n" +
        "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n",
    );
    run(
      "x509",
      "-req",
      "-in",
      file("server.csr"),
      "-CA",
      file("ca.crt"),
      "-CAkey",
      file("ca.key"),
      "-CAcreateserial",
      "-out",
      file("server.crt"),
      "-days",
      "2",
      "-extfile",
      file("server.ext"),
    );
    ca = fs.readFileSync(file("ca.crt"), "utf8");
    server = await startServer(
      (port) => [
        "--port",
        "0", // TLS only: a plain connection could not get in
        "--tls-port",
        String(port),
        "--tls-cert-file",
        file("server.crt"),
        "--tls-key-file",
        file("server.key"),
        "--tls-ca-cert-file",
        file("ca.crt"),
        "--tls-auth-clients",
        "no",
      ],
      (port) => tls.connect({ host: "127.0.0.1", port, ca: [ca] }),
    );
    admin = adminOf({ url: `rediss://127.0.0.1:${server.port}`, socket: { tls: true, ca: [ca] } });
  }, TEST_TIMEOUT_MS);

  afterAll(async () => {
    await server?.dispose();
    if (certs !== undefined) fs.rmSync(certs, { recursive: true, force: true });
  });

  test.each(
    versions.flatMap(([version, create]) => [
      [version, "localhost", create] as const,
      [version, "127.0.0.1", create] as const,
    ]),
  )(
    "a user's client (%s) at rediss://%s with the CA: the pub/sub connection uses TLS with the same CA",
    async (_version, host, create) => {
      const client = await userClient(create, {
        url: `rediss://${host}:${server.port}`,
        socket: { tls: true, ca: [ca] },
      });
      const reports: string[] = [];
      const adapter = adapterFor({ client }, reports);
      const { channel, received } = listening(adapter, unique("tls"));
      await readyWithin(adapter);
      await deliversLive(channel, received, "over TLS");
      const subs = await subscribers(admin, 1);
      expect(subs[0]).toMatchObject({ name: "sluice-sub", resp: "3" });
      expect(reports).toEqual([]);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "a URL only (the CA not trusted): the pub/sub connection refuses the certificate and says so",
    async () => {
      const reports: string[] = [];
      const adapter = adapterFor({ url: `rediss://127.0.0.1:${server.port}` }, reports);
      listening(adapter, unique("untrusted"));
      await waitFor(() => reports.some((r) => r.startsWith("Lost the Redis pub/sub connection")), {
        timeout: 5000,
        what: `a pub/sub report (reports: ${JSON.stringify(reports)})`,
      });
      expect(reports).toContainEqual(
        expect.stringMatching(
          /^Lost the Redis pub\/sub connection \(127\.0\.0\.1:\d+: .*certificate/,
        ),
      );
      expect(await subscribers(admin, 0)).toEqual([]);
    },
    TEST_TIMEOUT_MS,
  );
});

describe("a Unix socket", () => {
  let server: Server;
  let admin: Admin;
  let socketPath: string;
  /** `{ socket: { path } }`, as a JavaScript app writes it (node-redis 6's types also want `tls: false`). */
  const onSocket = () => ({ socket: { path: socketPath } }) as ClientOptions;

  beforeAll(async () => {
    server = await startServer(
      (_port, dir) => [
        "--port",
        "0",
        "--unixsocket",
        path.join(dir, "r.sock"),
        "--unixsocketperm",
        "700",
      ],
      (_port, dir) => net.connect(path.join(dir, "r.sock")),
    );
    socketPath = path.join(server.dir, "r.sock");
    admin = adminOf(onSocket());
  }, TEST_TIMEOUT_MS);

  afterAll(async () => {
    await server?.dispose();
  });

  test.each(versions)(
    "a user's client (%s) on the socket: the pub/sub connection uses the same socket",
    async (_version, create) => {
      const client = await userClient(create, onSocket());
      const reports: string[] = [];
      const adapter = adapterFor({ client }, reports);
      const { channel, received } = listening(adapter, unique("unix"));
      await readyWithin(adapter);
      await deliversLive(channel, received, "over the socket");
      const subs = await subscribers(admin, 1);
      expect(subs[0]!["addr"]).toBe(`${socketPath}:0`);
      expect(reports).toEqual([]);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "a unix:// URL: the pub/sub connection uses the socket",
    async () => {
      const reports: string[] = [];
      const adapter = adapterFor({ url: `unix://${socketPath}` }, reports);
      const { channel, received } = listening(adapter, unique("unix-url"));
      await readyWithin(adapter);
      await deliversLive(channel, received, "over the socket, by URL");
      const subs = await subscribers(admin, 1);
      expect(subs[0]!["addr"]).toBe(`${socketPath}:0`);
      expect(reports).toEqual([]);
    },
    TEST_TIMEOUT_MS,
  );
});
