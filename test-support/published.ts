/**
 * A workspace package as it would be published, checked the way its users' tools see it:
 * `pnpm pack` (the `files` list applied, `workspace:` ranges rewritten), then publint and
 * arethetypeswrong on the tarball, and a read of every declaration file in it for members that
 * are internals (a `_` prefix). The package's `dist/` must be built (`pnpm test` builds first).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { stripVTControlCharacters } from "node:util";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { findProgram } from "./system";

const REPO_ROOT = path.resolve(__dirname, "..");
const BIN = path.join(REPO_ROOT, "node_modules", ".bin");

export interface Packed {
  /** The .tgz file. */
  tarball: string;
  /** The tarball unpacked: its `package/` directory. */
  dir: string;
  /** Paths of every file in it, relative to `dir`. */
  files: string[];
  /** Removes both. */
  remove(): void;
}

/** `pnpm pack`s `pkgDir` into a temporary directory and unpacks it there. */
export function pack(pkgDir: string): Packed {
  const pnpm = process.env["npm_execpath"]?.includes("pnpm")
    ? [process.execPath, process.env["npm_execpath"]]
    : [findProgram("pnpm")];
  if (pnpm[pnpm.length - 1] === undefined) {
    throw new Error("pnpm is not on the PATH: run `corepack enable` (the README's first step)");
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sluice-pack-"));
  const [command, ...args] = pnpm as [string, ...string[]];
  const out = execFileSync(command, [...args, "pack", "--pack-destination", tmp, "--json"], {
    cwd: pkgDir,
    encoding: "utf8",
    env: { ...process.env, COREPACK_INTEGRITY_KEYS: "0" },
  });
  const { filename } = JSON.parse(out.slice(out.indexOf("{"))) as { filename: string };
  execFileSync("tar", ["-xzf", filename, "-C", tmp]);
  const dir = path.join(tmp, "package");
  return {
    tarball: filename,
    dir,
    files: listFiles(dir),
    remove: () => fs.rmSync(tmp, { recursive: true, force: true }),
  };
}

function listFiles(dir: string, prefix = ""): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) =>
      entry.isDirectory()
        ? listFiles(path.join(dir, entry.name), `${prefix}${entry.name}/`)
        : [`${prefix}${entry.name}`],
    );
}

/** The environment for the linters: no colours, whatever the caller's terminal or CI asks for. */
const PLAIN: NodeJS.ProcessEnv = (() => {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" };
  delete env["FORCE_COLOR"];
  return env;
})();

/**
 * publint on the tarball, warnings as errors. Returns its messages (errors, warnings and
 * suggestions: the lines after its "Linting..." header), `""` when it has none ("All good!");
 * throws if it fails to run.
 */
export function publint(tarball: string): string {
  const result = spawnSync(path.join(BIN, "publint"), ["run", tarball, "--strict"], {
    encoding: "utf8",
    env: PLAIN,
  });
  if (result.error) throw result.error;
  // Colours are off by the environment, and stripped anyway: a CI that forces them (FORCE_COLOR,
  // a terminal) once turned "All good!" into an escape-wrapped string that failed the test.
  const output = stripVTControlCharacters(`${result.stdout}${result.stderr}`);
  const lines = output.split("\n");
  const start = lines.findIndex((line) => line.startsWith("Linting..."));
  if (start === -1) throw new Error(`publint did not lint ${tarball}:\n${output}`);
  const messages = lines
    .slice(start + 1)
    .join("\n")
    .trim();
  if (messages === "All good!") return ""; // its words for no message at all
  return result.status === 0 || messages !== "" ? messages : output;
}

export interface TypesProblem {
  kind: string;
  entrypoint?: string;
  resolutionKind?: string;
}

/**
 * arethetypeswrong on the tarball, every resolution mode (node10, node16 from CommonJS and from
 * ES modules, bundler). Returns its problems, `[]` when there are none.
 */
export function typesProblems(tarball: string): TypesProblem[] {
  const result = spawnSync(path.join(BIN, "attw"), [tarball, "--format", "json"], {
    encoding: "utf8",
    env: PLAIN,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) throw result.error;
  let report: { problems?: Record<string, TypesProblem[]> | TypesProblem[] };
  try {
    report = JSON.parse(result.stdout) as typeof report;
  } catch {
    throw new Error(`attw gave no report for ${tarball}:\n${result.stdout}${result.stderr}`);
  }
  const problems = report.problems ?? [];
  return (Array.isArray(problems) ? problems : Object.values(problems).flat()).map(
    ({ kind, entrypoint, resolutionKind }) => ({ kind, entrypoint, resolutionKind }),
  );
}

/** Class and interface members named with a leading `_` in the package's declaration files. */
export function internalsInDeclarations(packed: Packed): string[] {
  const member = /^\s+(?:(?:private|protected|public|readonly|static|abstract|get|set)\s+)*(_\w+)/;
  return packed.files
    .filter((file) => /\.d\.[cm]?ts$/.test(file))
    .flatMap((file) =>
      fs
        .readFileSync(path.join(packed.dir, file), "utf8")
        .split("\n")
        .flatMap((line, i) => {
          const match = member.exec(line);
          return match ? [`${file}:${i + 1}: ${match[1]}`] : [];
        }),
    );
}

/**
 * Declares the tests of a package's tarball (call it at the top level of a jest test file):
 * what it holds, publint, arethetypeswrong, and no internals in its declarations.
 */
export function describePublished(pkgDir: string): void {
  describe("the packed tarball, as the registry would get it", () => {
    let packed: Packed;
    beforeAll(() => {
      if (!fs.existsSync(path.join(pkgDir, "dist"))) {
        throw new Error(`${pkgDir}/dist is missing: run \`pnpm build\` first (pnpm test does)`);
      }
      packed = pack(pkgDir);
    }, 60_000);
    afterAll(() => packed?.remove());

    test("holds package.json, the README and dist/ only (no sources, tests or scripts)", () => {
      const outside = packed.files.filter(
        (file) => !["package.json", "README.md"].includes(file) && !file.startsWith("dist/"),
      );
      expect(outside).toEqual([]);
      expect(packed.files).toEqual(expect.arrayContaining(["package.json", "README.md"]));
      const manifest = JSON.parse(
        fs.readFileSync(path.join(packed.dir, "package.json"), "utf8"),
      ) as Record<string, Record<string, string> | undefined>;
      for (const field of ["dependencies", "peerDependencies", "optionalDependencies"]) {
        for (const [name, range] of Object.entries(manifest[field] ?? {})) {
          expect(`${name}@${range}`).not.toMatch(/@workspace:/);
        }
      }
    }, 30_000);

    test("publint: nothing, warnings and suggestions included", () => {
      expect(publint(packed.tarball)).toBe("");
    }, 60_000);

    test("arethetypeswrong: no problem in any resolution mode (node10, node16 CJS and ESM, bundler)", () => {
      expect(typesProblems(packed.tarball)).toEqual([]);
    }, 120_000);

    test("its declarations publish the API only: no _-prefixed member", () => {
      expect(internalsInDeclarations(packed)).toEqual([]);
    });
  });
}
