import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TargetInfo } from "../../lib/target/info.ts";
import { liveProcesses, script, waitForOutput } from "./helpers.ts";

// The harness's own promise: whatever way a target ends (Ctrl-C, env:down), no etcd,
// kube-apiserver, kube-controller-manager or Vault process and no temp dir of it remains.

function processesOf(info: TargetInfo): number[] {
  return liveProcesses(info.runId, Object.values(info.pids ?? {}));
}

async function up(dir: string, name: string) {
  const out = join(dir, `${name}.json`);
  const run = script("env-up.ts", ["--out", out, "--reports", join(dir, "reports")]);
  await waitForOutput(run, /is up/);
  const info = JSON.parse(readFileSync(out, "utf8")) as TargetInfo & { pid: number };
  return { ...run, info, out };
}

describe("env:up / env:down lifecycle", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "vkc-e2e-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("Ctrl-C (SIGINT) to env:up tears everything down: no component process, no work dir, no state file", async () => {
    const t = await up(dir, "sigint");
    const workDir = dirname(t.info.vault.tokenFile);
    expect(Object.keys(t.info.pids ?? {}).sort()).toEqual(["etcd", "kube-apiserver", "kube-controller-manager", t.info.flavor].sort());
    expect(processesOf(t.info).length).toBeGreaterThanOrEqual(4);
    expect(existsSync(workDir)).toBe(true);
    t.child.kill("SIGINT");
    expect(await t.exited).toBe(130);
    expect(processesOf(t.info)).toEqual([]);
    expect(existsSync(workDir)).toBe(false);
    expect(existsSync(t.out)).toBe(false);
    // The logs stay for diagnostics, redacted.
    for (const log of Object.values(t.info.logs)) expect(existsSync(log)).toBe(true);
  });

  it("a second run while one is up does not disturb it; then npm run env:down stops the first", async () => {
    const t = await up(dir, "down");
    // Run B: a whole conformance run with its own target, while target A stays up.
    const b = script("conformance.ts", ["--reports", join(dir, "second"), "suites/smoke"]);
    expect(await b.exited).toBe(0);
    expect(processesOf(t.info).length).toBeGreaterThanOrEqual(4);
    const health = await fetch(`${t.info.vault.address}/v1/sys/health`);
    expect(health.status).toBe(200);
    const down = script("env-down.ts", ["--file", t.out]);
    expect(await down.exited).toBe(0);
    expect(down.output().trim()).toBe("target stopped");
    expect(await t.exited).toBe(143);
    expect(processesOf(t.info)).toEqual([]);
    expect(existsSync(dirname(t.info.vault.tokenFile))).toBe(false);
  });

  it("env:down with nothing running says so and exits 0", async () => {
    const down = script("env-down.ts", ["--file", join(dir, "none.json")]);
    expect(await down.exited).toBe(0);
    expect(down.output()).toContain("no running target recorded");
  });
});
