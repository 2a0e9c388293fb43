import type { TestProject } from "vitest/node";
import { loadConfig } from "../config.ts";
import { UsageError } from "../errors.ts";
import { log, setLogLevel } from "../log.ts";
import { describeVaultSettings } from "../vault/env.ts";
import { vaultSettingsFromTarget } from "../vault/external.ts";
import type { TargetInfo } from "../lifecycle/info.ts";
import { readTargetInfo } from "../lifecycle/info.ts";

declare module "vitest" {
  export interface ProvidedContext {
    target: TargetInfo;
    fixturesDir: string;
    slow: boolean;
  }
}

/**
 * vitest globalSetup of the conformance project: attach to the one target its script owns (or
 * an env:up target) and hand the suites only serializable facts. It never starts a target: the
 * script does, before vitest runs, so a target that cannot start is one line and its own exit code.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const config = loadConfig();
  if (config.debug) setLogLevel("debug");
  if (!config.targetInfoFile)
    throw new UsageError(
      "the conformance suites attach to a running target: run them with npm run conformance or npm test (which start one), or set VKC_TARGET_INFO to the file npm run env:up wrote",
    );
  const info: TargetInfo = await readTargetInfo(config.targetInfoFile);
  // This module graph is vitest's own: its log redacts the root token (and a proxy's credentials)
  // only if registered here. Reading the run's Vault settings also checks that their files are there.
  const vault = await vaultSettingsFromTarget(info);
  log.debug("setup", `Vault: ${describeVaultSettings(vault)}`);
  log.debug("setup", `attached to target ${info.runId} (${config.targetInfoFile})`);
  project.provide("target", info);
  project.provide("fixturesDir", config.fixturesDir);
  project.provide("slow", config.slow);
  return async () => undefined; // the target's owner (the script, or env:up) stops it
}
