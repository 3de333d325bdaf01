/**
 * docker-compose.yml, the two Dockerfiles and the nginx start-up scripts, checked without a Docker
 * engine: Debian's `docker-compose config` validates and resolves the compose file, and the
 * tests check that the files agree with each other and with nginx/nginx.conf.
 */
import { execFile, spawnSync } from "node:child_process";
import fs from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { createApp } from "../src/app";
import { findProgram } from "../../../test-support/system";
import {
  HTTPS_LISTEN,
  HTTP_LISTEN,
  NGINX_DIR,
  REPO_ROOT,
  UPSTREAM_SERVER,
  replaceExactlyOnce,
} from "./helpers/nginx";

jest.setTimeout(30_000);

const COMPOSE_FILE = path.join(REPO_ROOT, "docker-compose.yml");
const read = (...parts: string[]): string =>
  fs.readFileSync(path.join(REPO_ROOT, ...parts), "utf8");

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string } = {},
): Run {
  const result = spawnSync(command, args, {
    cwd: REPO_ROOT,
    encoding: "utf8",
    env: options.env ?? process.env,
    input: options.input,
    timeout: 20_000,
  });
  if (result.error !== undefined) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The environment without the variables the compose file reads, so defaults apply. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  for (const name of [
    "HTTP_PORT",
    "HTTPS_PORT",
    "STREAM_SECRET",
    "COMPOSE_FILE",
    "COMPOSE_PROJECT_NAME",
  ]) {
    if (!(name in extra)) delete env[name];
  }
  return env;
}

function dockerCompose(args: string[], env: NodeJS.ProcessEnv = cleanEnv()): Run {
  const program = findProgram("docker-compose");
  if (program === undefined)
    throw new Error("docker-compose is not installed (Debian package: docker-compose)");
  return run(program, args, { env });
}

/** `docker-compose config` output, parsed with the YAML library docker-compose itself runs on. */
function resolvedConfig(env?: NodeJS.ProcessEnv): any {
  const config = dockerCompose(["-f", COMPOSE_FILE, "config"], env);
  expect(config.stderr).toBe("");
  expect(config.status).toBe(0);
  const json = run(
    "python3",
    ["-c", "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"],
    {
      input: config.stdout,
    },
  );
  expect(json.status).toBe(0);
  return JSON.parse(json.stdout);
}

describe("docker-compose.yml", () => {
  test("is valid for docker-compose config, and an invalid edit is not (the check has teeth)", () => {
    const ok = dockerCompose(["-f", COMPOSE_FILE, "config", "-q"]);
    expect(ok.stderr).toBe("");
    expect(ok.status).toBe(0);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sluice-compose-"));
    try {
      const broken = path.join(dir, "docker-compose.yml");
      fs.writeFileSync(
        broken,
        replaceExactlyOnce(
          read("docker-compose.yml"),
          "      demo:\n        condition: service_healthy",
          "      demo:\n        condition: when_ready",
          "docker-compose.yml",
        ),
      );
      const bad = dockerCompose(["-f", broken, "--project-directory", REPO_ROOT, "config", "-q"]);
      expect(bad.status).not.toBe(0);
      expect(bad.stderr).toContain("condition");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("runs nginx in front of the demo: nginx published on 8080/8443, the demo only inside", () => {
    const config = resolvedConfig();
    expect(Object.keys(config.services).sort()).toEqual(["demo", "nginx", "redis"]);
    const { demo, nginx, redis } = config.services;

    expect(demo.build).toEqual({ context: REPO_ROOT, dockerfile: "apps/demo/Dockerfile" });
    expect(demo.ports).toBeUndefined();
    expect(demo.expose).toEqual(["3000"]);
    // Two replicas sharing their channels through Redis (REDIS_URL, see src/main.ts).
    expect(demo.environment).toMatchObject({ PORT: "3000", REDIS_URL: "redis://redis:6379" });
    // One secret for both replicas (a token minted by one is checked by the other), long enough
    // for src/main.ts, and overridable from the shell or .env.
    expect(demo.environment.STREAM_SECRET.length).toBeGreaterThanOrEqual(32);
    const secret = "s".repeat(40);
    expect(
      resolvedConfig(cleanEnv({ STREAM_SECRET: secret })).services.demo.environment.STREAM_SECRET,
    ).toBe(secret);
    expect(demo.deploy).toMatchObject({ replicas: 2 });
    expect(demo.depends_on).toEqual({ redis: { condition: "service_healthy" } });
    expect(redis.ports).toBeUndefined();
    expect(redis.command).toEqual(["redis-server", "--appendonly", "yes"]);

    expect(nginx.build).toEqual({ context: path.join(REPO_ROOT, "nginx") });
    expect(nginx.depends_on).toEqual({ demo: { condition: "service_healthy" } });
    expect(nginx.ports).toEqual([
      { published: 8080, target: 80 },
      { published: 8443, target: 443 },
    ]);
    expect(nginx.environment).toEqual({ SLUICE_HTTP_PORT: "8080", SLUICE_HTTPS_PORT: "8443" });
    expect(nginx.volumes).toEqual(["certs:/etc/nginx/certs:rw"]);
    expect(Object.keys(config.volumes).sort()).toEqual(["certs", "redis-data"]);
  });

  test("HTTP_PORT and HTTPS_PORT move the published ports and the printed URL together", () => {
    const { nginx } = resolvedConfig(cleanEnv({ HTTP_PORT: "9080", HTTPS_PORT: "9443" })).services;
    expect(nginx.ports).toEqual([
      { published: 9080, target: 80 },
      { published: 9443, target: 443 },
    ]);
    expect(nginx.environment).toEqual({ SLUICE_HTTP_PORT: "9080", SLUICE_HTTPS_PORT: "9443" });
  });

  test("agrees with nginx.conf: upstream demo:3000, listeners on the ports compose maps, certs in the volume", () => {
    const conf = fs.readFileSync(path.join(NGINX_DIR, "nginx.conf"), "utf8");
    // The texts the e2e tests replace are there, once each (replaceExactlyOnce throws otherwise).
    for (const text of [UPSTREAM_SERVER, HTTP_LISTEN, HTTPS_LISTEN])
      replaceExactlyOnce(conf, text, "", "nginx.conf");
    const { demo, nginx } = resolvedConfig().services;
    expect(UPSTREAM_SERVER).toBe(`server demo:${String(demo.environment.PORT)};`);
    expect(nginx.ports.map((p: { target: number }) => p.target)).toEqual([80, 443]);
    // Relative certificate paths resolve against /etc/nginx, where the volume is mounted.
    expect(conf).toMatch(/^\s*ssl_certificate certs\/cert\.pem;/m);
    expect(conf).toMatch(/^\s*ssl_certificate_key certs\/key\.pem;/m);
    expect(read("nginx", "gen-cert.sh")).toContain('dir="${1:-/etc/nginx/certs}"');
  });

  test("the demo's health check passes against the demo's /healthz and fails without a server", async () => {
    const { demo } = resolvedConfig().services;
    const [kind, program, flag, script] = demo.healthcheck.test as string[];
    expect([kind, program, flag]).toEqual(["CMD", "node", "-e"]);
    // The same script, pointed at a demo on a free port instead of the container's 3000.
    // Asynchronously: the server answering it lives in this process.
    const check = (port: number): Promise<number> =>
      new Promise((resolve) => {
        const code = replaceExactlyOnce(
          script ?? "",
          "http://127.0.0.1:3000/healthz",
          `http://127.0.0.1:${port}/healthz`,
          "the health check",
        );
        execFile(process.execPath, ["-e", code], { timeout: 10_000 }, (err) =>
          resolve(err === null ? 0 : typeof err.code === "number" ? err.code : -1),
        );
      });
    const server: Server = createApp().listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    const { port } = server.address() as AddressInfo;
    try {
      expect(await check(port)).toBe(0);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    expect(await check(port)).toBe(1);
  });
});

describe("the images", () => {
  const instructions = (file: string): string[] =>
    read(file)
      .replace(/\\\n/g, " ")
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line !== "" && !line.startsWith("#"));

  test("apps/demo/Dockerfile: multi-stage on Node 20, pnpm via corepack, frozen lockfile, runs node as the node user", () => {
    const lines = instructions("apps/demo/Dockerfile");
    const froms = lines.filter((l) => l.startsWith("FROM "));
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const from of froms) expect(from).toMatch(/^FROM (node:20-[a-z-]+|base)( AS [a-z-]+)?$/);
    expect(lines).toContain("RUN corepack enable");
    expect(lines.filter((l) => l.includes("pnpm install"))).toEqual([
      "RUN pnpm install --frozen-lockfile",
      "RUN pnpm install --frozen-lockfile --prod --filter @sluice/demo...",
    ]);
    // The final stage: no pnpm, unprivileged, plain node on the compiled demo.
    const final = lines.slice(lines.lastIndexOf(froms[froms.length - 1] as string));
    expect(final.some((l) => l.includes("pnpm"))).toBe(false);
    expect(final).toContain("USER node");
    expect(final[final.length - 1]).toBe('CMD ["node", "dist/main.js"]');
    // tsconfig.build.json compiles src/ into the dist/ the image runs.
    const build = read("apps/demo/tsconfig.build.json");
    expect(build).toContain('"outDir": "dist"');
    expect(build).toContain('"rootDir": "src"');
  });

  test(".dockerignore keeps host installs, build output and git out of the context", () => {
    const ignored = instructions(".dockerignore");
    expect(ignored).toEqual(
      expect.arrayContaining([".git", "**/node_modules", "**/dist", "nginx/certs"]),
    );
  });

  test("nginx/Dockerfile copies every nginx/*.conf and installs both start-up scripts", () => {
    const lines = instructions("nginx/Dockerfile");
    expect(lines[0]).toMatch(/^FROM nginx:1\.(2[5-9]|[3-9]\d)(\.\d+)?-alpine$/);
    const confs = fs
      .readdirSync(NGINX_DIR)
      .filter((f) => f.endsWith(".conf"))
      .sort();
    expect(lines).toContain(`COPY ${confs.join(" ")} /etc/nginx/`);
    expect(lines).toContain("COPY gen-cert.sh /docker-entrypoint.d/40-sluice-gen-cert.sh");
    expect(lines).toContain("COPY print-url.sh /docker-entrypoint.d/90-sluice-print-url.sh");
    expect(lines.some((l) => l.startsWith("RUN apk add --no-cache openssl"))).toBe(true);
  });

  test("print-url.sh prints where to open the demo, with the published ports", () => {
    const out = run("sh", [path.join(NGINX_DIR, "print-url.sh")], {
      env: { ...process.env, SLUICE_HTTP_PORT: "9080", SLUICE_HTTPS_PORT: "9443" },
    });
    expect(out.status).toBe(0);
    expect(out.stdout).toContain("open https://localhost:9443/");
    expect(out.stdout).toContain("http://localhost:9080/");
    const defaults = run("sh", [path.join(NGINX_DIR, "print-url.sh")], { env: cleanEnv() });
    expect(defaults.stdout).toContain("open https://localhost:8443/");
  });

  test("gen-cert.sh makes a localhost certificate once and keeps it afterwards", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sluice-cert-"));
    try {
      const certs = path.join(dir, "certs");
      const first = run("sh", [path.join(NGINX_DIR, "gen-cert.sh"), certs]);
      expect(first.status).toBe(0);
      expect(first.stdout).toContain("created a self-signed certificate");
      const cert = fs.readFileSync(path.join(certs, "cert.pem"), "utf8");
      expect(fs.statSync(path.join(certs, "key.pem")).mode & 0o777).toBe(0o600);
      const text = run("openssl", ["x509", "-noout", "-subject", "-ext", "subjectAltName"], {
        input: cert,
      });
      expect(text.stdout).toContain("CN = localhost");
      expect(text.stdout).toContain("DNS:localhost, IP Address:127.0.0.1");

      const second = run("sh", [path.join(NGINX_DIR, "gen-cert.sh"), certs]);
      expect(second.status).toBe(0);
      expect(second.stdout).toContain("using the existing certificate");
      expect(fs.readFileSync(path.join(certs, "cert.pem"), "utf8")).toBe(cert);
      expect(fs.readdirSync(certs).sort()).toEqual(["cert.pem", "key.pem"]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
