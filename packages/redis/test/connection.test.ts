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
import type { AdapterChannel, AdapterEvent } from "@sluice/express-sse";
import { resolveHistoryOptions } from "../../express-sse/src/history";
import { activeResources, collectGarbage } from "../../express-sse/test/helpers/gc";
import { sleep, waitFor } from "../../express-sse/test/helpers/server";
import { createRedisAdapter, type RedisAdapter, type RedisAdapterOptions } from "../src";
import { ensurePrograms, freePort } from "../../../test-support/system";
import { ensureRedisServer } from "./helpers/redis-server";

const START_TIMEOUT_MS = 10_000;
const TEST_TIMEOUT_MS = 30_000;

type Client = ReturnType<typeof createClient>;

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

/** Sends an inline PING; whether a RESP line came back (PONG, or NOAUTH with a password). */
function answersPing(connect: () => net.Socket): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect();
    let reply = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on("error", () => done(false));
    socket.once(socket instanceof tls.TLSSocket ? "secureConnect" : "connect", () =>
      socket.write("PING\r\n"),
    );
    socket.on("data", (chunk: Buffer) => {
      reply += chunk.toString();
      if (reply.includes("\r\n")) done(/^(\+PONG|-NOAUTH)/.test(reply));
    });
  });
}

const tcpProbe = (port: number) => net.connect(port, "127.0.0.1");

/** `CLIENT LIST`, one record of its fields per connection. */
async function clientList(admin: Client): Promise<Array<Record<string, string>>> {
  const list = String(await admin.sendCommand(["CLIENT", "LIST"]));
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

/** The connections named `sluice-sub` (the adapter's pub/sub connections). */
async function subscribers(admin: Client): Promise<Array<Record<string, string>>> {
  return (await clientList(admin)).filter((c) => c["name"] === "sluice-sub");
}

// What a test creates, closed after it even when it fails.
let adapters: RedisAdapter[] = [];
let clients: Client[] = [];
let baseline: Record<string, number> = {};
let counter = 0;

const unique = (label: string) => `conn:${label}:${process.pid}:${++counter}`;

/** An adapter whose reports go to `reports`; closed after the test. */
function adapterFor(options: RedisAdapterOptions, reports: string[] = []): RedisAdapter {
  const adapter = createRedisAdapter({ reconnect: { minDelay: 20, maxDelay: 250 }, ...options });
  adapter.on("error", (error) => { process.stderr.write("REPORT " + error.message + "\n"); reports.push(error.message); });
  adapters.push(adapter);
  return adapter;
}

/** A user's client, connected; closed after the test. */
async function userClient(options: Parameters<typeof createClient>[0]): Promise<Client> {
  const client = createClient(options);
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

beforeEach(async () => {
  await collectGarbage();
  baseline = activeResources();
});

afterEach(async () => {
  await Promise.all(adapters.splice(0).map((adapter) => adapter.close()));
  await Promise.all(clients.splice(0).map((client) => client.close().catch(() => undefined)));
  // Nothing left running: sockets, timers (the servers and their admin clients are older).
  await waitFor(() => JSON.stringify(activeResources()) === JSON.stringify(baseline), {
    timeout: 5000,
    what: `active resources back to ${JSON.stringify(baseline)} (now ${JSON.stringify(activeResources())})`,
  });
});

describe("a password (requirepass) and an ACL user", () => {
  let server: Server;
  let admin: Client;
  let url: (credentials: string) => string;

  beforeAll(async () => {
    server = await startServer(
      (port) => ["--port", String(port), "--requirepass", "s3cret"],
      tcpProbe,
    );
    url = (credentials) => `redis://${credentials}127.0.0.1:${server.port}`;
    admin = createClient({ url: url(":s3cret@") });
    admin.on("error", () => undefined);
    await admin.connect();
    await admin.sendCommand(["ACL", "SETUSER", "ann", "on", ">pw", "~*", "&*", "+@all"]);
  }, TEST_TIMEOUT_MS);

  afterAll(async () => {
    await admin?.close().catch(() => undefined);
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
      const subs = await subscribers(admin);
      expect(subs).toHaveLength(1);
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
      expect(await subscribers(admin)).toEqual([]);
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
      expect(await subscribers(admin)).toEqual([]);
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
      const subs = await subscribers(admin);
      expect(subs).toHaveLength(1);
      expect(subs[0]).toMatchObject({ name: "sluice-sub", user: "ann" });
      expect(reports).toEqual([]);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "a user's client with username and password options: the pub/sub connection authenticates as that user",
    async () => {
      const client = await userClient({
        socket: { host: "127.0.0.1", port: server.port },
        username: "ann",
        password: "pw",
      });
      const reports: string[] = [];
      const adapter = adapterFor({ client }, reports);
      const { channel, received } = listening(adapter, unique("acl-client"));
      await readyWithin(adapter);
      await deliversLive(channel, received, "via ann's client");
      const subs = await subscribers(admin);
      expect(subs).toHaveLength(1);
      expect(subs[0]).toMatchObject({ name: "sluice-sub", user: "ann" });
      expect(reports).toEqual([]);
      await adapter.close();
      expect(await client.sendCommand(["PING"])).toBe("PONG"); // the user's client stays open
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
      const [before] = await subscribers(admin);
      await admin.sendCommand(["CLIENT", "KILL", "ID", before!["id"]!]);
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
      const after = await subscribers(admin);
      expect(after).toHaveLength(1);
      expect(after[0]).toMatchObject({ name: "sluice-sub", user: "ann" });
      expect(after[0]!["id"]).not.toBe(before!["id"]);
      expect(reports).toEqual([
        expect.stringMatching(
          /^Lost the Redis pub\/sub connection \(127\.0\.0\.1:\d+: connection closed\)/,
        ),
      ]);
    },
    TEST_TIMEOUT_MS,
  );
});

describe("TLS", () => {
  let server: Server;
  let admin: Client;
  let ca: string;

  beforeAll(async () => {
    const openssl = ensurePrograms([{ program: "openssl", debianPackage: "openssl" }]).get(
      "openssl",
    )!;
    const certs = fs.mkdtempSync(path.join(os.tmpdir(), "sluice-tls-"));
    const file = (name: string) => path.join(certs, name);
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
      (port, dir) => {
        for (const name of ["ca.crt", "server.crt", "server.key"]) {
          fs.copyFileSync(file(name), path.join(dir, name));
        }
        fs.rmSync(certs, { recursive: true, force: true });
        return [
          "--port",
          "0", // TLS only: a plain connection could not get in
          "--tls-port",
          String(port),
          "--tls-cert-file",
          path.join(dir, "server.crt"),
          "--tls-key-file",
          path.join(dir, "server.key"),
          "--tls-ca-cert-file",
          path.join(dir, "ca.crt"),
          "--tls-auth-clients",
          "no",
        ];
      },
      (port) => tls.connect({ host: "127.0.0.1", port, ca: [ca] }),
    );
    admin = createClient({
      url: `rediss://127.0.0.1:${server.port}`,
      socket: { tls: true, ca: [ca] },
    });
    admin.on("error", () => undefined);
    await admin.connect();
  }, TEST_TIMEOUT_MS);

  afterAll(async () => {
    await admin?.close().catch(() => undefined);
    await server?.dispose();
  });

  test.each(["localhost", "127.0.0.1"])(
    "a user's client at rediss://%s with the CA: the pub/sub connection uses TLS with the same CA",
    async (host) => {
      const client = await userClient({
        url: `rediss://${host}:${server.port}`,
        socket: { tls: true, ca: [ca] },
      });
      const reports: string[] = [];
      const adapter = adapterFor({ client }, reports);
      const { channel, received } = listening(adapter, unique("tls"));
      await readyWithin(adapter);
      await deliversLive(channel, received, "over TLS");
      const subs = await subscribers(admin);
      expect(subs).toHaveLength(1);
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
      expect(await subscribers(admin)).toEqual([]);
    },
    TEST_TIMEOUT_MS,
  );
});

describe("a Unix socket", () => {
  let server: Server;
  let admin: Client;
  let socketPath: string;

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
    admin = createClient({ socket: { path: socketPath } });
    admin.on("error", () => undefined);
    await admin.connect();
  }, TEST_TIMEOUT_MS);

  afterAll(async () => {
    await admin?.close().catch(() => undefined);
    await server?.dispose();
  });

  test(
    "a user's client on the socket: the pub/sub connection uses the same socket",
    async () => {
      const client = await userClient({ socket: { path: socketPath } });
      const reports: string[] = [];
      const adapter = adapterFor({ client }, reports);
      const { channel, received } = listening(adapter, unique("unix"));
      await readyWithin(adapter);
      await deliversLive(channel, received, "over the socket");
      const subs = await subscribers(admin);
      expect(subs).toHaveLength(1);
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
      const subs = await subscribers(admin);
      expect(subs).toHaveLength(1);
      expect(subs[0]!["addr"]).toBe(`${socketPath}:0`);
      expect(reports).toEqual([]);
    },
    TEST_TIMEOUT_MS,
  );
});
