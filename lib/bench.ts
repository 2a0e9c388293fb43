import { SPAN_NAMES, type SpanName } from "./trace.ts";

/** Benchmark statistics and formatting for `npm run bench`; the trace it reads is written by lib/trace.ts. */

/** Median and spread of repeated measurements (milliseconds). */
export interface Stats {
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  samplesMs: number[];
}

export function stats(samples: number[]): Stats {
  if (samples.length === 0) throw new Error("no samples");
  const s = [...samples].sort((a, b) => a - b);
  return {
    runs: s.length,
    medianMs: Math.round(median(s)),
    minMs: Math.round(s[0]!),
    maxMs: Math.round(s[s.length - 1]!),
    samplesMs: samples.map(Math.round),
  };
}

export async function measure(runs: number, fn: () => Promise<void>): Promise<Stats> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  return stats(samples);
}

/** The median of numbers (mean of the two middle ones for an even count). */
export function median(values: number[]): number {
  if (values.length === 0) throw new Error("no values");
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * The p-th percentile (0 < p <= 100) by the nearest-rank method: the smallest sample such that
 * at least p% of the samples are less than or equal to it. Always one of the samples.
 */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) throw new Error("no values");
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile ${p} is not in (0, 100]`);
  const s = [...values].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)]!;
}

// ---- login load ------------------------------------------------------------------------------

export interface LoginOutcome {
  ok: boolean;
  /** Why a login failed, short and secret-free (e.g. "HTTP 403: permission denied"). */
  error?: string;
}

export interface LoadResult {
  /** Logins in flight at a time. */
  concurrency: number;
  logins: number;
  failures: number;
  /** Distinct failure reasons with their counts (at most 5 kinds). */
  failureReasons: Record<string, number>;
  /** Wall time of the whole load, first login sent to last answer. */
  durationMs: number;
  loginsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/**
 * Runs `rounds` sequential logins on each of `credentials.length` lanes at once (so that many
 * logins are in flight at a time) and measures each login's latency and the throughput of the
 * whole. A login that throws counts as a failure with the error's message as its reason.
 */
export async function runLoginLoad<C>(
  credentials: C[],
  rounds: number,
  login: (credential: C) => Promise<LoginOutcome>,
  clock: () => number = () => performance.now(),
): Promise<LoadResult> {
  if (credentials.length === 0) throw new Error("no credentials");
  if (!(rounds >= 1)) throw new RangeError(`rounds must be at least 1 (got ${rounds})`);
  const latencies: number[] = [];
  const reasons: Record<string, number> = {};
  let failures = 0;
  const lane = async (credential: C) => {
    for (let i = 0; i < rounds; i++) {
      const t0 = clock();
      let outcome: LoginOutcome;
      try {
        outcome = await login(credential);
      } catch (err) {
        outcome = { ok: false, error: err instanceof Error ? err.message : String(err) };
      }
      latencies.push(clock() - t0);
      if (!outcome.ok) {
        failures++;
        const why = (outcome.error ?? "failed").slice(0, 200);
        if (why in reasons || Object.keys(reasons).length < 5) reasons[why] = (reasons[why] ?? 0) + 1;
      }
    }
  };
  const start = clock();
  await Promise.all(credentials.map(lane));
  const durationMs = clock() - start;
  return {
    concurrency: credentials.length,
    logins: latencies.length,
    failures,
    failureReasons: reasons,
    durationMs: round1(durationMs),
    loginsPerSecond: round1(durationMs > 0 ? (latencies.length * 1000) / durationMs : 0),
    p50Ms: round1(percentile(latencies, 50)),
    p99Ms: round1(percentile(latencies, 99)),
    maxMs: round1(Math.max(...latencies)),
  };
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

/** "1,10,50" -> [1, 10, 50]; every entry a positive integer. */
export function parseCounts(text: string, what: string): number[] {
  const out = text.split(",").map((x) => x.trim());
  if (out.length === 0 || out.some((x) => !/^[1-9]\d*$/.test(x))) {
    throw new RangeError(`${what} must be a comma-separated list of positive integers (got "${text}")`);
  }
  return out.map(Number);
}

// ---- intervals -------------------------------------------------------------------------------

/** A wall-clock interval [start, end] in epoch milliseconds. */
export type Interval = [start: number, end: number];

/**
 * The union of intervals as sorted, disjoint intervals, clipped to `window` when given. Empty
 * and reversed intervals are dropped; touching intervals merge.
 */
export function mergeIntervals(intervals: Interval[], window?: Interval): Interval[] {
  const clipped: Interval[] = [];
  for (const [s0, e0] of intervals) {
    const s = window ? Math.max(s0, window[0]) : s0;
    const e = window ? Math.min(e0, window[1]) : e0;
    if (Number.isFinite(s) && Number.isFinite(e) && e > s) clipped.push([s, e]);
  }
  clipped.sort((a, b) => a[0] - b[0]);
  const out: Interval[] = [];
  for (const [s, e] of clipped) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/** Total length of the union of intervals (overlaps counted once), clipped to `window` when given. */
export function unionLength(intervals: Interval[], window?: Interval): number {
  return mergeIntervals(intervals, window).reduce((sum, [s, e]) => sum + (e - s), 0);
}

// ---- harness overhead ------------------------------------------------------------------------

/** What a trace interval waited on: a span name of lib/trace.ts (a closed set: labels and timestamps only). */
export type TraceKind = SpanName;
export const TRACE_KINDS: readonly TraceKind[] = SPAN_NAMES;

export interface TraceRecord {
  k: TraceKind;
  s: number;
  e: number;
}

/** Parses a trace (JSON lines); lines that are not well-formed records are counted, not fatal. */
export function parseTrace(text: string): { records: TraceRecord[]; malformed: number } {
  const records: TraceRecord[] = [];
  let malformed = 0;
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const r = JSON.parse(line) as Partial<TraceRecord>;
      if (TRACE_KINDS.includes(r.k as TraceKind) && typeof r.s === "number" && typeof r.e === "number" && r.e >= r.s) {
        records.push({ k: r.k as TraceKind, s: r.s, e: r.e });
      } else malformed++;
    } catch {
      malformed++;
    }
  }
  return { records, malformed };
}

export interface Overhead {
  wallMs: number;
  /** Union of every traced interval within the run: time something waited on Vault, Kubernetes or the target. */
  waitingMs: number;
  /** wallMs - waitingMs. */
  overheadMs: number;
  overheadPct: number;
  /** From spawn to the first traced interval (process start, tsx, config, provisioning check, vitest boot). */
  leadMs: number;
  /** From the end of the last traced interval to exit (vitest shutdown, reports, process exit). */
  tailMs: number;
  /** The rest of the overhead: gaps between traced intervals (suites' own work, polling pauses, worker start). */
  midMs: number;
  /** The longest gaps between traced intervals, as [offset from spawn, length] in ms. */
  longestGapsMs: Interval[];
  /** Union per kind (kinds overlap each other, so these do not add up to waitingMs). */
  byKindMs: Record<string, number>;
  records: number;
}

/** Harness overhead of one run: its wall time [spawn, exit] minus the union of its traced intervals. */
export function overhead(window: Interval, records: TraceRecord[]): Overhead {
  const wallMs = window[1] - window[0];
  const merged = mergeIntervals(
    records.map((r) => [r.s, r.e]),
    window,
  );
  const waitingMs = merged.reduce((sum, [s, e]) => sum + (e - s), 0);
  const overheadMs = wallMs - waitingMs;
  const leadMs = merged.length ? merged[0]![0] - window[0] : wallMs;
  const tailMs = merged.length ? window[1] - merged[merged.length - 1]![1] : 0;
  const gaps: Interval[] = [];
  for (let i = 1; i < merged.length; i++) gaps.push([merged[i - 1]![1] - window[0], merged[i]![0] - merged[i - 1]![1]]);
  gaps.sort((a, b) => b[1] - a[1]);
  const byKindMs: Record<string, number> = {};
  for (const k of TRACE_KINDS) {
    const ivs = records.filter((r) => r.k === k).map((r): Interval => [r.s, r.e]);
    if (ivs.length) byKindMs[k] = Math.round(unionLength(ivs, window));
  }
  return {
    wallMs: Math.round(wallMs),
    waitingMs: Math.round(waitingMs),
    overheadMs: Math.round(overheadMs),
    overheadPct: wallMs > 0 ? Math.round((overheadMs / wallMs) * 1000) / 10 : 0,
    leadMs: Math.round(leadMs),
    tailMs: Math.round(tailMs),
    midMs: Math.round(overheadMs - leadMs - tailMs),
    longestGapsMs: gaps.slice(0, 5).map(([at, len]): Interval => [Math.round(at), Math.round(len)]),
    byKindMs,
    records: records.length,
  };
}

// ---- the bench's result and its text ---------------------------------------------------------

export interface LoginBench {
  rounds: number;
  /** One JWT per service account, used for all its logins: the apiserver's 10 s token cache answers most TokenReviews. */
  reused: LoadResult[];
  /** A fresh TokenRequest JWT for every login, minted beforehand: every TokenReview verifies a new token. */
  fresh: LoadResult[];
}

export interface OverheadSummary {
  medianOverheadMs: number;
  medianOverheadPct: number;
  runs: Overhead[];
}

/** What `npm run bench` measured (reports/bench.json), in this key order. */
export interface BenchResult {
  machine: string;
  flavor: string;
  targetReady?: Stats;
  targetTeardown?: Stats;
  login?: LoginBench;
  conformanceTimeToVerdict?: Stats;
  conformanceOverhead?: OverheadSummary;
  matrixTimeToVerdict?: Stats;
  failedScriptRuns?: number;
}

export function summarizeOverhead(runs: Overhead[]): OverheadSummary {
  return {
    medianOverheadMs: Math.round(median(runs.map((o) => o.overheadMs))),
    medianOverheadPct: Math.round(median(runs.map((o) => o.overheadPct)) * 10) / 10,
    runs,
  };
}

/** Failed logins of the login bench (warm-up excluded). */
export function loginFailures(lb: LoginBench | undefined): number {
  return lb ? [...lb.reused, ...lb.fresh].reduce((n, r) => n + r.failures, 0) : 0;
}

/** The bench's figures as the lines it prints. */
export function formatBench(result: BenchResult): string {
  const s = (ms: number) => (ms / 1000).toFixed(2);
  const fmt = (x: Stats) => `median ${s(x.medianMs)}s (min ${s(x.minMs)}s, max ${s(x.maxMs)}s, n=${x.runs})`;
  const out: string[] = [`machine: ${result.machine}; flavor ${result.flavor}`];
  if (result.targetReady) {
    out.push(`local target time-to-ready:      ${fmt(result.targetReady)}`);
    out.push(`local target teardown:           ${fmt(result.targetTeardown!)}`);
  }
  if (result.login) {
    const lb = result.login;
    const row = (r: LoadResult) =>
      `  N=${String(r.concurrency).padEnd(3)} ${r.loginsPerSecond.toFixed(1).padStart(7)} logins/s  p50 ${r.p50Ms.toFixed(1).padStart(6)} ms  p99 ${r.p99Ms
        .toFixed(1)
        .padStart(6)} ms  ${r.logins} logins${r.failures ? `  ${r.failures} FAILED: ${JSON.stringify(r.failureReasons)}` : ""}`;
    out.push(`logins, each service account's JWT reused (${lb.rounds} rounds; N in flight):`, ...lb.reused.map(row));
    out.push(`logins, a fresh JWT for every login (TokenReview never cached):`, ...lb.fresh.map(row));
  }
  if (result.conformanceTimeToVerdict) {
    const o = result.conformanceOverhead!;
    out.push(`npm run conformance (warm, full): ${fmt(result.conformanceTimeToVerdict)}`);
    out.push(
      `  harness overhead (wall - time waiting on Vault/apiserver/target start+stop): median ${s(o.medianOverheadMs)}s, ${o.medianOverheadPct}%`,
    );
    for (const [i, r] of o.runs.entries()) {
      out.push(
        `    run ${i + 1}: wall ${s(r.wallMs)}s, waiting ${s(r.waitingMs)}s, overhead ${s(r.overheadMs)}s (${r.overheadPct}%): ` +
          `before first wait ${s(r.leadMs)}s, between waits ${s(r.midMs)}s, after last ${s(r.tailMs)}s`,
      );
    }
  }
  if (result.matrixTimeToVerdict) out.push(`npm run matrix (warm, all personas): ${fmt(result.matrixTimeToVerdict)}`);
  if (result.failedScriptRuns) out.push(`${result.failedScriptRuns} script run(s) exited non-zero: figures include them (see log above)`);
  return out.join("\n");
}
