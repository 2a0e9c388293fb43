/**
 * Errors meant for the person running the harness. `HarnessError` carries a one-line message
 * (what went wrong and how to fix it) and an exit code; scripts print only that line unless
 * `--debug` is given. Everything else is a bug and keeps its stack.
 */
export class HarnessError extends Error {
  readonly exitCode: number;
  /** Extra lines of evidence (a log tail, an error body) shown below the one-line message. */
  readonly details: string | undefined;

  constructor(message: string, opts: { cause?: unknown; exitCode?: number; details?: string } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "HarnessError";
    this.exitCode = opts.exitCode ?? 1;
    this.details = opts.details;
  }
}

/** Bad flags, config, fixtures or environment: exit code 2 by convention. */
export class UsageError extends HarnessError {
  constructor(message: string, opts: { cause?: unknown; details?: string } = {}) {
    super(message, { ...opts, exitCode: 2 });
    this.name = "UsageError";
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** The message chain of an error and its causes, one line. */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let i = 0; cur !== undefined && cur !== null && i < 6; i++) {
    const msg = errorMessage(cur);
    if (!parts.some((p) => p.includes(msg))) parts.push(msg);
    cur = cur instanceof Error ? (cur as Error & { cause?: unknown }).cause : undefined;
  }
  return parts.join(": ");
}
