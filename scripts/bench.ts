// npm run bench: how fast is the harness on this machine? Medians over several runs, not timed tests.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import {
  measure,
  median,
  overhead,
  parseCounts,
  parseTrace,
  runLoginLoad,
  stats,
  traceClock,
  type LoadResult,
  type Overhead,
  type Stats,
} from "../lib/bench.ts";
import { COMMON_FLAGS, runScript } from "../lib/cli.ts";
import { PACKAGE_ROOT, type Config } from "../lib/config.ts";
import { UsageError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { redact } from "../lib/redact.ts";
import { provisionLocal } from "../lib/lifecycle/start.ts";
import {
  applyReviewer,
  authConfigFor,
  connect,
  enableKubernetesAuth,
  login,
  reviewerJwt,
  writeAuthConfig,
  writeRole,
} from "../lib/auth-setup/steps.ts";
import { startLocalTarget, type LocalBinaries } from "../lib/providers/local.ts";
import { describeResponse } from "../lib/vault/client.ts";

await runScript(
  {
    command: "npm run bench -- [--runs N] [--suite-runs N] [--login-ns 1,10,50] [--login-rounds N]",
    summary:
      "Measures warm time-to-ready of the local target, login throughput and latency against it,\n" +
      "and the full default conformance run's time-to-verdict and harness overhead.",
    flags: [
      ...COMMON_FLAGS,
      { flag: "--runs", value: "N", help: "target start/stop cycles (default 5)" },
      { flag: "--login-ns", value: "N,N,...", help: "service accounts logging in concurrently, per step (default 1,10,50)" },
      { flag: "--login-rounds", value: "N", help: "logins per service account per step (default 100; 0 to skip the login bench)" },
      { flag: "--suite-runs", value: "N", help: "full npm run conformance runs, traced (default 3; 0 to skip)" },
      { flag: "--matrix-runs", value: "N", help: "full npm run matrix runs, all personas (default 0)" },
    ],
  },
  async (config, parsed) => {
    const count = (flag: string, dflt: number) => {
      const v = String(parsed.local[flag] ?? dflt);
      if (!/^\d+$/.test(v)) throw new UsageError(`${flag} needs a non-negative integer (got "${v}")`);
      return Number(v);
    };
    const runs = count("--runs", 5);
    const suiteRuns = count("--suite-runs", 3);
    const matrixRuns = count("--matrix-runs", 0);
    const loginRounds = count("--login-rounds", 100);
    let loginNs: number[];
    try {
      loginNs = parseCounts(String(parsed.local["--login-ns"] ?? "1,10,50"), "--login-ns");
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (config.target !== "local") throw new UsageError("npm run bench measures the local target only (--target local)");

    const binaries = await provisionLocal(config); // warm: provisioning is not part of the figure
    const ready: number[] = [];
    const teardown: number[] = [];
    if (runs > 0) {
      await measure(runs, async () => {
        const t = await startLocalTarget({ config, binaries });
        ready.push(t.startupMs);
        const t0 = performance.now();
        await t.stop();
        teardown.push(performance.now() - t0);
      });
    }
    const result: Record<string, unknown> = {
      machine: `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`,
      flavor: config.flavor,
      ...(runs > 0 ? { targetReady: stats(ready), targetTeardown: stats(teardown) } : {}),
    };

    let loginFailures = 0;
    if (loginRounds > 0) {
      const lb = await loginBench(config, binaries, loginNs, loginRounds);
      result.login = lb;
      loginFailures = [...lb.reused, ...lb.fresh].reduce((n, r) => n + r.failures, 0);
    }

    // A whole script run in a child process, spawn to exit, as a user waits for it.
    const runChild = (name: string, env: NodeJS.ProcessEnv = process.env) =>
      new Promise<number | null>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          ["--import", "tsx", join(PACKAGE_ROOT, "scripts", name), "--reports", join(config.reportsDir, "bench-run")],
          { cwd: PACKAGE_ROOT, stdio: "ignore", env },
        );
        child.on("error", reject);
        child.on("exit", resolve);
      });
    let failedRuns = 0;
    if (suiteRuns > 0) {
      // Each run traced (VKC_TRACE_FILE, see lib/bench.ts): overhead = wall - union of waits.
      const traceDir = await mkdtemp(join(tmpdir(), "vkc-bench-trace-"));
      try {
        await chmod(traceDir, 0o700);
        const walls: number[] = [];
        const runsOverhead: Overhead[] = [];
        for (let i = 0; i < suiteRuns; i++) {
          const traceFile = join(traceDir, `run-${i}.jsonl`);
          await writeFile(traceFile, "", { mode: 0o600 });
          await chmod(traceFile, 0o600);
          const t0 = traceClock();
          const code = await runChild("conformance.ts", { ...process.env, VKC_TRACE_FILE: traceFile });
          const t1 = traceClock();
          if (code !== 0) {
            failedRuns++;
            log.warn("bench", `a conformance.ts run exited ${code}`);
          }
          walls.push(t1 - t0);
          const { records, malformed } = parseTrace(await readFile(traceFile, "utf8"));
          if (malformed) log.warn("bench", `trace of run ${i + 1}: ${malformed} malformed lines ignored`);
          if (records.length === 0) throw new UsageError(`trace of conformance run ${i + 1} is empty: the trace hooks did not fire`);
          runsOverhead.push(overhead([t0, t1], records));
        }
        result.conformanceTimeToVerdict = stats(walls);
        result.conformanceOverhead = {
          medianOverheadMs: Math.round(median(runsOverhead.map((o) => o.overheadMs))),
          medianOverheadPct: Math.round(median(runsOverhead.map((o) => o.overheadPct)) * 10) / 10,
          runs: runsOverhead,
        };
      } finally {
        await rm(traceDir, { recursive: true, force: true });
      }
    }
    if (matrixRuns > 0) {
      result.matrixTimeToVerdict = await measure(matrixRuns, async () => {
        const code = await runChild("matrix.ts");
        if (code !== 0) {
          failedRuns++;
          log.warn("bench", `a matrix.ts run exited ${code}`);
        }
      });
    }
    if (failedRuns) result.failedScriptRuns = failedRuns;

    await mkdir(config.reportsDir, { recursive: true });
    // Nothing secret is in the result; redact anyway, as everything the harness writes.
    await writeFile(join(config.reportsDir, "bench.json"), redact(JSON.stringify(result, null, 2)) + "\n");
    const s = (ms: number) => (ms / 1000).toFixed(2);
    const fmt = (x: Stats) => `median ${s(x.medianMs)}s (min ${s(x.minMs)}s, max ${s(x.maxMs)}s, n=${x.runs})`;
    const out: string[] = [`machine: ${result.machine}; flavor ${config.flavor}`];
    if (result.targetReady) {
      out.push(`local target time-to-ready:      ${fmt(result.targetReady as Stats)}`);
      out.push(`local target teardown:           ${fmt(result.targetTeardown as Stats)}`);
    }
    if (result.login) {
      const lb = result.login as LoginBench;
      const row = (r: LoadResult) =>
        `  N=${String(r.concurrency).padEnd(3)} ${r.loginsPerSecond.toFixed(1).padStart(7)} logins/s  p50 ${r.p50Ms.toFixed(1).padStart(6)} ms  p99 ${r.p99Ms
          .toFixed(1)
          .padStart(6)} ms  ${r.logins} logins${r.failures ? `  ${r.failures} FAILED: ${JSON.stringify(r.failureReasons)}` : ""}`;
      out.push(`logins, each service account's JWT reused (${lb.rounds} rounds; N in flight):`, ...lb.reused.map(row));
      out.push(`logins, a fresh JWT for every login (TokenReview never cached):`, ...lb.fresh.map(row));
    }
    if (result.conformanceTimeToVerdict) {
      const o = result.conformanceOverhead as { medianOverheadMs: number; medianOverheadPct: number; runs: Overhead[] };
      out.push(`npm run conformance (warm, full): ${fmt(result.conformanceTimeToVerdict as Stats)}`);
      out.push(
        `  harness overhead (wall - time waiting on Vault/apiserver/target start+stop): median ${s(o.medianOverheadMs)}s, ${o.medianOverheadPct}%`,
      );
      for (const [i, r] of o.runs.entries()) {
        out.push(
          `    run ${i + 1}: wall ${s(r.wallMs)}s, waiting ${s(r.waitingMs)}s, overhead ${s(r.overheadMs)}s (${r.overheadPct}%): ` +
            `before first wait ${s(r.leadMs)}s, between waits ${s(r.midMs)}s, after last ${s(r.tailMs)}s`,
        );
      }
    }
    if (result.matrixTimeToVerdict) out.push(`npm run matrix (warm, all personas): ${fmt(result.matrixTimeToVerdict as Stats)}`);
    if (failedRuns) out.push(`${failedRuns} script run(s) exited non-zero: figures include them (see log above)`);
    process.stdout.write(redact(out.join("\n")) + "\n");
    if (loginFailures > 0) {
      process.stderr.write(`error: ${loginFailures} login(s) failed during the login bench (see reports/bench.json)\n`);
      return 1;
    }
    return failedRuns > 0 ? 1 : 0;
  },
);

interface LoginBench {
  rounds: number;
  /** One JWT per service account, used for all its logins: the apiserver's 10 s token cache answers most TokenReviews. */
  reused: LoadResult[];
  /** A fresh TokenRequest JWT for every login, minted beforehand: every TokenReview verifies a new token. */
  fresh: LoadResult[];
}

/**
 * Login throughput and latency on one local target set up like the suites do: a reviewer bound
 * to system:auth-delegator, a kubernetes auth mount with host, CA and reviewer JWT, and a role
 * bound to max(N) service accounts. Per N: N lanes, each `rounds` sequential logins of its own
 * service account, so N logins are in flight at a time. A warm-up round (one login per service
 * account) comes first and is not counted.
 */
async function loginBench(config: Config, binaries: LocalBinaries, ns: number[], rounds: number): Promise<LoginBench> {
  const target = await startLocalTarget({ config, binaries });
  try {
    const { info, kube, vault } = await connect(target.info);
    const tag = randomBytes(3).toString("hex");
    const revNs = `bench-rev-${tag}`;
    await kube.createNamespace(revNs, info.runId);
    const reviewer = await applyReviewer(kube, { fixturesDir: config.fixturesDir, namespace: revNs, suffix: tag, runId: info.runId });
    const mount = `bench-${tag}`;
    await enableKubernetesAuth(vault, mount);
    await writeAuthConfig(vault, mount, authConfigFor(info, await reviewerJwt(kube, reviewer)));

    const appNs = `bench-app-${tag}`;
    await kube.createNamespace(appNs, info.runId);
    const names = Array.from({ length: Math.max(...ns) }, (_, i) => `app-${i}`);
    await inBatches(names, 10, (n) => kube.createServiceAccount(appNs, n));
    await writeRole(vault, mount, "bench", {
      bound_service_account_names: names,
      bound_service_account_namespaces: [appNs],
      token_ttl: "10m",
    });
    const mint = (n: string) => kube.requestToken(appNs, n, { expirationSeconds: 3600 });

    const attempt = async (jwt: string) => {
      const res = await login(vault, mount, "bench", jwt);
      const ok = res.status === 200 && typeof res.body?.auth?.client_token === "string" && res.body.auth.client_token !== "";
      return ok ? { ok } : { ok, error: describeResponse(res) };
    };
    const jwts = await inBatches(names, 10, mint);
    log.info("bench", `login bench: ${names.length} service accounts on mount ${mount}; warm-up round`);
    const warm = await runLoginLoad(jwts, 1, attempt);
    if (warm.failures) throw new UsageError(`warm-up logins failed: ${JSON.stringify(warm.failureReasons)}`);

    const reused: LoadResult[] = [];
    const fresh: LoadResult[] = [];
    for (const n of ns) {
      reused.push(await runLoginLoad(jwts.slice(0, n), rounds, attempt));
      // Fresh: every lane gets `rounds` distinct JWTs of its service account, minted before the clock starts.
      const lanes = await inBatches(names.slice(0, n), 10, async (name) => {
        const queue: string[] = [];
        for (let i = 0; i < rounds; i++) queue.push(await mint(name));
        return queue;
      });
      fresh.push(await runLoginLoad(lanes, rounds, (queue) => attempt(queue.shift()!)));
      log.info("bench", `login bench N=${n}: reused ${reused.at(-1)!.loginsPerSecond}/s, fresh ${fresh.at(-1)!.loginsPerSecond}/s`);
    }
    return { rounds, reused, fresh };
  } finally {
    await target.stop();
  }
}

/** Maps `items` through `fn`, at most `size` at a time, keeping the order. */
async function inBatches<T, R>(items: T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}
