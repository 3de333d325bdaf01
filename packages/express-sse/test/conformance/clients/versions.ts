import fs from "node:fs";
import path from "node:path";

/** The installed version of a package this test resolves (its package.json, found by name). */
export function versionOf(name: string): string {
  let dir = path.dirname(require.resolve(name));
  for (let i = 0; i < 10; i++) {
    const file = path.join(dir, "package.json");
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, "utf8")) as { name?: string; version?: string };
      if (pkg.name === name && pkg.version !== undefined) return pkg.version;
    }
    dir = path.dirname(dir);
  }
  throw new Error(`cannot find the version of ${name}`);
}
