// npm run mutation: apply each broken setup of fixtures/mutants/ to a real target; every one must be caught.
import type { ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { COMMON_FLAGS, runScript } from "../lib/cli.ts";
import { onShutdown } from "../lib/cleanup.ts";
import { UsageError } from "../lib/errors.ts";
import { formatMutation, loadMutants, mutatedCase, mutatedFixtures, summarize, type MutantResult } from "../lib/gate/mutation.ts";
import { formatDuration, log } from "../lib/log.ts";
import { runConformanceChild } from "../lib/run.ts";
import { preflight, startTarget } from "../lib/lifecycle/start.ts";

await runScript(
  {
    command: "npm run mutation -- [--only a,b] [options]",
    summary:
      "Runs the fixture cases against a real local target once as they are (the baseline) and once per mutant\n" +
      "(fixtures/mutants/*.yaml). Writes mutation.json and mutation.md under --reports. Exit 0 only if every mutant is killed.",
    flags: [...COMMON_FLAGS, { flag: "--only", value: "FILES", help: "comma-separated mutant files (default: all)" }],
  },
  async (config, parsed) => {
    if (config.target !== "local")
      throw new UsageError("mutation runs on the local target: mutants rewrite Vault's default policy and delete reviewers");
    let mutants = loadMutants(config.fixturesDir);
    if (typeof parsed.local["--only"] === "string") {
      const only = String(parsed.local["--only"]).split(",").filter(Boolean);
      const unknown = only.filter((o) => !mutants.some((m) => m.file === o || m.file === `${o}.yaml`));
      if (unknown.length) throw new UsageError(`no mutant ${unknown.join(", ")} (have: ${mutants.map((m) => m.file).join(", ")})`);
      mutants = mutants.filter((m) => only.includes(m.file) || only.includes(m.file.replace(/\.ya?ml$/, "")));
    }
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
        const r = await runCases(m.file.replace(/\.ya?ml$/, ""), fixtures);
        const res: MutantResult = r.results
          ? {
              file: m.file,
              name: m.name,
              killedBy: r.results.cases.filter((c) => c.status === "failed").map((c) => c.name),
              passed: r.results.totals.passed,
              killed: r.results.totals.failed > 0,
            }
          : { file: m.file, name: m.name, killedBy: [], passed: 0, killed: false, error: `no results (exit ${r.code}; see ${r.log})` };
        results.push(res);
        log.info(
          "mutation",
          `${res.killed ? "killed  " : res.error ? "ERROR   " : "SURVIVED"} ${m.name}${res.killedBy.length ? ` by ${res.killedBy.length} case(s)` : ""}`,
        );
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
  },
);
