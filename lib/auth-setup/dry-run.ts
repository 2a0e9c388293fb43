import { externalVaultSettings, type Config } from "../config.ts";
import { HarnessError, UsageError, errorMessage } from "../errors.ts";
import { providerFor } from "../lifecycle/registry.ts";
import { newRunId } from "../lifecycle/workspace.ts";
import { log } from "../log.ts";
import { kubeconfigFrom } from "../providers/cluster.ts";
import { closeVaultClient, externalVaultClient, requireAddressAndToken, vaultWhere } from "../vault/external.ts";
import { buildPlan, checkKubePermissions, checkVaultPermissions, formatChecks, formatPlan, type PermissionCheck } from "./plan.ts";

/**
 * Before a run on a cluster the harness does not own: fix the run id, print what will be
 * created. The provider starts with the same run id, `config.runId` (lib/lifecycle/start.ts).
 */
export async function announcePlan(config: Config): Promise<void> {
  if (config.target !== "existing") return;
  const runId = (config.runId ??= newRunId());
  const { kc } = await kubeconfigFrom(config);
  const plan = await buildPlan({ runId, fixturesDir: config.fixturesDir });
  log.info("plan", formatPlan(plan, where(config, kc.getCurrentCluster()?.server ?? "?", kc.getCurrentContext())));
}

function where(config: Config, server: string, context: string) {
  return {
    cluster: `${server} (context ${context})`,
    vault: config.vault.mode === "process" ? "(a throwaway dev server this run starts)" : vaultWhere(externalVaultSettings(config)),
  };
}

/** `--dry-run`: the target's plan, and whether the credentials may carry it out. Creates nothing. Exit 0 when they may. */
export async function dryRun(config: Config): Promise<number> {
  const provider = await providerFor(config.target);
  if (!provider.plan) throw new UsageError(`--dry-run does not apply to the ${config.target} target`);
  return provider.plan(config, newRunId());
}

/** The existing target's dry run: the plan, and a check of every permission it needs on the cluster and Vault. */
export async function planExisting(config: Config, runId: string): Promise<number> {
  // Your Vault's client conventions first (bad input before anything is reached): lib/vault/env.ts.
  const settings = config.vault.mode === "process" ? undefined : externalVaultSettings(config);
  if (settings)
    requireAddressAndToken(settings, "the existing target", {
      token: "a token allowed to manage auth mounts and policies",
      otherwise: "or --vault process",
    });
  const { kc } = await kubeconfigFrom(config);
  const server = kc.getCurrentCluster()?.server ?? "?";
  const plan = await buildPlan({ runId, fixturesDir: config.fixturesDir });
  const out: string[] = [formatPlan(plan, where(config, server, kc.getCurrentContext()))];
  const checks: PermissionCheck[] = [];
  try {
    const kube = await checkKubePermissions(kc);
    checks.push(...kube);
    out.push(formatChecks(`  permissions of context ${kc.getCurrentContext()}:`, kube));
  } catch (err) {
    throw new HarnessError(`cannot check permissions on ${server}: ${errorMessage(err).split("\n")[0]}`, { exitCode: 2, cause: err });
  }
  if (settings) {
    const vault = externalVaultClient(settings);
    const at = vaultWhere(settings);
    const v = await checkVaultPermissions(vault, runId)
      .catch((err) => {
        throw new HarnessError(`cannot check the token's capabilities at ${at}: ${errorMessage(err)}`, { exitCode: 2, cause: err });
      })
      .finally(() => closeVaultClient(vault));
    checks.push(...v);
    out.push(formatChecks(`  capabilities of ${settings.tokenFrom ?? "VAULT_TOKEN"} at ${at}:`, v));
  }
  const denied = checks.filter((c) => !c.allowed);
  out.push(
    denied.length
      ? `dry run: ${denied.length} of ${checks.length} permissions missing; a real run would fail`
      : `dry run: nothing created; the credentials allow all ${checks.length} operations the run needs`,
  );
  process.stdout.write(out.join("\n") + "\n");
  return denied.length ? 1 : 0;
}
