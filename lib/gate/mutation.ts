import { existsSync, readdirSync, readFileSync } from "node:fs";
import { cp, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { dumpYaml, loadYaml } from "@kubernetes/client-node";
import { UsageError } from "../errors.ts";

/**
 * Mutants: deliberately broken setups, as data (`<fixtures>/mutants/*.yaml`). Each names one case
 * file of `<fixtures>/cases/` and changes it: `set` / `delete` dotted paths of the case (roles,
 * authConfig, reviewer, defaultPolicy, ...) and `policies` replaces policy files. `npm run
 * mutation` runs the case, mutated, against a real target; a mutant is killed when at least one
 * of the case's expectations fails.
 */
export interface Mutant {
  file: string;
  name: string;
  case: string;
  set: Record<string, unknown>;
  delete: string[];
  policies: Record<string, string>;
}

export interface MutantResult {
  file: string;
  name: string;
  killed: boolean;
  /** Names of the cases that failed, i.e. caught the mutant. */
  killedBy: string[];
  passed: number;
  error?: string;
}

export interface MutationReport {
  createdAt: string;
  target: string;
  flavor: string;
  baseline: { passed: number; failed: number };
  total: number;
  killed: number;
  survivors: string[];
  mutants: MutantResult[];
}

const KEYS = new Set(["name", "case", "set", "delete", "policies"]);

export function loadMutants(fixturesDir: string): Mutant[] {
  const dir = join(fixturesDir, "mutants");
  if (!existsSync(dir)) throw new UsageError(`no mutants: ${dir} does not exist`);
  const files = readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort();
  if (!files.length) throw new UsageError(`no mutants in ${dir}`);
  return files.map((f) => {
    const path = join(dir, f);
    let raw: unknown;
    try {
      raw = loadYaml(readFileSync(path, "utf8"));
    } catch (err) {
      throw new UsageError(`invalid YAML in ${path}: ${(err as Error).message.split("\n")[0]}`);
    }
    return parseMutant(f, raw, path, fixturesDir);
  });
}

export function parseMutant(file: string, raw: unknown, where: string, fixturesDir: string): Mutant {
  const bad = (m: string) => new UsageError(`mutant ${where}: ${m}`);
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw bad("must be a mapping");
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KEYS.has(k)) throw bad(`unknown key "${k}" (allowed: ${[...KEYS].join(", ")})`);
  if (typeof o.name !== "string" || !o.name) throw bad("`name` is required");
  if (typeof o.case !== "string" || !existsSync(join(fixturesDir, "cases", o.case)))
    throw bad(`\`case\` must name a file of ${join(fixturesDir, "cases")}`);
  const set = (o.set ?? {}) as Record<string, unknown>;
  const del = (o.delete ?? []) as unknown[];
  const policies = (o.policies ?? {}) as Record<string, unknown>;
  if (typeof set !== "object" || Array.isArray(set)) throw bad("`set` must map dotted paths to values");
  if (!Array.isArray(del) || del.some((d) => typeof d !== "string")) throw bad("`delete` must be a list of dotted paths");
  if (typeof policies !== "object" || Object.values(policies).some((v) => typeof v !== "string"))
    throw bad("`policies` must map policy files to HCL");
  if (!Object.keys(set).length && !del.length && !Object.keys(policies).length) throw bad("changes nothing (give set, delete or policies)");
  return { file: basename(file), name: o.name, case: o.case, set, delete: del as string[], policies: policies as Record<string, string> };
}

/** Applies `set` and `delete` to a case document; a path to delete must exist (a mutant that changes nothing is a bug). */
export function mutateCase(doc: Record<string, unknown>, m: Pick<Mutant, "set" | "delete" | "file">): Record<string, unknown> {
  const out = structuredClone(doc);
  for (const [path, value] of Object.entries(m.set)) {
    const keys = path.split(".");
    let node = out as Record<string, unknown>;
    for (const k of keys.slice(0, -1)) {
      if (node[k] === undefined) node[k] = {};
      if (typeof node[k] !== "object" || node[k] === null)
        throw new UsageError(`mutant ${m.file}: cannot set ${path}: ${k} is not a mapping`);
      node = node[k] as Record<string, unknown>;
    }
    node[keys.at(-1)!] = value;
  }
  for (const path of m.delete) {
    const keys = path.split(".");
    let node: unknown = out;
    for (const k of keys.slice(0, -1)) node = (node as Record<string, unknown> | undefined)?.[k];
    const last = keys.at(-1)!;
    if (!node || typeof node !== "object" || !(last in node))
      throw new UsageError(`mutant ${m.file}: cannot delete ${path}: the case has no such field`);
    delete (node as Record<string, unknown>)[last];
  }
  return out;
}

/**
 * A fixtures directory for one mutant: a copy of `fixturesDir` holding only the mutant's case,
 * mutated, and its replaced policy files.
 */
export async function mutatedFixtures(fixturesDir: string, m: Mutant, dest: string): Promise<void> {
  const mutated = mutatedCase(fixturesDir, m);
  await cp(fixturesDir, dest, { recursive: true });
  await rm(join(dest, "mutants"), { recursive: true, force: true });
  for (const f of readdirSync(join(dest, "cases"))) if (f !== m.case) await rm(join(dest, "cases", f));
  for (const [file, hcl] of Object.entries(m.policies)) await writeFile(join(dest, "policies", file), hcl);
  await writeFile(join(dest, "cases", m.case), dumpYaml(mutated));
}

/** The mutant's case, mutated; throws a one-line UsageError for a mutant that cannot apply (checked before any target starts). */
export function mutatedCase(fixturesDir: string, m: Mutant): Record<string, unknown> {
  const path = join(fixturesDir, "cases", m.case);
  let doc: Record<string, unknown>;
  try {
    doc = loadYaml(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch (err) {
    throw new UsageError(`mutant ${m.file}: cannot read case ${path}: ${(err as Error).message.split("\n")[0]}`);
  }
  const referenced = Object.values((doc.policies ?? {}) as Record<string, string>);
  for (const file of Object.keys(m.policies))
    if (!referenced.includes(file)) throw new UsageError(`mutant ${m.file}: policy ${file} is not used by case ${m.case}`);
  return mutateCase(doc, m);
}

/** The mutants `--only` names (file names, with or without .yaml); an unknown name is bad input. */
export function selectMutants(mutants: Mutant[], only: string[] | undefined): Mutant[] {
  if (!only) return mutants;
  const unknown = only.filter((o) => !mutants.some((m) => m.file === o || m.file === `${o}.yaml`));
  if (unknown.length) throw new UsageError(`no mutant ${unknown.join(", ")} (have: ${mutants.map((m) => m.file).join(", ")})`);
  return mutants.filter((m) => only.includes(m.file) || only.includes(m.file.replace(/\.ya?ml$/, "")));
}

/**
 * One mutant's verdict from its run of the mutated cases: killed when at least one case failed
 * (those cases caught it); a run that wrote no results is an error, never a survivor's pass.
 */
export function classifyMutant(
  m: Pick<Mutant, "file" | "name">,
  run: {
    code: number | null;
    results: { totals: { passed: number; failed: number }; cases: { name: string; status: string }[] } | undefined;
    log: string;
  },
): MutantResult {
  if (!run.results)
    return { file: m.file, name: m.name, killedBy: [], passed: 0, killed: false, error: `no results (exit ${run.code}; see ${run.log})` };
  return {
    file: m.file,
    name: m.name,
    killedBy: run.results.cases.filter((c) => c.status === "failed").map((c) => c.name),
    passed: run.results.totals.passed,
    killed: run.results.totals.failed > 0,
  };
}

/** The log line of one verdict. */
export function mutantLine(r: MutantResult): string {
  return `${r.killed ? "killed  " : r.error ? "ERROR   " : "SURVIVED"} ${r.name}${r.killedBy.length ? ` by ${r.killedBy.length} case(s)` : ""}`;
}

export function summarize(o: {
  target: string;
  flavor: string;
  baseline: { passed: number; failed: number };
  mutants: MutantResult[];
}): MutationReport {
  return {
    createdAt: new Date().toISOString(),
    target: o.target,
    flavor: o.flavor,
    baseline: o.baseline,
    total: o.mutants.length,
    killed: o.mutants.filter((r) => r.killed).length,
    survivors: o.mutants.filter((r) => !r.killed).map((r) => r.file),
    mutants: o.mutants,
  };
}

export function formatMutation(r: MutationReport): string {
  const lines = [
    `## Mutation testing (${r.target}, ${r.flavor}): ${r.killed}/${r.total} mutants killed`,
    "",
    "| mutant | verdict | caught by |",
    "|---|---|---|",
  ];
  for (const m of r.mutants) {
    const verdict = m.error ? "error" : m.killed ? "killed" : "**survived**";
    const by = m.error ? m.error : m.killedBy.length ? m.killedBy.join("; ") : `nothing (${m.passed} cases passed)`;
    lines.push(`| ${m.name} (${m.file}) | ${verdict} | ${by.replace(/\|/g, "\\|")} |`);
  }
  if (r.survivors.length) lines.push("", `Survivors: ${r.survivors.join(", ")}: the cases do not notice these misconfigurations.`);
  return lines.join("\n") + "\n";
}
