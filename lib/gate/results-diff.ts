import { readFile } from "node:fs/promises";
import { UsageError } from "../errors.ts";
import type { CaseResult, RunResults } from "../report/reporter.ts";

/**
 * What changed between two runs' results.json, case by case. A case is keyed by its `id` plus its
 * `flavor` (results of two flavors may be merged into one file, so the same id can appear once per
 * flavor). The verdict gates a change: exit 1 when a case that passed no longer does, or when a
 * case fails that did not fail before.
 */

export type CaseStatus = CaseResult["status"];

export interface CaseChange {
  id: string;
  /** The case's flavor; absent when the case carries none. */
  flavor?: string;
  /** Status in the before run; absent when the case was not there. */
  before?: CaseStatus;
  /** Status in the after run; absent when the case is gone. */
  after?: CaseStatus;
  /** First line of the after run's error (at most 200 characters). */
  error?: string;
}

export interface RunContext {
  target?: string;
  flavor?: string;
  runId?: string;
  startedAt?: string;
}

export interface VersionChange {
  component: string;
  before?: string;
  after?: string;
}

export interface ResultsDiff {
  /** passed -> failed, or passed -> missing. */
  regressions: CaseChange[];
  /** failed -> passed. */
  fixes: CaseChange[];
  /** Failing now, and not failing before: absent before, or skipped before. */
  newFailures: CaseChange[];
  /** Absent before, present now and not failing. */
  added: CaseChange[];
  /** Present before (not passing), absent now. A passing case that is gone is a regression. */
  removed: CaseChange[];
  /** Any other status change, e.g. passed -> skipped, skipped -> passed, failed -> skipped. */
  otherChanges: CaseChange[];
  /** Cases with the same status in both runs. */
  unchanged: number;
  context: {
    before: RunContext;
    after: RunContext;
    /** Only the components whose version differs (or that only one run names). */
    versions: VersionChange[];
  };
}

const STATUSES: readonly CaseStatus[] = ["passed", "failed", "skipped"];
/** When one file holds the same key twice, the worse status stands for the case. */
const RANK: Record<CaseStatus, number> = { failed: 2, passed: 1, skipped: 0 };
const MAX_ERROR = 200;

/** Reads and checks a results.json written by the harness; any problem is a one-line UsageError. */
export async function loadResults(path: string): Promise<RunResults> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new UsageError(`results file ${path} not found`);
    throw new UsageError(`cannot read results file ${path}: ${code ?? firstLine((err as Error).message)}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${path} is not JSON: ${firstLine((err as Error).message)}`);
  }
  const o = data as Partial<RunResults> | null;
  if (!o || typeof o !== "object" || Array.isArray(o) || !Array.isArray(o.cases))
    throw new UsageError(`${path} is not a results file (no "cases" array; expected the results.json of npm run conformance)`);
  o.cases.forEach((c: unknown, i) => {
    const k = c as Partial<CaseResult> | null;
    if (!k || typeof k !== "object" || typeof k.id !== "string" || !STATUSES.includes(k.status as CaseStatus))
      throw new UsageError(`${path} is not a results file: cases[${i}] lacks a string "id" or a status of ${STATUSES.join("|")}`);
  });
  return o as RunResults;
}

export function diffResults(before: RunResults, after: RunResults): ResultsDiff {
  const b = byKey(before.cases);
  const a = byKey(after.cases);
  const d: ResultsDiff = {
    regressions: [],
    fixes: [],
    newFailures: [],
    added: [],
    removed: [],
    otherChanges: [],
    unchanged: 0,
    context: { before: contextOf(before), after: contextOf(after), versions: versionChanges(runVersions(before), runVersions(after)) },
  };
  const keys = [...new Set([...b.keys(), ...a.keys()])];
  for (const key of keys) {
    const was = b.get(key);
    const now = a.get(key);
    const change: CaseChange = { id: (now ?? was)!.id };
    const flavor = (now ?? was)!.flavor;
    if (flavor) change.flavor = flavor;
    if (was) change.before = was.status;
    if (now) change.after = now.status;
    if (now?.status === "failed" && now.error) change.error = shortError(now.error);

    if (was && now && was.status === now.status) d.unchanged++;
    else if (!now) (was!.status === "passed" ? d.regressions : d.removed).push(change);
    else if (now.status === "failed") (was?.status === "passed" ? d.regressions : d.newFailures).push(change);
    else if (!was) d.added.push(change);
    else if (was.status === "failed" && now.status === "passed") d.fixes.push(change);
    else d.otherChanges.push(change);
  }
  for (const list of [d.regressions, d.fixes, d.newFailures, d.added, d.removed, d.otherChanges]) list.sort(byIdThenFlavor);
  return d;
}

/** 1 when anything that passed (or was not failing) now fails, else 0. */
export function resultsDiffExitCode(diff: ResultsDiff): number {
  return diff.regressions.length || diff.newFailures.length ? 1 : 0;
}

export function formatResultsDiff(diff: ResultsDiff, format: "text" | "markdown"): string {
  return format === "markdown" ? markdown(diff) : text(diff);
}

/** e.g. `2 regressions, 1 fix, 3 added, 0 removed (84 unchanged)`; new failures and other changes only when there are some. */
export function resultsDiffHeadline(diff: ResultsDiff): string {
  const parts = [count(diff.regressions.length, "regression")];
  if (diff.newFailures.length) parts.push(count(diff.newFailures.length, "new failure"));
  parts.push(count(diff.fixes.length, "fix", "fixes"), `${diff.added.length} added`, `${diff.removed.length} removed`);
  if (diff.otherChanges.length) parts.push(count(diff.otherChanges.length, "other change"));
  return `${parts.join(", ")} (${diff.unchanged} unchanged)`;
}

// --- internals ---

interface Section {
  title: string;
  entries: CaseChange[];
}

function sections(d: ResultsDiff): Section[] {
  return [
    { title: "Regressions", entries: d.regressions },
    { title: "New failures", entries: d.newFailures },
    { title: "Fixes", entries: d.fixes },
    { title: "Other status changes", entries: d.otherChanges },
    { title: "Added", entries: d.added },
    { title: "Removed", entries: d.removed },
  ].filter((s) => s.entries.length > 0);
}

function text(d: ResultsDiff): string {
  const lines = [resultsDiffHeadline(d), ""];
  lines.push(`before: ${describeRun(d.context.before)}`, `after:  ${describeRun(d.context.after)}`);
  if (d.context.versions.length) {
    lines.push("versions:");
    for (const v of d.context.versions) lines.push(`  ${versionLine(v)}`);
  }
  for (const s of sections(d)) {
    lines.push("", `${s.title} (${s.entries.length}):`);
    for (const e of s.entries) {
      lines.push(`  - ${e.flavor ? `[${e.flavor}] ` : ""}${e.id}`);
      lines.push(`      ${transition(e)}${e.error ? `: ${e.error}` : ""}`);
    }
  }
  return lines.join("\n") + "\n";
}

function markdown(d: ResultsDiff): string {
  const verdict = resultsDiffExitCode(d) ? "FAIL" : "OK";
  const lines = [`## vault-k8s-conformance results diff: ${verdict}`, "", resultsDiffHeadline(d), ""];
  const { before, after } = d.context;
  lines.push("| | before | after |", "|---|---|---|");
  for (const k of ["target", "flavor", "runId", "startedAt"] as const)
    if (before[k] !== undefined || after[k] !== undefined) lines.push(`| ${k} | ${md(before[k] ?? "-")} | ${md(after[k] ?? "-")} |`);
  lines.push("");
  if (d.context.versions.length) {
    lines.push("### Version changes", "");
    for (const v of d.context.versions) lines.push(`- ${md(versionLine(v))}`);
    lines.push("");
  }
  for (const s of sections(d)) {
    const withFlavor = s.entries.some((e) => e.flavor);
    const withError = s.entries.some((e) => e.error);
    lines.push(`### ${s.title} (${s.entries.length})`, "");
    lines.push(`| case |${withFlavor ? " flavor |" : ""} change |${withError ? " error |" : ""}`);
    lines.push(`|---|${withFlavor ? "---|" : ""}---|${withError ? "---|" : ""}`);
    for (const e of s.entries)
      lines.push(
        `| ${md(e.id)} |${withFlavor ? ` ${md(e.flavor ?? "")} |` : ""} ${transition(e)} |${withError ? ` ${md(e.error ?? "")} |` : ""}`,
      );
    lines.push("");
  }
  return lines.join("\n");
}

function byKey(cases: CaseResult[]): Map<string, CaseResult> {
  const m = new Map<string, CaseResult>();
  for (const c of cases) {
    const key = `${c.flavor ?? ""}\u0000${c.id}`;
    const prev = m.get(key);
    if (!prev || RANK[c.status] > RANK[prev.status]) m.set(key, c);
  }
  return m;
}

function contextOf(r: RunResults): RunContext {
  const c: RunContext = {};
  if (r.target !== undefined) c.target = r.target;
  if (r.flavor !== undefined) c.flavor = r.flavor;
  if (r.runId !== undefined) c.runId = r.runId;
  if (r.startedAt !== undefined) c.startedAt = r.startedAt;
  return c;
}

/** The run's versions; for merged results without run-level versions, the cases' (distinct values joined). */
function runVersions(r: RunResults): Record<string, string> {
  if (r.versions && Object.keys(r.versions).length) return r.versions;
  const seen = new Map<string, Set<string>>();
  for (const c of r.cases)
    for (const [k, v] of Object.entries(c.versions ?? {})) {
      const s = seen.get(k) ?? new Set<string>();
      s.add(v);
      seen.set(k, s);
    }
  return Object.fromEntries([...seen].map(([k, s]) => [k, [...s].join(", ")]));
}

function versionChanges(before: Record<string, string>, after: Record<string, string>): VersionChange[] {
  const out: VersionChange[] = [];
  for (const component of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const b = before[component];
    const a = after[component];
    if (b === a) continue;
    const v: VersionChange = { component };
    if (b !== undefined) v.before = b;
    if (a !== undefined) v.after = a;
    out.push(v);
  }
  return out;
}

function describeRun(c: RunContext): string {
  const where = [c.target, c.flavor].filter(Boolean).join(", ") || "(target unknown)";
  const extra = [c.runId && `run ${c.runId}`, c.startedAt && `started ${c.startedAt}`].filter(Boolean).join(", ");
  return extra ? `${where} (${extra})` : where;
}

const versionLine = (v: VersionChange) => `${v.component} ${v.before ?? "(none)"} -> ${v.after ?? "(none)"}`;
const transition = (e: CaseChange) => `${e.before ?? "(absent)"} -> ${e.after ?? "(missing)"}`;
const count = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const byIdThenFlavor = (x: CaseChange, y: CaseChange) =>
  x.id < y.id ? -1 : x.id > y.id ? 1 : (x.flavor ?? "") < (y.flavor ?? "") ? -1 : (x.flavor ?? "") > (y.flavor ?? "") ? 1 : 0;

function firstLine(s: string): string {
  return (s.split("\n").find((l) => l.trim() !== "") ?? "").trim();
}

function shortError(s: string): string {
  const line = firstLine(s);
  return line.length > MAX_ERROR ? `${line.slice(0, MAX_ERROR - 1)}…` : line;
}

/** A string fit for a Markdown table cell. */
function md(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/</g, "&lt;").replace(/\r?\n/g, " ");
}
