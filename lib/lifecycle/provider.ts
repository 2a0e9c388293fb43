import type { Config, TargetName } from "../config.ts";
import type { PolicyToCheck } from "../fixtures/check.ts";
import type { TargetInfo } from "./info.ts";
import type { ComponentDeath } from "./watch.ts";
import type { RunWorkspace } from "./workspace.ts";

// Everything a provider needs from the lifecycle layer comes through this file.
export type { TargetInfo } from "./info.ts";
export type { ComponentDeath } from "./watch.ts";
export { inWorkspace, RunWorkspace } from "./workspace.ts";

/**
 * The contract between the lifecycle (lib/lifecycle/start.ts) and a target provider
 * (lib/providers/*). A provider imports this file and the workspace, never the lifecycle that
 * composes it; the registry (lib/lifecycle/registry.ts) names the providers by target.
 */

/** A target that is up: what the suites need to know, and how to take it down again. */
export interface StartedTarget extends AsyncDisposable {
  info: TargetInfo;
  startupMs: number;
  stop(): Promise<void>;
  /** Reports components that die while the target is in use (local target's processes). */
  watch?(fn: (d: ComponentDeath) => void): void;
  /** Called once after a run with failed cases, before stop (kind: export the cluster's logs). */
  onFailure?(): Promise<void>;
}

/** What the lifecycle has already checked and hands to a provider's preflight. */
export interface PreflightContext {
  /** The fixtures' policy files, read and shape-checked; the provider has their HCL parsed. */
  policies: PolicyToCheck[];
}

export interface TargetProvider {
  readonly name: TargetName;
  /**
   * Before the run, without starting anything or leaving anything behind: bad flags, fixtures,
   * tools or credentials become one line (UsageError, exit code 2); binaries are provisioned.
   */
  preflight(config: Config, ctx: PreflightContext): Promise<void>;
  /** `--dry-run`: print what a run would create (and check it may); returns the exit code. */
  plan?(config: Config, runId: string): Promise<number>;
  /**
   * Starts (or attaches to) the target inside `ws`: its work dir, secret files, artifacts and
   * teardown stack are the workspace's. On failure the caller closes the workspace, which undoes
   * every step taken so far.
   */
  start(config: Config, ws: RunWorkspace): Promise<StartedTarget>;
}
