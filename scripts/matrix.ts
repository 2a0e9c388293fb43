// npm run matrix: personas x Vault issuer modes on the local target -> a compatibility table.
import type { ChildProcess } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { COMMON_FLAGS, runScript } from "../lib/cli.ts";
import { onShutdown } from "../lib/cleanup.ts";
import { UsageError } from "../lib/errors.ts";
import { buildMatrix, cellText, formatMatrixMarkdown, type PersonaCells, type PersonaRun } from "../lib/gate/matrix.ts";
import { listPersonas, loadPersona } from "../lib/gate/persona.ts";
import { formatDuration, log } from "../lib/log.ts";
import { runConformanceChild } from "../lib/run.ts";
import { preflight } from "../lib/lifecycle/start.ts";

/** The suites the matrix runs per persona: issuer handling, logins, and the mode x token cells. */
const SUITES = ["issuer", "login"];

await runScript(
  {
    command: "npm run matrix -- [--personas a,b] [--flavor vault|openbao]",
    summary:
      "For each persona (fixtures/personas/) starts the local target and runs the issuer, login and issuer-matrix\n" +
      "suites; writes matrix.md and matrix.json under --reports. Exit 0 only if every suite passed.",
    flags: [...COMMON_FLAGS, { flag: "--personas", value: "NAMES", help: "comma-separated personas (default: all)" }],
  },
  async (config, parsed) => {
    if (config.target !== "local") throw new UsageError("the matrix runs on the local target (personas are local apiserver setups)");
    if (config.persona) throw new UsageError("use --personas for the matrix, not --persona");
    const names =
      typeof parsed.local["--personas"] === "string"
        ? String(parsed.local["--personas"]).split(",").filter(Boolean)
        : listPersonas(config.fixturesDir);
    const personas = names.map((n) => loadPersona(config.fixturesDir, n)); // bad names: one line, exit 2, before anything starts
    await preflight(config); // provision once, with progress, before the per-persona runs

    let child: ChildProcess | undefined;
    onShutdown(async () => {
      if (!child || child.exitCode !== null) return;
      child.kill("SIGTERM"); // its own teardown stops its target
      await new Promise((r) => child!.once("exit", r));
    });
    const started = Date.now();
    const runs: PersonaRun[] = [];
    for (const p of personas) {
      const dir = join(config.reportsDir, "matrix", p.name);
      await rm(dir, { recursive: true, force: true });
      const t0 = Date.now();
      const r = await runConformanceChild({
        reportsDir: dir,
        filters: SUITES,
        env: { VKC_PERSONA: p.name, VKC_TARGET: "local" },
        onChild: (c) => (child = c),
      });
      const run: PersonaRun = { persona: p.name, description: p.description, totals: null, durationMs: Date.now() - t0, matrix: null };
      if (r.results) {
        run.totals = r.results.totals;
        const failed = r.results.cases.filter((c) => c.status === "failed").map((c) => c.id);
        if (failed.length) run.failedCases = failed;
        try {
          if (r.results.runId)
            run.matrix = JSON.parse(await readFile(join(dir, "artifacts", r.results.runId, "issuer-matrix.json"), "utf8")) as PersonaCells;
        } catch (err) {
          run.problem = `${(err as Error).message.split("\n")[0]} (see ${r.logFile})`;
        }
      } else run.problem = `exit ${r.code}, no results (see ${r.logFile})`;
      if (!run.matrix && !run.problem) run.problem = `the issuer-matrix suite left no cells (see ${join(dir, "output.log")})`;
      runs.push(run);
      const tot = run.totals ? `${run.totals.passed} passed, ${run.totals.failed} failed` : run.problem;
      log.info("matrix", `${p.name}: ${tot} in ${formatDuration(run.durationMs)}`);
      for (const id of run.failedCases ?? []) log.warn("matrix", `  failed: ${id}`);
      for (const m of ["off", "discovered", "legacy", "pre-upgrade"] as const)
        log.info("matrix", `  ${m.padEnd(11)} ${cellText(run.matrix, m)}`);
    }
    const report = buildMatrix(config.flavor, runs);
    await writeFile(join(config.reportsDir, "matrix.json"), JSON.stringify(report, null, 2) + "\n");
    const md = formatMatrixMarkdown(report);
    await writeFile(join(config.reportsDir, "matrix.md"), md);
    process.stdout.write(
      `\n${md}\nmatrix of ${runs.length} personas in ${formatDuration(Date.now() - started)}: ${join(config.reportsDir, "matrix.md")}\n`,
    );
    return report.consistent ? 0 : 1;
  },
);
