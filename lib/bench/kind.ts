import { stats, type Stats } from "../bench.ts";
import { HarnessError } from "../errors.ts";

/**
 * The kind target beside the local one in `npm run bench -- --with-kind`: whole
 * `npm run conformance -- --target kind` runs, Vault as a container and in the cluster, each timed
 * from spawn to exit (time to verdict) and read for the provider's own "ready in" line (kind
 * create cluster to Vault unsealed). Parsing, aggregation and the side-by-side table are pure;
 * lib/bench/run.ts runs the scripts.
 */

export type KindVaultMode = "container" | "in-cluster";
export const KIND_VAULT_MODES: readonly KindVaultMode[] = ["container", "in-cluster"];

export interface CaseTotals {
  passed: number;
  failed: number;
  skipped: number;
}

/** What one kind conformance run gave the bench. */
export interface KindRunOutput {
  /** The child's exit code (null: killed by a signal). */
  code: number | null;
  /** Spawn to exit, as a user waits for the verdict. */
  wallMs: number;
  /** The child's stdout and stderr (the harness's progress log is on stderr). */
  output: string;
  /** Where that output is kept, for the error line. */
  logFile: string;
  totals?: CaseTotals;
}

export interface KindRun {
  mode: KindVaultMode;
  code: number | null;
  wallMs: number;
  readyMs: number;
  totals?: CaseTotals;
}

export interface KindModeBench {
  mode: KindVaultMode;
  /** The kind provider's start: image checks, `kind create cluster --wait`, Vault up and unsealed. */
  ready: Stats;
  /** The whole `npm run conformance -- --target kind` run, spawn to exit. */
  timeToVerdict: Stats;
  /** Each run's cases, in run order (undefined: the run wrote no results.json). */
  totals: (CaseTotals | undefined)[];
  /** Runs that exited non-zero. */
  failedRuns: number;
}

export interface KindBench {
  modes: KindModeBench[];
}

/** formatDuration's text back to milliseconds: "850ms", "33.2s", "1m05s". */
export function parseDuration(text: string): number | undefined {
  let m = /^(\d+)ms$/.exec(text);
  if (m) return Number(m[1]);
  m = /^(\d+(?:\.\d+)?)s$/.exec(text);
  if (m) return Math.round(Number(m[1]) * 1000);
  m = /^(\d+)m(\d{1,2})s$/.exec(text);
  if (m) return (Number(m[1]) * 60 + Number(m[2])) * 1000;
  return undefined;
}

/**
 * The kind target's time to ready from a run's output: the provider's line
 * `[vkc] kind: <run id>: ready in 33.2s: kubernetes ...` (the last one, should a run print two).
 * undefined when the run never got a ready target.
 */
export function parseKindReady(output: string): number | undefined {
  const lines = [...output.matchAll(/^\[vkc\] kind: \S+: ready in (\S+?): /gm)];
  const last = lines.at(-1);
  return last ? parseDuration(last[1]!) : undefined;
}

/** Per mode, in the order first seen: medians and ranges of ready and time to verdict. */
export function summarizeKind(runs: KindRun[]): KindBench {
  const modes: KindModeBench[] = [];
  for (const mode of [...new Set(runs.map((r) => r.mode))]) {
    const of = runs.filter((r) => r.mode === mode);
    modes.push({
      mode,
      ready: stats(of.map((r) => r.readyMs)),
      timeToVerdict: stats(of.map((r) => r.wallMs)),
      totals: of.map((r) => r.totals),
      failedRuns: of.filter((r) => r.code !== 0).length,
    });
  }
  return { modes };
}

/**
 * `runs` rounds of one conformance run per mode, modes interleaved (container, in-cluster,
 * container, ...) so that drift on a shared machine weighs on both alike. A run without a ready
 * target has no figure to give: one line naming mode, run, exit code and log, never a silent gap.
 */
export async function kindBench(
  o: { runs: number; modes: readonly KindVaultMode[] },
  run: (mode: KindVaultMode, index: number) => Promise<KindRunOutput>,
): Promise<{ bench: KindBench; runs: KindRun[] }> {
  if (o.runs < 1) throw new RangeError(`kind runs must be at least 1 (got ${o.runs})`);
  if (o.modes.length === 0) throw new RangeError("no kind Vault mode to run");
  const runs: KindRun[] = [];
  for (let i = 0; i < o.runs; i++) {
    for (const mode of o.modes) {
      const out = await run(mode, i);
      const readyMs = parseKindReady(out.output);
      if (readyMs === undefined) {
        const why = /^error: (.+)$/m.exec(out.output)?.[1];
        throw new HarnessError(
          `kind bench: run ${i + 1} with Vault ${mode === "container" ? "as a container" : "in the cluster"} exited ${out.code} without a ready target${why ? ` (${why})` : ""}: see ${out.logFile}`,
        );
      }
      runs.push({ mode, code: out.code, wallMs: out.wallMs, readyMs, ...(out.totals ? { totals: out.totals } : {}) });
    }
  }
  return { bench: summarizeKind(runs), runs };
}

/** "container,in-cluster" -> the modes, each once. */
export function parseKindModes(text: string): KindVaultMode[] {
  const out = text.split(",").map((x) => x.trim());
  const bad = out.filter((m) => !(KIND_VAULT_MODES as readonly string[]).includes(m));
  if (out.length === 0 || bad.length) throw new RangeError(`--kind-vault must list ${KIND_VAULT_MODES.join(" and/or ")} (got "${text}")`);
  return [...new Set(out)] as KindVaultMode[];
}

export interface SideBySideRow {
  target: string;
  ready?: Stats;
  timeToVerdict?: Stats;
  totals?: CaseTotals;
}

/** The local and kind figures in one table (medians, min-max, n). */
export function formatSideBySide(rows: SideBySideRow[]): string {
  const s = (ms: number) => (ms / 1000).toFixed(2);
  const cell = (x?: Stats) => (x ? `${s(x.medianMs)}s (${s(x.minMs)}-${s(x.maxMs)}), n=${x.runs}` : "-");
  const cases = (t?: CaseTotals) => (t ? `${t.passed}/${t.failed}/${t.skipped}` : "-");
  const table = [
    ["target", "ready, median (min-max)", "time to verdict, median (min-max)", "cases passed/failed/skipped (last run)"],
    ...rows.map((r) => [r.target, cell(r.ready), cell(r.timeToVerdict), cases(r.totals)]),
  ];
  const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
  return table
    .map((row) =>
      row
        .map((v, c) => v.padEnd(widths[c]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** The kind rows of the side-by-side table. */
export function kindRows(kind: KindBench): SideBySideRow[] {
  return kind.modes.map((m) => {
    const last = m.totals.at(-1);
    return {
      target: `kind, Vault ${m.mode === "container" ? "as a container" : "in the cluster"}`,
      ready: m.ready,
      timeToVerdict: m.timeToVerdict,
      ...(last ? { totals: last } : {}),
    };
  });
}
