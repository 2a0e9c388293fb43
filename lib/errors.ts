/**
 * The exit codes of every command, one contract (README "Exit codes") so that CI can tell a
 * negative verdict from bad input from a run that broke. A script's body returns `ok` or
 * `failed`; a thrown error maps to `usage` (UsageError) or `infra` (any other error: runScript).
 */
export const EXIT = {
  /** Every case passed; no difference, finding or regression. */
  ok: 0,
  /** The verdict is negative: a case failed, or a diff found what its command gates on. Never from a thrown error. */
  failed: 1,
  /** Bad input, before anything was judged: flags, config, files, fixtures, credentials, a Vault or cluster that does not answer. */
  usage: 2,
  /** No verdict: the target could not start, or an infrastructure call failed or timed out (or the harness itself failed). */
  infra: 3,
  /** Interrupted (lib/cleanup.ts): 128 + SIGINT. */
  interrupted: 130,
  /** Terminated (lib/cleanup.ts): SIGTERM and SIGHUP both exit 128 + SIGTERM. */
  terminated: 143,
} as const;

/**
 * Errors meant for the person running the harness. `HarnessError` carries a one-line message
 * (what went wrong and how to fix it) and an exit code; scripts print only that line unless
 * `--debug` is given. Everything else is a bug and keeps its stack.
 *
 * The exit code is EXIT.infra (3) unless given: an error that stops a command before its verdict
 * is never "a case failed" (1). Bad input is UsageError (2).
 */
export class HarnessError extends Error {
  readonly exitCode: number;
  /** Extra lines of evidence (a log tail, an error body) shown below the one-line message. */
  readonly details: string | undefined;

  constructor(message: string, opts: { cause?: unknown; exitCode?: number; details?: string } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "HarnessError";
    this.exitCode = opts.exitCode ?? EXIT.infra;
    this.details = opts.details;
  }
}

/** Bad flags, config, fixtures or environment: exit code 2 (EXIT.usage). */
export class UsageError extends HarnessError {
  constructor(message: string, opts: { cause?: unknown; details?: string } = {}) {
    super(message, { ...opts, exitCode: EXIT.usage });
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

/** Keeps what an underlying HarnessError carries (exit code, evidence lines) when it is wrapped. */
function carried(cause: unknown): { exitCode?: number; details?: string } {
  return cause instanceof HarnessError ? { exitCode: cause.exitCode, ...(cause.details ? { details: cause.details } : {}) } : {};
}

/**
 * A component could not bind a port it was given: another process took it between the harness
 * picking it free and the component binding it. Recognised by probing the port (lib/ports.ts),
 * never by reading the component's log; the local provider retries such a start with new ports.
 * The message is the failed start's own.
 */
export class PortInUseError extends HarnessError {
  readonly component: string;
  readonly ports: number[];

  constructor(component: string, ports: number[], opts: { cause: unknown }) {
    super(errorMessage(opts.cause), { cause: opts.cause, ...carried(opts.cause) });
    this.name = "PortInUseError";
    this.component = component;
    this.ports = ports;
  }
}

/** Why a command of the kind provider (kind, docker, podman) failed. */
export type KindFailure = "not-found" | "timeout" | "exit";

/** A kind, docker or podman command failed; `failure` says how (control flow reads it, never the message). */
export class KindError extends HarnessError {
  readonly command: string;
  readonly failure: KindFailure;
  /** The command's exit status, when it ran and exited non-zero. */
  readonly status: number | undefined;

  constructor(message: string, opts: { command: string; failure: KindFailure; status?: number; cause?: unknown; details?: string }) {
    super(message, { cause: opts.cause, ...(opts.details ? { details: opts.details } : {}) });
    this.name = "KindError";
    this.command = opts.command;
    this.failure = opts.failure;
    this.status = opts.status;
  }
}

/**
 * A named step of starting a target failed (`etcd`, `kind create cluster`, ...). The message,
 * exit code and evidence are the underlying error's, so the user sees the same line; `target`
 * and `step` say where, and `cause` keeps the original.
 */
export class TargetStartError extends HarnessError {
  readonly target: string;
  readonly step: string;

  constructor(target: string, step: string, opts: { cause: unknown }) {
    super(errorMessage(opts.cause), { cause: opts.cause, ...carried(opts.cause) });
    this.name = "TargetStartError";
    this.target = target;
    this.step = step;
  }
}
