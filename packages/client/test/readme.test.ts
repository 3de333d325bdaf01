import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";

// The README's runnable examples, run exactly as written there, against the built packages
// (`pnpm test` builds first); each one's output must be the one the README shows.
const root = path.resolve(__dirname, "..");
const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
const run = promisify(execFile);

function blocks(kind: "example" | "output", fence: string): Map<string, string> {
  const pattern = new RegExp(
    `<!-- ${kind}: (\\S+) -->\\s*\`\`\`${fence}\\n([\\s\\S]*?)\`\`\``,
    "g",
  );
  return new Map([...readme.matchAll(pattern)].map((m) => [m[1]!, m[2]!]));
}

const examples = blocks("example", "js");
const outputs = blocks("output", "text");

test("the README has its two examples, each with its output", () => {
  expect([...examples.keys()]).toEqual(["prices.mjs", "chat.mjs"]);
  expect([...outputs.keys()]).toEqual([...examples.keys()]);
});

test.each([...examples.keys()])(
  "%s runs and prints what the README shows",
  async (name) => {
    for (const dist of ["dist/index.mjs", "../express-sse/dist/index.mjs"]) {
      if (!fs.existsSync(path.join(root, dist))) {
        throw new Error(`${dist} is missing: run \`pnpm build\` first (pnpm test does)`);
      }
    }
    // Inside the package, so that `@sluice/client` (itself), express and @sluice/express-sse resolve.
    const dir = fs.mkdtempSync(path.join(root, ".readme-"));
    try {
      const file = path.join(dir, name);
      fs.writeFileSync(file, examples.get(name)!);
      const result = await run(process.execPath, [file], { cwd: dir, timeout: 20_000 }).catch(
        (err: Error & { stdout?: string; stderr?: string; signal?: string | null }) => {
          // Say how far it got: a hang (killed at the timeout) and a crash read differently.
          const how = err.signal ? `killed by ${err.signal} (timeout 20 s)` : "failed";
          throw new Error(
            `${name} ${how}\n--- stdout ---\n${err.stdout ?? ""}--- stderr ---\n${err.stderr ?? ""}`,
          );
        },
      );
      expect(result.stdout).toBe(outputs.get(name));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
  30_000,
);
