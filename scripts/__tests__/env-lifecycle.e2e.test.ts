import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TargetInfo } from "../../lib/lifecycle/info.ts";
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

/** Listening TCP sockets of these processes, from /proc: (pid, local IP). */
function listeningAddresses(pids: number[]): { pid: number; address: string }[] {
  const inodes = new Map<string, number>();
  for (const pid of pids) {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.set(m[1]!, pid);
      } catch {
        // closed meanwhile
      }
    }
  }
  const out: { pid: number; address: string }[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== "0A" || !inodes.has(f[9]!)) continue; // 0A: LISTEN
      out.push({ pid: inodes.get(f[9]!)!, address: ipOf(f[1]!.split(":")[0]!) });
    }
  }
  return out;
}

/** /proc/net/tcp{,6} hex address -> dotted IPv4 (IPv4-mapped IPv6 too) or the IPv6 hex. */
function ipOf(hex: string): string {
  const v4 = hex.length === 8 ? hex : hex.startsWith("0000000000000000FFFF0000") ? hex.slice(24) : undefined;
  if (!v4) return hex === "00000000000000000000000001000000" ? "::1" : hex;
  return [3, 2, 1, 0].map((i) => parseInt(v4.slice(i * 2, i * 2 + 2), 16)).join(".");
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

  it("secret files are 0600 in a 0700 work dir, logs are 0600, and every component listens on 127.0.0.1 only", async () => {
    const t = await up(dir, "perms");
    try {
      const work = dirname(t.info.vault.tokenFile);
      expect(statSync(work).mode & 0o777).toBe(0o700);
      const secrets = readdirSync(work, { withFileTypes: true }).filter((e) => e.isFile());
      expect(secrets.map((e) => e.name)).toEqual(expect.arrayContaining(["vault-token", "kubeconfig", "sa.key", "apiserver.key"]));
      for (const e of secrets) expect([e.name, statSync(join(work, e.name)).mode & 0o777]).toEqual([e.name, 0o600]);
      for (const log of Object.values(t.info.logs)) expect([log, statSync(log).mode & 0o777]).toEqual([log, 0o600]);
      const listening = listeningAddresses(Object.values(t.info.pids ?? {}));
      for (const name of ["etcd", "kube-apiserver", t.info.flavor]) {
        const pid = t.info.pids![name]!;
        expect(listening.filter((l) => l.pid === pid).length, `${name} listens`).toBeGreaterThanOrEqual(1);
      }
      expect(listening.filter((l) => l.address !== "127.0.0.1")).toEqual([]);
    } finally {
      t.child.kill("SIGTERM");
      await t.exited;
    }
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
