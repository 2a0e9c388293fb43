import type { Config } from "../config.ts";
import { checkFixtureFiles, checkPolicies, policyParser } from "../fixtures/check.ts";
import type { StartedTarget } from "./provider.ts";
import { providerFor } from "./registry.ts";
import { inWorkspace, workspaceOptions } from "./workspace.ts";

export type { StartedTarget, TargetProvider } from "./provider.ts";
// Provisioning lives with the providers that need it; re-exported for the scripts.
export { componentsFor, provisionLocal, provisionVault, versionChoice } from "../providers/provision.ts";

/**
 * Before vitest starts: the fixtures, then the provider's own checks (the local target provisions
 * its binaries with progress; an existing cluster and Vault must be reachable and usable; kind
 * needs its tools), so that bad input is one clear line and exit code 2 from the script instead
 * of a failed test run. Starts nothing and leaves nothing behind.
 */
export async function preflight(config: Config): Promise<void> {
  // Fixtures first (cases, reviewer manifest, policy files): bad input whatever the target.
  const policies = checkFixtureFiles(config.fixturesDir);
  // Attached to a running target (env:up's file): nothing of a provider to check.
  if (config.targetInfoFile) return checkPolicies(policies, await policyParser(config), config);
  await (await providerFor(config.target)).preflight(config, { policies });
}

/**
 * config -> provider -> started target, in a run workspace of its own (run id, work dir, secret
 * files, artifacts, teardown). A start that fails closes the workspace: nothing is left.
 */
export async function startTarget(config: Config): Promise<StartedTarget> {
  const provider = await providerFor(config.target);
  return inWorkspace(workspaceOptions(config, config.runId), (ws) => provider.start(config, ws));
}

export { readTargetInfo } from "./info.ts";
