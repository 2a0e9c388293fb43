import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../lib/config.ts";

// The package as a user gets it: `npm pack` (prepack builds dist/), installed from the tarball
// into a fresh project, and its command run with npx: compiled JavaScript on Node, no TypeScript
// loader, the suites and fixtures from the installed package, reports in the user's directory.
describe("the npm package", () => {
  const dir = mkdtempSync(join(tmpdir(), "vkc-package-e2e-"));
  const project = join(dir, "project");
  const installed = join(project, "node_modules", "vault-k8s-conformance");
  // The user's environment: none of our settings (so the defaults apply: the binary cache in
  // ~/.cache/vault-k8s-conformance, ./reports), none of the outer npm run's.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VKC_") && !k.startsWith("npm_")));
  const run = (cmd: string, args: string[], cwd = project) => {
    const r = spawnSync(cmd, args, { cwd, env, encoding: "utf8", timeout: 170_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, output: `${r.stdout}\n${r.stderr}` };
  };
  const cli = (...args: string[]) => run("npx", ["--no-install", "vault-k8s-conformance", ...args]);

  beforeAll(() => {
    const packed = run("npm", ["pack", "--pack-destination", dir, "--silent"], PACKAGE_ROOT);
    expect(packed.code, packed.output).toBe(0);
    const tarball = readdirSync(dir).find((f) => f.endsWith(".tgz"));
    expect(tarball, packed.output).toBeDefined();
    mkdirSync(project);
    const init = run("npm", ["init", "-y"]);
    expect(init.code, init.output).toBe(0);
    const install = run("npm", ["install", join(dir, tarball!), "--prefer-offline", "--no-audit", "--no-fund"]);
    expect(install.code, install.output).toBe(0);
  }, 240_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("ships compiled JavaScript only: no TypeScript under dist, no tests, no TypeScript loader installed", () => {
    const files = (d: string): string[] =>
      readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(d, e.name)) : [join(d, e.name)]));
    const shipped = files(installed).map((f) => f.slice(installed.length + 1));
    expect(shipped).toContain("dist/lib/main.js");
    expect(shipped).toContain("dist/suites/smoke.test.js");
    expect(shipped).toContain("fixtures/versions.json");
    expect(shipped.filter((f) => f.endsWith(".ts"))).toEqual([]);
    expect(shipped.filter((f) => f.includes("__tests__"))).toEqual([]);
    expect(existsSync(join(project, "node_modules", "tsx"))).toBe(false);
    expect(existsSync(join(project, "node_modules", "vitest"))).toBe(true);
  });

  it("has --help listing the commands, --help per command, --version, and one line with exit 2 for an unknown command", () => {
    const help = cli("--help");
    expect(help.code, help.output).toBe(0);
    for (const c of [
      "conformance",
      "profile",
      "diff",
      "results-diff",
      "audit",
      "audit-diff",
      "mutation",
      "matrix",
      "env up",
      "env down",
      "setup",
      "bench",
    ])
      expect(help.stdout).toContain(`  ${c} `);
    const conformance = cli("conformance", "--help");
    expect(conformance.code, conformance.output).toBe(0);
    expect(conformance.stdout).toMatch(/^usage: vault-k8s-conformance conformance /);
    expect(conformance.stdout).toContain("--fixtures DIR");
    const version = cli("--version");
    expect(version.stdout.trim()).toBe(
      (JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string }).version,
    );
    const unknown = cli("nonsense");
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toBe("");
    expect(unknown.stderr.trim().split("\n")).toEqual(['error: unknown command "nonsense" (see vault-k8s-conformance --help)']);
  });

  it("runs conformance on the local target with the package's fixtures, reports in ./reports", () => {
    const r = cli("conformance", "suites/smoke");
    expect(r.code, r.output).toBe(0);
    const results = JSON.parse(readFileSync(join(project, "reports", "results.json"), "utf8")) as {
      totals: { passed: number; failed: number };
    };
    expect(results.totals.passed).toBeGreaterThan(0);
    expect(results.totals.failed).toBe(0);
  });

  it("runs conformance with --fixtures pointing at a folder outside the package", () => {
    const fixtures = join(dir, "my-fixtures");
    cpSync(join(installed, "fixtures"), fixtures, { recursive: true });
    const reports = join(dir, "my-reports");
    const r = cli("conformance", "--fixtures", fixtures, "--reports", reports, "suites/smoke");
    expect(r.code, r.output).toBe(0);
    const results = JSON.parse(readFileSync(join(reports, "results.json"), "utf8")) as { totals: { passed: number; failed: number } };
    expect(results.totals.passed).toBeGreaterThan(0);
  });
});
