import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onExitSync, Teardown } from "../cleanup.ts";
import type { Config, TargetName } from "../config.ts";
import { HarnessError, TargetStartError, UsageError } from "../errors.ts";
import { log } from "../log.ts";
import { registerSecret } from "../redact.ts";
import type { TargetInfo } from "./info.ts";
import type { StartedTarget } from "./provider.ts";

export function newRunId(): string {
  const t = new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14);
  return `vkc-${t}-${randomBytes(3).toString("hex")}`;
}

export interface WorkspaceOptions {
  target: TargetName;
  /** Artifacts go to <reportsDir>/artifacts/<run id>. */
  reportsDir: string;
  /** A run id announced before (the existing target's plan); default: a new one. */
  runId?: string;
  /** Keep the work dir after the run (kind's --keep: it holds the kubeconfig and token the user gets). */
  keep?: boolean;
}

export function workspaceOptions(config: Pick<Config, "target" | "reportsDir" | "keep">, runId?: string): WorkspaceOptions {
  return { target: config.target, reportsDir: config.reportsDir, ...(runId ? { runId } : {}), keep: config.keep };
}

/**
 * One run of one target: its run id, a 0700 work dir for secrets (keys, tokens, kubeconfig) and
 * component data, secret files written 0600, the artifacts dir (logs, diagnostics; kept after the
 * run, never secrets), and one teardown stack, tied to SIGINT/SIGTERM, that every provider
 * registers its cleanups on. Closing it runs them newest first, the work dir's removal last.
 */
export class RunWorkspace implements AsyncDisposable {
  readonly artifactsDir: string;
  readonly logDir: string;

  private constructor(
    readonly target: TargetName,
    readonly runId: string,
    readonly workDir: string,
    reportsDir: string,
    private readonly teardown: Teardown,
  ) {
    this.artifactsDir = join(reportsDir, "artifacts", runId);
    this.logDir = join(this.artifactsDir, "logs");
  }

  static async open(o: WorkspaceOptions): Promise<RunWorkspace> {
    const runId = o.runId || newRunId();
    const teardown = new Teardown(`${o.target} target ${runId}`).tieToSignals();
    try {
      const work = await mkdtemp(join(tmpdir(), `${runId}-`));
      await chmod(work, 0o700);
      if (!o.keep) {
        const forget = onExitSync(() => rmSync(work, { recursive: true, force: true }));
        teardown.defer("remove work dir", async () => {
          await rm(work, { recursive: true, force: true, maxRetries: 3 });
          forget();
        });
      }
      return new RunWorkspace(o.target, runId, work, o.reportsDir, teardown);
    } catch (err) {
      await teardown.run();
      throw err;
    }
  }

  /** Registers a cleanup; cleanups run newest first when the workspace closes. */
  defer(name: string, fn: () => unknown | Promise<unknown>): void {
    this.teardown.defer(name, fn);
  }

  /** The component logs' directory, created. */
  async ensureLogDir(): Promise<string> {
    await mkdir(this.logDir, { recursive: true });
    return this.logDir;
  }

  /** Writes `content` to `<work dir>/<name>`, mode 0600; returns the path. */
  async writeSecret(name: string, content: string): Promise<string> {
    const path = join(this.workDir, name);
    await writeFile(path, content, { mode: 0o600 });
    await chmod(path, 0o600); // mode is masked by umask on create; be explicit
    return path;
  }

  /** A fresh root token for a dev Vault this run starts, registered for redaction. */
  newRootToken(): string {
    return registerSecret(`vkc-root-${randomBytes(18).toString("base64url")}`);
  }

  /**
   * Runs one named step of a target's start. A step that fails with a harness error becomes a
   * TargetStartError naming target and step (same message, exit code and evidence); bad input
   * (UsageError) and bugs (any other error) pass unchanged.
   */
  async step<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const t0 = Date.now();
    try {
      const v = await fn();
      log.debug(this.target, `${this.runId}: ${name}: done in ${Date.now() - t0} ms`);
      return v;
    } catch (err) {
      if (err instanceof UsageError || err instanceof TargetStartError || !(err instanceof HarnessError)) throw err;
      throw new TargetStartError(this.target, name, { cause: err });
    }
  }

  /** The started target this workspace belongs to: stopping it closes the workspace. */
  started(
    info: TargetInfo,
    startupMs: number,
    extra: Pick<StartedTarget, "watch" | "onFailure"> & { wrapStop?: (close: () => Promise<void>) => Promise<void> } = {},
  ): StartedTarget {
    const { wrapStop, ...hooks } = extra;
    const stop = () => (wrapStop ? wrapStop(() => this.close()) : this.close());
    return { info, startupMs, ...hooks, stop, [Symbol.asyncDispose]: stop };
  }

  /** Runs the teardown stack (once; later calls wait for the first). */
  close(): Promise<void> {
    return this.teardown.run();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Opens a workspace and runs `start` in it; a failing start closes it again (nothing is left). */
export async function inWorkspace<T>(o: WorkspaceOptions, start: (ws: RunWorkspace) => Promise<T>): Promise<T> {
  const ws = await RunWorkspace.open(o);
  try {
    return await start(ws);
  } catch (err) {
    await ws.close();
    throw err;
  }
}
