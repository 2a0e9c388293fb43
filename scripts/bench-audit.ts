// npm run bench:audit: how long npm run audit takes on a cluster of 300 ServiceAccounts in 30
// namespaces with 20 roles of mixed shapes, built on a local target. Medians, not timed tests.
import { spawn } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import type { AuditReport } from "../lib/access/audit.ts";
import { median } from "../lib/bench.ts";
import { COMMON_FLAGS, runScript } from "../lib/cli.ts";
import { childEnv, PACKAGE_ROOT, type Config } from "../lib/config.ts";
import { scriptArgv } from "../lib/run.ts";
import { HarnessError, UsageError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { redact } from "../lib/redact.ts";
import { startTarget } from "../lib/lifecycle/start.ts";
import { connect } from "../lib/auth-setup/steps.ts";
import { AUDIT_BENCH_MOUNT, buildAuditBench } from "../lib/access/audit-bench.ts";

const MOUNT = AUDIT_BENCH_MOUNT;

function runAuditOnce(
  config: Config,
  env: Record<string, string>,
  args: string[],
): Promise<{ ms: number; code: number | null; output: string }> {
  const t0 = Date.now();
  const child = spawn(process.execPath, [...scriptArgv("audit.ts"), ...args], {
    cwd: PACKAGE_ROOT,
    env: childEnv(config, env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  return new Promise((resolve) => child.on("exit", (code) => resolve({ ms: Date.now() - t0, code, output })));
}

await runScript(
  {
    command: "npm run bench:audit -- [--runs N] [--namespaces N] [--per-namespace N]",
    summary: "Times npm run audit (static and --probe) against a local target holding generated ServiceAccounts and 20 roles.",
    flags: [
      ...COMMON_FLAGS,
      { flag: "--runs", value: "N", help: "audits of each kind (default 3)" },
      { flag: "--namespaces", value: "N", help: "generated namespaces (default 30)" },
      { flag: "--per-namespace", value: "N", help: "ServiceAccounts per generated namespace, `default` included (default 10)" },
    ],
    exits: { ok: "measured", failed: false, infra: "an audit it timed did not exit 0" },
  },
  async (config, parsed) => {
    const num = (flag: string, dflt: number) => {
      const v = String(parsed.local[flag] ?? dflt);
      if (!/^[1-9]\d*$/.test(v)) throw new UsageError(`${flag} needs a positive integer (got "${v}")`);
      return Number(v);
    };
    const runs = num("--runs", 3);
    const namespaces = num("--namespaces", 30);
    const perNamespace = num("--per-namespace", 10);
    if (config.target !== "local") throw new UsageError("bench:audit builds its cluster on the local target");
    await using target = await startTarget(config);
    const c = await connect(target.info);
    const work = await mkdtemp(join(tmpdir(), "vkc-bench-audit-"));
    try {
      const t = Date.now();
      const rs = await buildAuditBench(c, target.info, { namespaces, perNamespace });
      log.info(
        "bench:audit",
        `cluster built in ${((Date.now() - t) / 1000).toFixed(1)}s: ${namespaces} namespaces, ${Object.keys(rs).length} roles`,
      );

      const env = {
        KUBECONFIG: target.info.kube.kubeconfigPath,
        VAULT_ADDR: target.info.vault.address,
        VAULT_TOKEN: (await readFile(target.info.vault.tokenFile, "utf8")).trim(),
        VKC_TARGET: "",
      };
      // One warm-up audit, not counted: tsx's transform cache, and the cluster done with its own
      // work after the burst of creations (the root CA ConfigMap per namespace and the like).
      const warm = await runAuditOnce(config, env, ["--out", join(work, "warm-up.json")]);
      if (warm.code !== 0) throw new HarnessError(`audit (warm-up) exited ${warm.code}:\n${redact(warm.output).slice(-3000)}`);
      const rows: string[] = [];
      for (const mode of ["static", "probe"] as const) {
        const times: number[] = [];
        let last: AuditReport | undefined;
        for (let i = 0; i < runs; i++) {
          const out = join(work, `${mode}-${i}.json`);
          const r = await runAuditOnce(config, env, [...(mode === "probe" ? ["--probe"] : []), "--out", out]);
          if (r.code !== 0) throw new HarnessError(`audit (${mode}) exited ${r.code}:\n${redact(r.output).slice(-3000)}`);
          times.push(r.ms);
          last = JSON.parse(await readFile(out, "utf8")) as AuditReport;
          // The last report of each kind stays, for a look at what was measured.
          if (i === runs - 1) {
            await mkdir(config.reportsDir, { recursive: true });
            await copyFile(out, join(config.reportsDir, `bench-audit-${mode}.json`));
          }
        }
        const accepted = Object.values(last!.mounts[MOUNT]!.roles).reduce(
          (n, r) => n + (r.probe ? r.probe.accepted.length : r.accepted.length),
          0,
        );
        rows.push(
          `| ${mode === "probe" ? "--probe" : "static"} | ${last!.kube.serviceAccounts} | ${Object.keys(last!.kube.namespaces).length} | ${Object.keys(last!.mounts[MOUNT]!.roles).length} | ${
            last!.probe?.logins ?? 0
          } | ${accepted} | ${(median(times) / 1000).toFixed(1)} s (${times.map((x) => (x / 1000).toFixed(1)).join(", ")}) | ${[
            "permissions",
            "read",
            "static",
            "probe",
          ]
            .filter((k) => last!.timings[k] !== undefined)
            .map((k) => `${k} ${(last!.timings[k]! / 1000).toFixed(1)} s`)
            .join(", ")}; Node start and module load ${((times.at(-1)! - last!.timings.total!) / 1000).toFixed(1)} s |`,
        );
        log.info("bench:audit", `${mode}: median ${(median(times) / 1000).toFixed(1)}s over ${runs} run(s)`);
      }
      process.stdout.write(
        [
          `bench:audit on ${cpus().length} cores, ${target.info.flavor} ${target.info.vault.version}, Kubernetes ${target.info.kube.version}:`,
          "| audit | ServiceAccounts | namespaces | roles | logins | accepted | wall time, median (runs) | phases of the last run |",
          "|---|---|---|---|---|---|---|---|",
          ...rows,
          "",
        ].join("\n"),
      );
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  },
);
