import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import {
  formatBench,
  loginFailures,
  measure,
  overhead,
  parseTrace,
  stats,
  summarizeOverhead,
  type BenchResult,
  type Overhead,
} from "../bench.ts";
import { loadConfig, type Config } from "../config.ts";
import { UsageError } from "../errors.ts";
import { preflight } from "../lifecycle/start.ts";
import { log } from "../log.ts";
import { redact } from "../redact.ts";
import { runConformanceChild } from "../run.ts";
import { provisionLocal } from "../providers/provision.ts";
import { startLocalTarget } from "../providers/local.ts";
import { traceClock } from "../trace.ts";
import { loginBench } from "./login.ts";
import { formatSideBySide, kindBench, kindRows, type CaseTotals, type KindBench, type KindVaultMode } from "./kind.ts";

export interface BenchOptions {
  /** Target start/stop cycles. */
  runs: number;
  /** Full `npm run conformance` runs, traced. */
  suiteRuns: number;
  /** Full `npm run matrix` runs. */
  matrixRuns: number;
  /** Logins per service account per step; 0 skips the login bench. */
  loginRounds: number;
  /** Service accounts logging in concurrently, per step. */
  loginNs: number[];
  /** The kind target beside the local one (--with-kind): conformance runs per Vault mode; absent: local only. */
  kind?: { runs: number; modes: KindVaultMode[] };
}

/** What bench.json holds: the local figures, plus the kind target's when asked for. */
export type BenchWithKind = BenchResult & { conformanceCases?: CaseTotals; kind?: KindBench };

/**
 * `npm run bench`: warm time-to-ready of the local target, login throughput and latency against
 * it, and whole script runs (time-to-verdict, harness overhead from their traces); with `kind`,
 * whole kind conformance runs beside them. Writes `<reports>/bench.json`, prints the figures;
 * exit code 1 if a login or a script run failed.
 */
export async function runBench(config: Config, o: BenchOptions): Promise<number> {
  if (config.target !== "local")
    throw new UsageError("npm run bench measures the local target (--target local); add the kind target beside it with --with-kind");
  // The kind target's tools first: no engine or no kind CLI is one line now, not after the local figures.
  const kindConfigs = o.kind ? await kindTargetConfigs(config, o.kind.modes) : undefined;
  const binaries = await provisionLocal(config); // warm: provisioning is not part of the figure
  const result: BenchWithKind = {
    machine: `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`,
    flavor: config.flavor,
  };
  if (o.runs > 0) {
    const ready: number[] = [];
    const teardown: number[] = [];
    await measure(o.runs, async () => {
      const t = await startLocalTarget({ config, binaries });
      ready.push(t.startupMs);
      const t0 = performance.now();
      await t.stop();
      teardown.push(performance.now() - t0);
    });
    result.targetReady = stats(ready);
    result.targetTeardown = stats(teardown);
  }
  if (o.loginRounds > 0) result.login = await loginBench(config, binaries, o.loginNs, o.loginRounds);

  let failedRuns = 0;
  if (o.suiteRuns > 0) {
    const { walls, runs, failed, cases } = await conformanceRuns(config, o.suiteRuns);
    failedRuns += failed;
    result.conformanceTimeToVerdict = stats(walls);
    result.conformanceOverhead = summarizeOverhead(runs);
    if (cases) result.conformanceCases = cases;
  }
  if (o.matrixRuns > 0) {
    const walls: number[] = [];
    for (let i = 0; i < o.matrixRuns; i++) {
      const { code, window } = await scriptRun(config, "matrix.ts");
      walls.push(window[1] - window[0]);
      if (code !== 0) {
        failedRuns++;
        log.warn("bench", `a matrix.ts run exited ${code}`);
      }
    }
    result.matrixTimeToVerdict = stats(walls);
  }
  if (o.kind && kindConfigs) {
    const kind = await kindBench(o.kind, async (mode, i) => {
      log.info("bench", `kind conformance run ${i + 1}/${o.kind!.runs}, Vault ${mode}`);
      const r = await scriptRun(kindConfigs[mode]!, "conformance.ts", {}, `bench-run-kind-${mode}`);
      if (r.code !== 0) log.warn("bench", `a kind (${mode}) conformance.ts run exited ${r.code} (log: ${r.logFile})`);
      return {
        code: r.code,
        wallMs: r.window[1] - r.window[0],
        output: await readFile(r.logFile, "utf8"),
        logFile: r.logFile,
        ...totalsOf(r),
      };
    });
    result.kind = kind.bench;
    failedRuns += kind.runs.filter((r) => r.code !== 0).length;
  }
  if (failedRuns) result.failedScriptRuns = failedRuns;

  await mkdir(config.reportsDir, { recursive: true });
  // Nothing secret is in the result; redact anyway, as everything the harness writes.
  await writeFile(join(config.reportsDir, "bench.json"), redact(JSON.stringify(result, null, 2)) + "\n");
  process.stdout.write(redact(formatBench(result)) + "\n");
  if (result.kind) {
    const local = {
      target: "local, Vault as a process",
      ...(result.targetReady ? { ready: result.targetReady } : {}),
      ...(result.conformanceTimeToVerdict ? { timeToVerdict: result.conformanceTimeToVerdict } : {}),
      ...(result.conformanceCases ? { totals: result.conformanceCases } : {}),
    };
    process.stdout.write(`side by side, flavor ${result.flavor}:\n` + redact(formatSideBySide([local, ...kindRows(result.kind)])) + "\n");
  }
  const failedLogins = loginFailures(result.login);
  if (failedLogins > 0) {
    process.stderr.write(`error: ${failedLogins} login(s) failed during the login bench (see reports/bench.json)\n`);
    return 1;
  }
  return failedRuns > 0 ? 1 : 0;
}

/**
 * A whole script run in a child process (the shared runner of lib/run.ts, output in
 * `<reports>/bench-run/output.log`), timed from spawn to exit as a user waits for it.
 */
async function scriptRun(config: Config, script: string, env: Record<string, string> = {}, reports = "bench-run") {
  let exited = 0;
  const spawned = traceClock(); // before the spawn, as before the user's command
  const r = await runConformanceChild({
    config,
    script,
    reportsDir: join(config.reportsDir, reports),
    filters: [],
    env,
    onChild: (c) => c.once("exit", () => (exited = traceClock())),
  });
  return { code: r.code, window: [spawned, exited || traceClock()] as [number, number], logFile: r.logFile, results: r.results };
}

/** A run's case counts from its results.json, when it wrote one. */
function totalsOf(r: Awaited<ReturnType<typeof scriptRun>>): { totals?: CaseTotals } {
  const t = r.results?.totals;
  return t ? { totals: { passed: t.passed, failed: t.failed, skipped: t.skipped } } : {};
}

/**
 * The bench's own settings (flavor, fixtures, reports, --node-image, --vault-image) on the kind
 * target, one config per Vault mode; the kind provider's preflight (engine, kind CLI, flags) runs
 * once, so a machine without them fails here with the provider's one line.
 */
async function kindTargetConfigs(config: Config, modes: KindVaultMode[]): Promise<Partial<Record<KindVaultMode, Config>>> {
  const out: Partial<Record<KindVaultMode, Config>> = {};
  for (const mode of modes) out[mode] = loadConfig({ ...config.env, VKC_TARGET: "kind", VKC_VAULT: mode, VKC_PERSONA: undefined });
  await preflight(out[modes[0]!]!);
  return out;
}

/** `runs` traced conformance runs (VKC_TRACE_FILE, lib/trace.ts): overhead = wall - union of waits. */
async function conformanceRuns(
  config: Config,
  count: number,
): Promise<{ walls: number[]; runs: Overhead[]; failed: number; cases?: CaseTotals }> {
  const traceDir = await mkdtemp(join(tmpdir(), "vkc-bench-trace-"));
  try {
    await chmod(traceDir, 0o700);
    const walls: number[] = [];
    const runs: Overhead[] = [];
    let failed = 0;
    let cases: CaseTotals | undefined;
    for (let i = 0; i < count; i++) {
      const traceFile = join(traceDir, `run-${i}.jsonl`);
      await writeFile(traceFile, "", { mode: 0o600 });
      await chmod(traceFile, 0o600);
      const run = await scriptRun(config, "conformance.ts", { VKC_TRACE_FILE: traceFile });
      const { code, window } = run;
      cases = totalsOf(run).totals ?? cases;
      if (code !== 0) {
        failed++;
        log.warn("bench", `a conformance.ts run exited ${code}`);
      }
      walls.push(window[1] - window[0]);
      const { records, malformed } = parseTrace(await readFile(traceFile, "utf8"));
      if (malformed) log.warn("bench", `trace of run ${i + 1}: ${malformed} malformed lines ignored`);
      if (records.length === 0) throw new UsageError(`trace of conformance run ${i + 1} is empty: the trace hooks did not fire`);
      runs.push(overhead(window, records));
    }
    return { walls, runs, failed, ...(cases ? { cases } : {}) };
  } finally {
    await rm(traceDir, { recursive: true, force: true });
  }
}
