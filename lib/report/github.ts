/**
 * A run's results as GitHub Actions reads them (the action.yml at the repository's root, through
 * `vault-k8s-conformance gh-report`): workflow-command annotations for failed cases, step outputs
 * in $GITHUB_OUTPUT's format, and the kind of a baseline file to diff against.
 *
 * Escaping follows GitHub's workflow command rules (docs: "Workflow commands for GitHub Actions";
 * the toolkit's @actions/core `command.ts`): in a message `%`, `\r` and `\n` are percent-encoded;
 * in a property value (`file=`, `title=`) also `:` and `,`, which would otherwise end the value.
 */
import { randomBytes } from "node:crypto";
import { isAbsolute, join, relative, sep } from "node:path";
import type { CaseResult, RunResults } from "./reporter.ts";
import { SCHEMA_MARKERS } from "../schemas.ts";

/** `%`, CR and LF percent-encoded: the data (message) of a workflow command. */
export function escapeData(s: string): string {
  return s.replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
}

/** escapeData plus `:` and `,`: a property value (file, title) of a workflow command. */
export function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, "%3A").replace(/,/g, "%2C");
}

/** `::error file=F,title=T::message`; properties without a value are left out. */
export function errorCommand(message: string, props: { file?: string; title?: string } = {}): string {
  const p = Object.entries(props)
    .filter(([, v]) => v !== undefined && v !== "")
    .map(([k, v]) => `${k}=${escapeProperty(v!)}`)
    .join(",");
  return `::error${p ? ` ${p}` : ""}::${escapeData(message)}`;
}

/** PASS only if cases ran, none failed and the run was not aborted (the exit code's rule, lib/run.ts). */
export function runVerdict(r: Pick<RunResults, "totals" | "aborted">): "pass" | "fail" {
  const { passed, failed } = r.totals;
  return !r.aborted && failed === 0 && passed + failed > 0 ? "pass" : "fail";
}

export interface AnnotateOptions {
  /** Where the suites ran from (vitest's root): case ids name their file relative to it. */
  codeRoot: string;
  /** The fixtures of the run: a fixture case's failure points at its case file. */
  fixturesDir: string;
  /** The workspace: files outside it are not linked (GitHub links only repository paths). */
  cwd: string;
  exists: (path: string) => boolean;
  /** GitHub shows at most 10 error annotations per step. */
  max?: number;
}

/** Message lines kept per annotation: the assertion and its first lines of evidence. */
const MESSAGE_LINES = 20;

/**
 * The workspace-relative file a failed case points at: a fixture case's YAML
 * (`<describe> (name.yaml)` in the fixture-cases suite), else the suite's file (its TypeScript
 * source when the compiled dist/ ran and the source is there). Undefined outside the workspace.
 */
export function caseFile(c: Pick<CaseResult, "id" | "suite">, o: AnnotateOptions): string | undefined {
  const inWorkspace = (p: string) => {
    const rel = relative(o.cwd, p);
    return rel && !rel.startsWith("..") && !isAbsolute(rel) && o.exists(p) ? rel.split(sep).join("/") : undefined;
  };
  const file = c.id.split("::")[0] ?? "";
  const yaml = /\(([^()/\\]+\.ya?ml)\)/.exec(c.suite)?.[1];
  if (yaml && /(^|\/)fixture-cases\.test\.[jt]s$/.test(file)) {
    const found = inWorkspace(join(o.fixturesDir, "cases", yaml));
    if (found) return found;
  }
  if (!file) return undefined;
  const compiled = join(o.codeRoot, file);
  const source = /\.js$/.test(file) ? join(o.codeRoot, "..", file.replace(/\.js$/, ".ts")) : undefined;
  return (source && inWorkspace(source)) ?? inWorkspace(compiled);
}

/**
 * Workflow-command lines for a run: one `::error` per failed case (title: the case, message: its
 * error), the abort reason and unhandled errors, at most `max` of them and then one `::notice`
 * counting the rest (they are all in summary.md and results.json).
 */
export function annotations(r: RunResults, o: AnnotateOptions): string[] {
  const max = o.max ?? 10;
  const errors: string[] = [];
  if (r.aborted) errors.push(errorCommand(r.aborted, { title: "vault-k8s-conformance: run aborted" }));
  for (const e of r.unhandledErrors ?? []) errors.push(errorCommand(e, { title: "vault-k8s-conformance: unhandled error" }));
  for (const c of r.cases) {
    if (c.status !== "failed") continue;
    const message = (c.error ?? "failed (no error message)").split("\n").slice(0, MESSAGE_LINES).join("\n");
    const title = `${c.suite ? `${c.suite} > ` : ""}${c.name}`;
    errors.push(errorCommand(message, { file: caseFile(c, o), title }));
  }
  if (errors.length === 0 && runVerdict(r) === "fail")
    errors.push(errorCommand("no test case was executed; that is not a pass", { title: "vault-k8s-conformance" }));
  const shown = errors.slice(0, max);
  if (errors.length > max)
    shown.push(
      `::notice title=vault-k8s-conformance::${escapeData(`${errors.length - max} more errors: see the step summary and results.json`)}`,
    );
  return shown;
}

/**
 * One output in $GITHUB_OUTPUT's format: `name=value`, or for a multi-line value
 * `name<<DELIM`, the value, `DELIM`, with a delimiter that does not occur in the value.
 */
export function formatOutput(
  name: string,
  value: string,
  delimiter: () => string = () => `vkc_${randomBytes(12).toString("hex")}`,
): string {
  if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(name)) throw new Error(`not an output name: ${JSON.stringify(name)}`);
  if (!/[\r\n]/.test(value)) return `${name}=${value}\n`;
  let d = delimiter();
  while (value.includes(d)) d = delimiter();
  return `${name}<<${d}\n${value}\n${d}\n`;
}

/** The step outputs of a run (see action.yml): verdict, counts, the failed case ids (one a line). */
export function runOutputs(r: RunResults): Record<string, string> {
  return {
    verdict: runVerdict(r),
    passed: String(r.totals.passed),
    failed: String(r.totals.failed),
    skipped: String(r.totals.skipped),
    "failed-cases": r.cases
      .filter((c) => c.status === "failed")
      .map((c) => c.id)
      .join("\n"),
  };
}

export type BaselineKind = "results" | "profile" | "audit";

/** What a baseline document is, by its `schema` marker; undefined for anything else. */
export function baselineKind(doc: unknown): BaselineKind | undefined {
  const marker = doc && typeof doc === "object" && !Array.isArray(doc) ? (doc as { schema?: unknown }).schema : undefined;
  for (const kind of ["results", "profile", "audit"] as const) if (marker === SCHEMA_MARKERS[kind]) return kind;
  return undefined;
}
