import type { ChildProcess } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { onShutdown } from "../cleanup.ts";
import type { Config } from "../config.ts";
import { UsageError } from "../errors.ts";
import { formatDuration, log } from "../log.ts";
import { runConformanceChild } from "../run.ts";
import { preflight } from "../lifecycle/start.ts";
import { buildMatrix, cellText, formatMatrixMarkdown, issuerMatrixPath, type PersonaCells, type PersonaRun } from "./matrix.ts";
import { listPersonas, loadPersona, type Persona } from "./persona.ts";
import { ISSUER_MODES } from "./predict.ts";

/** The suites the matrix runs per persona: issuer handling, logins, and the mode x token cells. */
export const MATRIX_SUITES = ["issuer", "login"];

/**
 * `npm run matrix`: for each persona (all of fixtures/personas/ unless `names`), a conformance
 * child on its own local target runs MATRIX_SUITES; the issuer-matrix suite's cells become one
 * row. Writes matrix.json and matrix.md under the reports dir; exit code 0 only if consistent.
 */
export async function runMatrix(config: Config, names: string[] | undefined): Promise<number> {
  if (config.target !== "local") throw new UsageError("the matrix runs on the local target (personas are local apiserver setups)");
  if (config.persona) throw new UsageError("use --personas for the matrix, not --persona");
  const personas = (names ?? listPersonas(config.fixturesDir)).map((n) => loadPersona(config.fixturesDir, n)); // bad names: one line, exit 2, before anything starts
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
    const run = await personaRun(config, p, (c) => (child = c));
    runs.push(run);
    const tot = run.totals ? `${run.totals.passed} passed, ${run.totals.failed} failed` : run.problem;
    log.info("matrix", `${p.name}: ${tot} in ${formatDuration(run.durationMs)}`);
    for (const id of run.failedCases ?? []) log.warn("matrix", `  failed: ${id}`);
    for (const m of ISSUER_MODES) log.info("matrix", `  ${m.padEnd(11)} ${cellText(run.matrix, m)}`);
  }
  const report = buildMatrix(config.flavor, runs);
  await writeFile(join(config.reportsDir, "matrix.json"), JSON.stringify(report, null, 2) + "\n");
  const md = formatMatrixMarkdown(report);
  await writeFile(join(config.reportsDir, "matrix.md"), md);
  process.stdout.write(
    `\n${md}\nmatrix of ${runs.length} personas in ${formatDuration(Date.now() - started)}: ${join(config.reportsDir, "matrix.md")}\n`,
  );
  return report.consistent ? 0 : 1;
}

/** One persona's row: its suites run in a conformance child (own target), and the cells its issuer-matrix suite wrote. */
async function personaRun(config: Config, p: Persona, onChild: (c: ChildProcess) => void): Promise<PersonaRun> {
  const dir = join(config.reportsDir, "matrix", p.name);
  await rm(dir, { recursive: true, force: true });
  const t0 = Date.now();
  const r = await runConformanceChild({
    config,
    reportsDir: dir,
    filters: MATRIX_SUITES,
    env: { VKC_PERSONA: p.name, VKC_TARGET: "local" },
    onChild,
  });
  const run: PersonaRun = { persona: p.name, description: p.description, totals: null, durationMs: Date.now() - t0, matrix: null };
  if (r.results) {
    run.totals = r.results.totals;
    const failed = r.results.cases.filter((c) => c.status === "failed").map((c) => c.id);
    if (failed.length) run.failedCases = failed;
    try {
      if (r.results.runId) run.matrix = JSON.parse(await readFile(issuerMatrixPath(dir, r.results.runId), "utf8")) as PersonaCells;
    } catch (err) {
      run.problem = `${(err as Error).message.split("\n")[0]} (see ${r.logFile})`;
    }
  } else run.problem = `exit ${r.code}, no results (see ${r.logFile})`;
  if (!run.matrix && !run.problem) run.problem = `the issuer-matrix suite left no cells (see ${join(dir, "output.log")})`;
  return run;
}
