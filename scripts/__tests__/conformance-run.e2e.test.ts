import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Kube } from "../../lib/kube/client.ts";
import type { TargetInfo } from "../../lib/lifecycle/info.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunResults } from "../../lib/report/reporter.ts";
import { fixturesWithCase, liveProcesses, script, waitForOutput } from "./helpers.ts";

// npm run conformance as a user runs it: reports on success, nothing left behind on success
// and on Ctrl-C in the middle of the run.

const conformance = (args: string[]) => script("conformance.ts", args);

function runIdIn(output: string): string {
  const m = /(vkc-\d{14}-[0-9a-f]{6})/.exec(output);
  if (!m) throw new Error(`no run id in output:\n${output}`);
  return m[1]!;
}

describe("npm run conformance", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "vkc-conf-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("writes junit.xml, results.json and summary.md, exits 0, and leaves no process or work dir", async () => {
    const reports = join(dir, "ok");
    const run = conformance(["--reports", reports, "suites/smoke"]);
    expect(await run.exited, run.output()).toBe(0);
    const results = JSON.parse(readFileSync(join(reports, "results.json"), "utf8")) as RunResults;
    expect(results.totals).toEqual({ passed: 2, failed: 0, skipped: 0 });
    expect(results).toMatchObject({ target: "local", flavor: process.env.VKC_FLAVOR || "vault" });
    expect(results.cases.map((c) => c.status)).toEqual(["passed", "passed"]);
    expect(readFileSync(join(reports, "junit.xml"), "utf8")).toContain("<testsuites");
    expect(readFileSync(join(reports, "summary.md"), "utf8")).toContain("vault-k8s-conformance: PASS");
    expect(run.output()).toMatch(/conformance \(local, \w+\): 2 passed, 0 failed/);
    expect(liveProcesses(results.runId!)).toEqual([]);
  });

  it("a target that cannot start: one line, exit 3, before any test runner output; nothing left", async () => {
    // A Vault binary that parses policies (preflight) like the real one, and dies on `server`.
    const cfgVault = process.env.VKC_FLAVOR === "openbao" ? "BAO_BIN" : "VAULT_BIN";
    const { loadConfig } = await import("../../lib/config.ts");
    const { provisionVault } = await import("../../lib/lifecycle/start.ts");
    const real = await provisionVault(loadConfig());
    const fake = join(dir, "fake-vault");
    writeFileSync(fake, `#!/bin/sh\nif [ "$1" = policy ]; then exec "${real}" "$@"; fi\necho "no server today" >&2\nexit 1\n`, {
      mode: 0o755,
    });
    const reports = join(dir, "cannot-start");
    const run = script("conformance.ts", ["--reports", reports, "suites/smoke"], { [cfgVault]: fake });
    expect(await run.exited, run.output()).toBe(3);
    const out = run.output();
    expect(out).toMatch(/^error: target "local" could not start: (vault|openbao|bao) exited with code 1 during start \(log: .*\)$/m);
    expect(out).toContain("no server today");
    expect(out).not.toMatch(/RUN\s+v\d|No test files|Unhandled Error|^\s+at /m);
    expect(existsSync(join(reports, "results.json"))).toBe(false);
    const runId = runIdIn(out);
    expect(liveProcesses(runId)).toEqual([]);
    expect(readdirSync(tmpdir()).filter((n) => n.startsWith(runId) || n.startsWith("vkc-handover-"))).toEqual([]);
  });

  it("Ctrl-C while the suites run: exits 130, no process and no work dir of the run remain", async () => {
    // Several files: the run must still be in its suites 1.5 s after ready, also on a quiet machine.
    const run = conformance(["--reports", join(dir, "int"), "suites/login-rejected", "suites/issuer", "suites/fixture-cases"]);
    await waitForOutput(run, /ready in/);
    const runId = runIdIn(run.output());
    expect(liveProcesses(runId).length).toBeGreaterThanOrEqual(3);
    await waitForOutput(run, /suites\/[\w-]+\.test\.ts/); // a file reported; the others are still running
    run.child.kill("SIGINT");
    expect(await run.exited).toBe(130);
    expect(liveProcesses(runId)).toEqual([]);
    expect(readdirSync(tmpdir()).filter((n) => n.startsWith(runId))).toEqual([]);
  });

  it("--keep-on-failure: a failed run keeps the target up, says how to reach and remove it; env:down removes it all", async () => {
    // One case that fails: the role admits the ServiceAccount, the case expects a 403.
    const fixtures = fixturesWithCase(dir, "zz-fails.yaml", [
      "name: fails on purpose",
      "serviceAccounts: [app]",
      'roles: { app: { bound_service_account_names: [app], bound_service_account_namespaces: ["${namespace}"] } }',
      "logins: [{ role: app, serviceAccount: app, expect: { status: 403, error: permission denied } }]",
      "intent: { app: { login: [{ serviceAccount: app }] } }", // so that only the login above fails
    ]);
    const reports = join(dir, "keep");
    const run = script("conformance.ts", ["--reports", reports, "--fixtures", fixtures, "--keep-on-failure", "suites/fixture-cases"]);
    await waitForOutput(run, /is kept/, 180_000);
    expect(run.output()).toMatch(/conformance \(local, \w+\): \d+ passed, 1 failed/);
    const file = join(reports, "kept-target.json");
    expect(run.output()).toContain(`stop it:                Ctrl-C here, or npm run env:down -- --file ${file}`);
    const info = JSON.parse(readFileSync(file, "utf8")) as TargetInfo;
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // It is really up: Vault answers, and the API server serves the run's objects.
    expect((await fetch(`${info.vault.address}/v1/sys/health`)).status).toBe(200);
    const kube = Kube.fromFile(info.kube.kubeconfigPath);
    const namespaces = await kube.core.listNamespace();
    expect(namespaces.items.length).toBeGreaterThanOrEqual(4);
    expect(liveProcesses(info.runId, Object.values(info.pids ?? {})).length).toBeGreaterThanOrEqual(4);
    const down = script("env-down.ts", ["--file", file]);
    expect(await down.exited).toBe(0);
    expect(down.output().trim()).toBe("target stopped");
    expect(await run.exited).toBe(143);
    expect(liveProcesses(info.runId, Object.values(info.pids ?? {}))).toEqual([]);
    expect(existsSync(dirname(info.vault.tokenFile))).toBe(false);
    expect(existsSync(file)).toBe(false);
  });

  it("--keep-on-failure on a passing run keeps nothing", async () => {
    const reports = join(dir, "keep-pass");
    const run = conformance(["--reports", reports, "--keep-on-failure", "suites/smoke"]);
    expect(await run.exited, run.output()).toBe(0);
    expect(run.output()).not.toContain("is kept");
    const results = JSON.parse(readFileSync(join(reports, "results.json"), "utf8")) as RunResults;
    expect(liveProcesses(results.runId!)).toEqual([]);
    expect(existsSync(join(reports, "kept-target.json"))).toBe(false);
  });
});
