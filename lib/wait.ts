import { HarnessError, errorMessage } from "./errors.ts";
import { formatDuration } from "./log.ts";

export interface WaitOptions {
  /** What we wait for, as it should read in an error: `kube-apiserver /readyz returns 200`. */
  what: string;
  timeoutMs: number;
  intervalMs?: number;
  /** Evidence for the error message when the wait fails, e.g. the tail of a log. */
  evidence?: () => string | Promise<string>;
  /** Stop early with this error (e.g. the process exited). */
  failFast?: () => Error | undefined;
  signal?: AbortSignal;
}

/**
 * Polls `probe` until it returns a value other than undefined/false. Every wait is named and
 * bounded; its error says what it waited for, for how long, the last probe error and evidence.
 */
export async function waitFor<T>(probe: () => Promise<T | undefined | false>, opts: WaitOptions): Promise<T> {
  const started = Date.now();
  const interval = opts.intervalMs ?? 100;
  let lastError = "";
  for (;;) {
    const fatal = opts.failFast?.();
    if (fatal) throw fatal;
    if (opts.signal?.aborted) throw new HarnessError(`aborted while waiting for ${opts.what}`);
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
      lastError = "";
    } catch (err) {
      lastError = errorMessage(err);
    }
    const elapsed = Date.now() - started;
    if (elapsed >= opts.timeoutMs) {
      const evidence = opts.evidence ? await opts.evidence() : undefined;
      throw new HarnessError(
        `${opts.what}: not ready after ${formatDuration(opts.timeoutMs)}${lastError ? ` (last error: ${lastError})` : ""}`,
        evidence ? { details: evidence } : {},
      );
    }
    await new Promise((r) => setTimeout(r, Math.min(interval, opts.timeoutMs - elapsed)));
  }
}
