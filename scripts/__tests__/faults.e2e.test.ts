import { existsSync, readdirSync, readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../lib/config.ts";
import type { RunResults } from "../../lib/report/reporter.ts";
import { pidAlive } from "../../lib/process.ts";
import { provisionLocal } from "../../lib/lifecycle/start.ts";
import { descendants, liveProcesses, script, until, waitForOutput, type ProcInfo } from "./helpers.ts";

// Faults a CI gate meets: a signal at any phase of a run, a component that dies in the middle.
// Whatever happens, the run ends (never hangs), says what happened, and leaves no process, no
// work dir and no half-built binary behind.

const flavor = (process.env.VKC_FLAVOR || "vault") as "vault" | "openbao";
const vaultComm = flavor === "openbao" ? "bao" : "vault";

function runIdOf(procs: ProcInfo[]): string {
  const m = procs.map((p) => /(vkc-\d{14}-[0-9a-f]{6})/.exec(p.cmdline)?.[1]).find(Boolean);
  if (!m) throw new Error(`no run id in ${procs.map((p) => p.cmdline).join("\n")}`);
  return m;
}

/**
 * No process that ran below the script (components, workers, builds) and no temp dir of the run
 * remain. With `tmp` (the run's private TMPDIR), nothing at all is left in it: not the run's work
 * dir, not vitest's module copies (tsx's compile cache is tsx's, not the run's).
 */
function expectNothingLeft(runId: string, below: ProcInfo[], tmp?: string): void {
  expect(
    liveProcesses(
      runId,
      below.map((p) => p.pid),
    ),
  ).toEqual([]);
  expect(readdirSync(tmpdir()).filter((n) => n.startsWith(runId))).toEqual([]);
  if (tmp) expect(readdirSync(tmp).filter((n) => !n.startsWith("tsx-"))).toEqual([]);
}

describe("faults", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "vkc-faults-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  describe("a signal at each phase leaves nothing behind", () => {
    it("provisioning (SIGTERM during a Go build): the go processes and the build dir are gone, no lock remains", async () => {
      // Everything but Vault from the warm cache; Vault is built into an empty cache.
      const bins = await provisionLocal(loadConfig({ ...process.env, VKC_FLAVOR: "vault" }));
      const cache = join(dir, "cache");
      const run = script("conformance.ts", ["--reports", join(dir, "prov"), "suites/smoke"], {
        VKC_FLAVOR: "vault",
        VKC_CACHE_DIR: cache,
        VKC_OFFLINE: "1",
        TEST_ASSET_ETCD: bins.etcd,
        TEST_ASSET_KUBE_APISERVER: bins.kubeApiserver,
        TEST_ASSET_KUBE_CONTROLLER_MANAGER: bins.kubeControllerManager,
        VAULT_BIN: "",
      });
      await waitForOutput(run, /building vault from Go modules/);
      await until("a go process of the build", () => descendants(run.child.pid!).some((p) => p.comm === "go"));
      const below = descendants(run.child.pid!);
      run.child.kill("SIGTERM");
      expect(await run.exited).toBe(143);
      expect(below.filter((p) => liveProcesses(String(p.pid), [p.pid]).length)).toEqual([]);
      expect(readdirSync(join(cache, ".build"))).toEqual([]);
      expect(existsSync(join(cache, "locks")) ? readdirSync(join(cache, "locks")) : []).toEqual([]);
    });

    it("preflight (the policy check), SIGINT: exit 130, no parser process, no vkc-policy-check dir", async () => {
      // The real parser takes ~0.2 s per policy: a `vault` whose `policy fmt` hangs holds the run
      // in the check. Every other binary from the warm cache; a private TMPDIR to look in.
      const bins = await provisionLocal(loadConfig({ ...process.env, VKC_FLAVOR: flavor }));
      const tmp = join(dir, "preflight-tmp");
      await mkdir(tmp);
      const parser = join(dir, "hanging-policy-fmt");
      await writeFile(parser, "#!/bin/sh\nexec sleep 120\n");
      await chmod(parser, 0o755);
      const checkDirs = () => readdirSync(tmp).filter((n) => n.startsWith("vkc-policy-check-"));
      const run = script("conformance.ts", ["--reports", join(dir, "preflight"), "suites/smoke"], {
        VKC_FLAVOR: flavor,
        TMPDIR: tmp,
        TEST_ASSET_ETCD: bins.etcd,
        TEST_ASSET_KUBE_APISERVER: bins.kubeApiserver,
        TEST_ASSET_KUBE_CONTROLLER_MANAGER: bins.kubeControllerManager,
        [flavor === "openbao" ? "BAO_BIN" : "VAULT_BIN"]: parser,
      });
      await until("the policy check running (its temp dir and a parser)", () => {
        if (run.child.exitCode !== null) throw new Error(`exited (${run.child.exitCode}) before the policy check:\n${run.output()}`);
        return checkDirs().length === 1 && descendants(run.child.pid!).some((p) => p.comm === "sleep");
      });
      const below = descendants(run.child.pid!);
      run.child.kill("SIGINT");
      expect(await run.exited, run.output()).toBe(130);
      expect(below.filter((p) => pidAlive(p.pid))).toEqual([]);
      expect(checkDirs()).toEqual([]);
    });

    it.each([
      ["start (etcd up, the apiserver not yet)", "SIGINT", 130],
      ["setup (target ready, suites creating their objects)", "SIGTERM", 143],
      ["mid-suite", "SIGTERM", 143],
    ] as const)("%s, %s: exit %i, no process (components, vitest workers), no work dir", async (phase, signal, code) => {
      // Several files, so that "mid-suite" (2 s after ready) is still mid-suite on a quiet machine.
      const files = ["suites/login-rejected", "suites/issuer", "suites/fixture-cases"];
      const tmp = join(dir, `tmp-${code}-${phase.split(" ")[0]}`);
      await mkdir(tmp);
      const run = script("conformance.ts", ["--reports", join(dir, `phase-${code}-${phase.split(" ")[0]}`), ...files], { TMPDIR: tmp });
      if (phase.startsWith("start")) {
        await until("etcd started", () => descendants(run.child.pid!).some((p) => p.comm === "etcd"));
        expect(run.output()).not.toMatch(/ready in/);
      } else {
        await waitForOutput(run, /ready in/);
        // A file has reported (login-rejected is the quickest); the others are still running.
        if (phase === "mid-suite") await waitForOutput(run, /suites\/[\w-]+\.test\.ts/);
      }
      const below = descendants(run.child.pid!);
      const runId = runIdOf(below);
      run.child.kill(signal);
      expect(await run.exited).toBe(code);
      expectNothingLeft(runId, below, tmp);
    });
  });

  describe("a component that dies mid-run", () => {
    it.each([
      [flavor === "openbao" ? "openbao" : "vault", vaultComm],
      ["kube-apiserver", "kube-apiserver"],
    ])("%s killed (SIGKILL): the run ends with exit 1 naming it, reports say so, nothing remains", async (name, comm) => {
      const reports = join(dir, `dies-${comm}`);
      // suites/renewal waits out the apiserver's 10 s TokenReview cache, so the suites run for more
      // than 10 s whatever the machine's speed: the kill lands while they run, never after (a fixed
      // sleep after "ready" once raced a 1.9 s run to its end).
      const run = script("conformance.ts", ["--reports", reports, "suites/renewal", "suites/login-accepted", "suites/policy"]);
      await waitForOutput(run, /ready in/);
      await waitForOutput(run, / RUN /);
      await new Promise((r) => setTimeout(r, 1000)); // suites are running
      const below = descendants(run.child.pid!);
      const victim = below.find((p) => p.comm === comm);
      expect(victim, below.map((p) => p.comm).join(",")).toBeDefined();
      const runId = runIdOf(below);
      const t0 = Date.now();
      process.kill(victim!.pid, "SIGKILL");
      expect(await run.exited, run.output().slice(-3000)).toBe(1);
      // Ends within the slowest bounded wait of a case, not at the harness timeout.
      expect(Date.now() - t0).toBeLessThan(90_000);
      const line = `error: ${name} (pid ${victim!.pid}) killed by SIGKILL while the suites ran; the cases after it could not run`;
      expect(run.output()).toContain(line);
      const results = JSON.parse(readFileSync(join(reports, "results.json"), "utf8")) as RunResults;
      expect(results.aborted).toContain(`${name} (pid ${victim!.pid}) killed by SIGKILL`);
      expect(readFileSync(join(reports, "summary.md"), "utf8")).toContain("## vault-k8s-conformance: FAIL");
      expect(readFileSync(join(reports, "summary.md"), "utf8")).toContain(`**Run aborted:** ${name} (pid ${victim!.pid})`);
      expectNothingLeft(runId, below);
    });
  });
});
