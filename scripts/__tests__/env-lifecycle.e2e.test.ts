import { spawn, execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../lib/config.ts";
import type { TargetInfo } from "../../lib/target/info.ts";

// The harness's own promise: whatever way a target ends (Ctrl-C, env:down), no etcd,
// kube-apiserver, kube-controller-manager or Vault process and no temp dir of it remains.

function script(name: string, args: string[], env: Record<string, string>) {
  return spawn(process.execPath, ["--import", "tsx", join(PACKAGE_ROOT, "scripts", name), ...args], {
    cwd: PACKAGE_ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/**
 * Live processes of a run: the recorded component pids, plus any process whose command line
 * mentions the run id (the control plane's flags name its work dir). Zombies do not count.
 */
function processesOf(info: TargetInfo): number[] {
  let byName: number[] = [];
  try {
    byName = execFileSync("pgrep", ["-f", info.runId], { encoding: "utf8" }).split("\n").filter(Boolean).map(Number);
  } catch {
    // pgrep exits 1 when nothing matches
  }
  const alive = (pid: number) => {
    try {
      return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
    } catch {
      return false;
    }
  };
  return [...new Set([...Object.values(info.pids ?? {}), ...byName])].filter(alive);
}

async function up(dir: string, name: string) {
  const out = join(dir, `${name}.json`);
  const child = script("env-up.ts", ["--out", out, "--reports", join(dir, "reports")], {});
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  const started = Date.now();
  while (!/is up/.test(output)) {
    if (child.exitCode !== null) throw new Error(`env:up exited early: ${output}`);
    if (Date.now() - started > 120_000) throw new Error(`env:up not up after 120s: ${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const info = JSON.parse(readFileSync(out, "utf8")) as TargetInfo & { pid: number };
  return { child, exited, info, out, output: () => output };
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
    const b = script("conformance.ts", ["--reports", join(dir, "second"), "suites/smoke"], {});
    expect(await new Promise((r) => b.on("exit", r))).toBe(0);
    expect(processesOf(t.info).length).toBeGreaterThanOrEqual(4);
    const health = await fetch(`${t.info.vault.address}/v1/sys/health`);
    expect(health.status).toBe(200);
    const down = script("env-down.ts", ["--file", t.out], {});
    let said = "";
    down.stdout.on("data", (d) => (said += d));
    const code = await new Promise<number | null>((r) => down.on("exit", (c) => r(c)));
    expect(code).toBe(0);
    expect(said.trim()).toBe("target stopped");
    expect(await t.exited).toBe(143);
    expect(processesOf(t.info)).toEqual([]);
    expect(existsSync(dirname(t.info.vault.tokenFile))).toBe(false);
  });

  it("env:down with nothing running says so and exits 0", async () => {
    const down = script("env-down.ts", ["--file", join(dir, "none.json")], {});
    let said = "";
    down.stdout.on("data", (d) => (said += d));
    expect(await new Promise((r) => down.on("exit", r))).toBe(0);
    expect(said).toContain("no running target recorded");
  });
});
