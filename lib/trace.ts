import { openSync, writeSync } from "node:fs";
import { traceFileFromEnv } from "./config.ts";

/**
 * Opt-in trace of where a run waits (read by `npm run bench`, lib/bench.ts): with
 * VKC_TRACE_FILE=path, every process of a run (the main process and vitest's workers, which
 * inherit the variable) appends one span per line to that file (created 0600):
 * {"k":name,"s":start,"e":start+duration}, epoch milliseconds. Without the variable every hook is
 * a single falsy check and nothing is wrapped. A trace failure never fails the run.
 *
 * A span's name is one of a closed set, so that a trace can only ever hold these labels and
 * timestamps: never a URL, a path, a body or a token.
 *   vault: an HTTP call to Vault's API (/v1/...)
 *   kube:  a call to the Kubernetes API (the typed client, raw GETs, and the Kube helpers' waits
 *          for a controller, e.g. the token controller filling a Secret)
 *   http:  any other HTTP call of the harness (component health checks)
 *   start: the local target's start, first step to ready
 *   stop:  the local target's teardown
 */
export type SpanName = "vault" | "kube" | "http" | "start" | "stop";
export const SPAN_NAMES: readonly SpanName[] = ["vault", "kube", "http", "start", "stop"];

const TRACE_FILE = traceFileFromEnv(); // read once, when this module loads (vitest workers too)
let traceFd: number | undefined;

/** Wall clock in epoch milliseconds with sub-millisecond resolution, comparable across processes. */
export function traceClock(): number {
  return performance.timeOrigin + performance.now();
}

export function tracing(): boolean {
  return TRACE_FILE !== undefined;
}

/** Writes one span that started at `start` (traceClock) and lasted `durationMs` (default: until now). */
export function recordSpan(name: SpanName, start: number, durationMs: number = traceClock() - start): void {
  if (TRACE_FILE === undefined || !SPAN_NAMES.includes(name)) return;
  try {
    traceFd ??= openSync(TRACE_FILE, "a", 0o600);
    writeSync(traceFd, `{"k":"${name}","s":${start.toFixed(3)},"e":${(start + durationMs).toFixed(3)}}\n`);
  } catch {
    // tracing is best effort
  }
}

/** Runs `fn` and, when tracing, records a span until its promise settles. */
export function span<T>(name: SpanName, fn: () => Promise<T>): Promise<T> {
  if (TRACE_FILE === undefined) return fn();
  const s = traceClock();
  const p = fn();
  p.then(
    () => recordSpan(name, s),
    () => recordSpan(name, s),
  );
  return p;
}
