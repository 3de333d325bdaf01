import {
  ensurePrograms,
  findProgram,
  resetAptUpdatedForTests,
  type SystemDeps,
} from "../../../test-support/system";
import { DEMO_TEST_PROGRAMS } from "./helpers/programs";

/** A fake system: `installed` programs exist; apt-get installs `provides[package]` programs. */
function fakeSystem(options: {
  installed: string[];
  root?: boolean;
  provides?: Record<string, string[]>;
  failOn?: string;
}) {
  const installed = new Set(options.installed);
  const runs: string[][] = [];
  const logs: string[] = [];
  const deps: SystemDeps = {
    findProgram: (p) => (installed.has(p) ? `/usr/bin/${p}` : undefined),
    isRoot: () => options.root ?? true,
    run: (command, args) => {
      runs.push([command, ...args]);
      if (options.failOn !== undefined && args.includes(options.failOn)) {
        throw new Error(`${options.failOn} failed`);
      }
      if (args.includes("install")) {
        for (const pkg of args.filter((a) => !a.startsWith("-") && a !== "install")) {
          for (const program of options.provides?.[pkg] ?? [pkg]) installed.add(program);
        }
      }
    },
    log: (message) => logs.push(message),
  };
  return { deps, runs, logs };
}

const LOCK = ["-o", "DPkg::Lock::Timeout=300"];

beforeEach(() => resetAptUpdatedForTests());

describe("ensurePrograms", () => {
  test("does nothing when every program is there, and returns their paths", () => {
    const { deps, runs, logs } = fakeSystem({ installed: ["nginx", "openssl", "apt-get"] });
    const paths = ensurePrograms(
      [
        { program: "nginx", debianPackage: "nginx" },
        { program: "openssl", debianPackage: "openssl" },
      ],
      deps,
    );
    expect(runs).toEqual([]);
    expect(logs).toEqual([]);
    expect([...paths]).toEqual([
      ["nginx", "/usr/bin/nginx"],
      ["openssl", "/usr/bin/openssl"],
    ]);
  });

  test("as root with apt-get: one apt-get update, then one install of the missing packages", () => {
    const { deps, runs, logs } = fakeSystem({ installed: ["apt-get", "openssl"] });
    ensurePrograms(DEMO_TEST_PROGRAMS, deps);
    expect(runs).toEqual([
      ["/usr/bin/apt-get", ...LOCK, "update"],
      [
        "/usr/bin/apt-get",
        ...LOCK,
        "install",
        "-y",
        "--no-install-recommends",
        "nginx",
        "docker-compose",
        "chromium",
      ],
    ]);
    expect(logs[0]).toContain("installing nginx docker-compose chromium");
    // A second call in the same process that needs a package does not update again.
    const second = fakeSystem({ installed: ["apt-get"] });
    ensurePrograms([{ program: "jq", debianPackage: "jq" }], second.deps);
    expect(second.runs.map((r) => r.slice(3, 4))).toEqual([["install"]]);
  });

  test("a package that provides several programs is installed once", () => {
    const { deps, runs } = fakeSystem({
      installed: ["apt-get"],
      provides: { "bind9-dnsutils": ["dig", "nslookup"] },
    });
    ensurePrograms(
      [
        { program: "dig", debianPackage: "bind9-dnsutils" },
        { program: "nslookup", debianPackage: "bind9-dnsutils" },
      ],
      deps,
    );
    expect(runs[1]?.slice(-1)).toEqual(["bind9-dnsutils"]);
    expect(runs[1]?.filter((a) => a === "bind9-dnsutils")).toHaveLength(1);
  });

  test("not root: fails naming each missing program, its package and the command", () => {
    const { deps, runs } = fakeSystem({ installed: ["apt-get", "openssl"], root: false });
    expect(() => ensurePrograms(DEMO_TEST_PROGRAMS, deps)).toThrow(
      "Missing programs the tests need: nginx (Debian package: nginx), docker-compose " +
        "(Debian package: docker-compose), chromium (Debian package: chromium). Not running as " +
        "root, so the tests cannot install them; install them with: " +
        "sudo apt-get install -y --no-install-recommends nginx docker-compose chromium",
    );
    expect(runs).toEqual([]);
  });

  test("no apt-get: fails naming the program and package", () => {
    const { deps, runs } = fakeSystem({ installed: [] });
    expect(() => ensurePrograms([{ program: "nginx", debianPackage: "nginx" }], deps)).toThrow(
      /nginx \(Debian package: nginx\)\. There is no apt-get here/,
    );
    expect(runs).toEqual([]);
  });

  test("a failing apt-get fails the run", () => {
    const { deps } = fakeSystem({ installed: ["apt-get"], failOn: "install" });
    expect(() => ensurePrograms([{ program: "nginx", debianPackage: "nginx" }], deps)).toThrow(
      "install failed",
    );
  });

  test("a package that does not provide the program fails, naming it", () => {
    const { deps } = fakeSystem({ installed: ["apt-get"], provides: { nginx: [] } });
    expect(() => ensurePrograms([{ program: "nginx", debianPackage: "nginx" }], deps)).toThrow(
      "apt-get installed nginx, but these programs are still missing: nginx (Debian package: nginx)",
    );
  });
});

describe("findProgram", () => {
  test("finds node on PATH and nothing for a name that is not a program", () => {
    expect(findProgram("node")).toMatch(/\/node$/);
    expect(findProgram("no-such-program-sluice")).toBeUndefined();
  });

  test("finds programs in /usr/sbin even without it on PATH (Debian's nginx lives there)", () => {
    const saved = process.env["PATH"];
    process.env["PATH"] = "/nonexistent";
    try {
      // The global setup ran before this file, so nginx is installed.
      expect(findProgram("nginx")).toBe("/usr/sbin/nginx");
    } finally {
      process.env["PATH"] = saved;
    }
  });
});
