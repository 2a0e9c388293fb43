import type { ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onShutdown } from "../cleanup.ts";
import type { Config } from "../config.ts";
import { UsageError } from "../errors.ts";
import { formatDuration, log } from "../log.ts";
import { runConformanceChild } from "../run.ts";
import { preflight, startTarget } from "../lifecycle/start.ts";
import {
  classifyMutant,
  formatMutation,
  loadMutants,
  mutantLine,
  mutatedCase,
  mutatedFixtures,
  selectMutants,
  summarize,
  type MutantResult,
} from "./mutation.ts";

/**
 * `npm run mutation`: the fixture cases against one real local target, once as they are (the
 * baseline) and once per mutant, each run a conformance child attached to that target. Writes
 * mutation.json and mutation.md under the reports dir; exit code 0 only if every mutant is killed.
 */
export async function runMutation(config: Config, only: string[] | undefined): Promise<number> {
  if (config.target !== "local")
    throw new UsageError("mutation runs on the local target: mutants rewrite Vault's default policy and delete reviewers");
  const mutants = selectMutants(loadMutants(config.fixturesDir), only);
  for (const m of mutants) mutatedCase(config.fixturesDir, m); // a mutant that cannot apply: one line, before anything starts
  await preflight(config);
  const started = Date.now();
  const target = await startTarget(config);
  const work = await mkdtemp(join(tmpdir(), "vkc-mutation-"));
  let child: ChildProcess | undefined;
  onShutdown(async () => {
    if (child && child.exitCode === null) {
      child.kill("SIGTERM");
      await new Promise((r) => child!.once("exit", r));
    }
    await rm(work, { recursive: true, force: true });
  });
  try {
    const infoFile = join(work, "target.json");
    await writeFile(infoFile, JSON.stringify(target.info), { mode: 0o600 });
    const out = join(config.reportsDir, "mutation");
    await rm(out, { recursive: true, force: true });
    // One run of the fixture-cases suite on the shared target, with the given fixtures.
    const runCases = async (name: string, fixtures: string) => {
      const r = await runConformanceChild({
        config,
        reportsDir: join(out, name),
        filters: ["fixture-cases"],
        env: { VKC_TARGET_INFO: infoFile, VKC_FIXTURES: fixtures, VKC_TARGET: "local" },
        onChild: (c) => (child = c),
      });
      return { code: r.code, results: r.results, log: r.logFile };
    };

    const base = await runCases("baseline", config.fixturesDir);
    if (!base.results || base.results.totals.failed > 0 || base.results.totals.passed === 0)
      throw new UsageError(`the unmutated cases do not pass, so no mutant can be judged (see ${base.log})`);
    log.info("mutation", `baseline: ${base.results.totals.passed} cases pass`);

    const results: MutantResult[] = [];
    for (const m of mutants) {
      const fixtures = join(work, m.file.replace(/\.ya?ml$/, ""));
      await mutatedFixtures(config.fixturesDir, m, fixtures);
      const res = classifyMutant(m, await runCases(m.file.replace(/\.ya?ml$/, ""), fixtures));
      results.push(res);
      log.info("mutation", mutantLine(res));
    }
    const report = summarize({
      target: target.info.target,
      flavor: target.info.flavor,
      baseline: { passed: base.results.totals.passed, failed: base.results.totals.failed },
      mutants: results,
    });
    await mkdir(config.reportsDir, { recursive: true });
    await writeFile(join(config.reportsDir, "mutation.json"), JSON.stringify(report, null, 2) + "\n");
    const md = formatMutation(report);
    await writeFile(join(config.reportsDir, "mutation.md"), md);
    process.stdout.write(`\n${md}\n${report.killed}/${report.total} mutants killed in ${formatDuration(Date.now() - started)}\n`);
    return report.killed === report.total ? 0 : 1;
  } finally {
    await target.stop();
    await rm(work, { recursive: true, force: true });
  }
}
