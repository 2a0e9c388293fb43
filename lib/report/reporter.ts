import { mkdir, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import type { Reporter, TestModule, Vitest } from "vitest/node";
import { redact, redactValue } from "../redact.ts";
import type { TargetInfo } from "../lifecycle/info.ts";
import { accessMarkdown, collectAccess, type AccessReport } from "../access/report.ts";

export interface CaseResult {
  /** Stable id: `<file>::<describe> > <test>`. */
  id: string;
  project: string;
  suite: string;
  name: string;
  status: "passed" | "failed" | "skipped";
  durationMs: number;
  error?: string;
  /** Why it was skipped, when the suite declared a reason (`ctx.skip(note)`). */
  skipNote?: string;
  /** Where it ran (conformance cases only). */
  target?: string;
  flavor?: string;
  versions?: Record<string, string>;
}

/** Format marker of results.json (schemas/results.v1.schema.json). */
export const RESULTS_SCHEMA = "vault-k8s-conformance/results/v1";

export interface RunResults {
  /** Written by every run since v1; optional here so results.json files from before the marker still load. */
  schema?: typeof RESULTS_SCHEMA;
  startedAt: string;
  durationMs: number;
  target?: string;
  flavor?: string;
  versions?: Record<string, string>;
  runId?: string;
  totals: { passed: number; failed: number; skipped: number };
  cases: CaseResult[];
  unhandledErrors: string[];
  /** Why the run ended early (a component died): the verdict is FAIL whatever the counts. */
  aborted?: string;
  /** Access map, capability map and identity continuity of the fixture cases (also in access.json). */
  access?: AccessReport;
}

/**
 * Writes results.json (one record per case, with target, flavor and versions) and summary.md
 * (fit for $GITHUB_STEP_SUMMARY). Every string passes through redact(): an assertion message
 * quoting a token must not leak it into a report.
 */
export class ResultsReporter implements Reporter {
  #vitest: Vitest | undefined;
  #started = Date.now();
  results: RunResults | undefined;

  constructor(
    private readonly reportsDir: string,
    private readonly abortedBy: () => string | undefined = () => undefined,
  ) {}

  onInit(vitest: Vitest): void {
    this.#vitest = vitest;
    this.#started = Date.now();
  }

  async onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandled: ReadonlyArray<{ message?: string }>): Promise<void> {
    const root = this.#vitest?.config.root ?? process.cwd();
    let target: TargetInfo | undefined;
    try {
      target = this.#vitest?.projects.find((p) => p.name === "conformance")?.getProvidedContext().target;
    } catch {
      target = undefined;
    }
    const cases: CaseResult[] = [];
    const metas: Record<string, unknown>[] = [];
    for (const mod of modules) {
      const file = relative(root, mod.moduleId);
      const moduleErrors = mod.errors().map((e) => e.message);
      for (const t of mod.children.allTests()) {
        const r = t.result();
        metas.push(t.meta() as Record<string, unknown>);
        const suite = t.fullName.slice(0, Math.max(0, t.fullName.length - t.name.length - 3));
        const status = r.state === "passed" ? "passed" : r.state === "failed" ? "failed" : "skipped";
        cases.push({
          id: `${file}::${t.fullName}`,
          project: t.project.name,
          suite: suite || file,
          name: t.name,
          status,
          durationMs: Math.round(t.diagnostic()?.duration ?? 0),
          ...(t.project.name === "conformance" && target
            ? { target: target.target, flavor: target.flavor, versions: target.versions }
            : {}),
          ...(r.state === "failed" && r.errors?.length ? { error: redact(r.errors.map((e) => e.message).join("\n")) } : {}),
          ...(r.state === "skipped" && r.note ? { skipNote: redact(r.note) } : {}),
        });
      }
      // A describe whose beforeAll/afterAll failed: its tests are skipped, yet the run failed.
      // Count each such suite as one failure so the totals (and mutation testing) see it.
      for (const s of mod.children.allSuites()) {
        const errs = s.errors().map((e) => e.message);
        if (!errs.length) continue;
        cases.push({
          id: `${file}::${s.fullName} > (setup)`,
          project: mod.project.name,
          suite: s.fullName,
          name: "(setup)",
          status: "failed",
          durationMs: 0,
          error: redact(errs.join("\n")),
        });
      }
      if (moduleErrors.length && !cases.some((c) => c.id.startsWith(file))) {
        // A file that failed before any test ran (e.g. beforeAll): count it as one failure.
        cases.push({
          id: `${file}::(file)`,
          project: mod.project.name,
          suite: file,
          name: "(setup)",
          status: "failed",
          durationMs: 0,
          error: redact(moduleErrors.join("\n")),
        });
      }
    }
    const totals = { passed: 0, failed: 0, skipped: 0 };
    for (const c of cases) totals[c.status]++;
    const errors = unhandled.map((e) => redact(e.message ?? String(e)));
    const access = collectAccess(metas);
    const hasAccess = access.access.length + access.capabilities.length + access.identity.length > 0;
    if (errors.length) totals.failed += errors.length;
    this.results = redactValue({
      schema: RESULTS_SCHEMA,
      startedAt: new Date(this.#started).toISOString(),
      durationMs: Date.now() - this.#started,
      target: target?.target,
      flavor: target?.flavor,
      versions: target?.versions,
      runId: target?.runId,
      totals,
      cases,
      unhandledErrors: errors,
      ...(this.abortedBy() ? { aborted: this.abortedBy() } : {}),
      ...(hasAccess ? { access } : {}),
    });
    await mkdir(this.reportsDir, { recursive: true });
    await writeFile(join(this.reportsDir, "results.json"), JSON.stringify(this.results, null, 2) + "\n");
    await writeFile(join(this.reportsDir, "summary.md"), summaryMarkdown(this.results));
    if (this.results.access) await writeFile(join(this.reportsDir, "access.json"), JSON.stringify(this.results.access, null, 2) + "\n");
  }
}

export function summaryMarkdown(r: RunResults): string {
  const verdict = r.totals.failed === 0 && r.totals.passed > 0 && !r.aborted ? "PASS" : "FAIL";
  const lines = [
    `## vault-k8s-conformance: ${verdict}`,
    "",
    `${r.totals.passed} passed, ${r.totals.failed} failed, ${r.totals.skipped} skipped in ${(r.durationMs / 1000).toFixed(1)}s`,
    "",
  ];
  if (r.aborted) lines.push(`**Run aborted:** ${esc(r.aborted)}`, "");
  if (r.target) {
    lines.push(`Target **${r.target}**, flavor **${r.flavor}**, run \`${r.runId}\``, "");
    lines.push("| component | version |", "|---|---|");
    for (const [k, v] of Object.entries(r.versions ?? {})) lines.push(`| ${k} | ${v} |`);
    lines.push("");
  }
  const failed = r.cases.filter((c) => c.status === "failed");
  if (failed.length) {
    lines.push("### Failed cases", "", "| case | error |", "|---|---|");
    for (const c of failed) lines.push(`| ${esc(c.id)} | ${esc((c.error ?? "").split("\n")[0] ?? "")} |`);
    lines.push("");
  }
  const bySuite = new Map<string, { passed: number; failed: number; skipped: number }>();
  for (const c of r.cases) {
    const key = c.id.split("::")[0] ?? c.suite;
    const s = bySuite.get(key) ?? { passed: 0, failed: 0, skipped: 0 };
    s[c.status]++;
    bySuite.set(key, s);
  }
  lines.push("| file | passed | failed | skipped |", "|---|---|---|---|");
  for (const [k, s] of bySuite) lines.push(`| ${k} | ${s.passed} | ${s.failed} | ${s.skipped} |`);
  const declared = r.cases.filter((c) => c.status === "skipped" && c.skipNote);
  if (declared.length) {
    lines.push("", "### Skipped, with the suite's reason", "", "| case | reason |", "|---|---|");
    for (const c of declared) lines.push(`| ${esc(c.id)} | ${esc(c.skipNote!)} |`);
  }
  if (r.access) lines.push("", accessMarkdown(r.access));
  return lines.join("\n") + "\n";
}

function esc(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\n/g, " ").slice(0, 300);
}
