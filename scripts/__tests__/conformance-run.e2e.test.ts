import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunResults } from "../../lib/report/reporter.ts";
import { liveProcesses, script, waitForOutput } from "./helpers.ts";

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

  it("Ctrl-C while the suites run: exits 130, no process and no work dir of the run remain", async () => {
    const run = conformance(["--reports", join(dir, "int"), "suites/login-rejected"]);
    await waitForOutput(run, /ready in/);
    const runId = runIdIn(run.output());
    expect(liveProcesses(runId).length).toBeGreaterThanOrEqual(3);
    await new Promise((r) => setTimeout(r, 1500)); // the suites are running now
    run.child.kill("SIGINT");
    expect(await run.exited).toBe(130);
    expect(liveProcesses(runId)).toEqual([]);
    expect(readdirSync(tmpdir()).filter((n) => n.startsWith(runId))).toEqual([]);
  });
});
