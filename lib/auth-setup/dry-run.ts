import { readFile } from "node:fs/promises";
import type { Config } from "../config.ts";
import { HarnessError, errorMessage } from "../errors.ts";
import { log } from "../log.ts";
import { kubeconfigFrom } from "../providers/existing.ts";
import { newRunId } from "../providers/local.ts";
import { VaultClient } from "../vault/client.ts";
import { buildPlan, checkKubePermissions, checkVaultPermissions, formatChecks, formatPlan, type PermissionCheck } from "./plan.ts";

/**
 * Before a run on a cluster the harness does not own: fix the run id, print what will be
 * created. The provider (in vitest's globalSetup) picks the same run id up from VKC_RUN_ID.
 */
export async function announcePlan(config: Config): Promise<void> {
  if (config.target !== "existing") return;
  const runId = (process.env.VKC_RUN_ID ||= newRunId());
  const { kc } = kubeconfigFrom(config);
  const plan = await buildPlan({ runId, fixturesDir: config.fixturesDir });
  log.info("plan", formatPlan(plan, where(config, kc.getCurrentCluster()?.server ?? "?", kc.getCurrentContext())));
}

function where(config: Config, server: string, context: string) {
  return {
    cluster: `${server} (context ${context})`,
    vault: config.vault.mode === "process" ? "(a throwaway dev server this run starts)" : (config.existing.vaultAddr ?? "?"),
  };
}

/** `--dry-run`: the plan, and whether the credentials may carry it out. Creates nothing. Exit 0 when they may. */
export async function dryRun(config: Config): Promise<number> {
  const runId = newRunId();
  if (config.target === "kind") {
    const { kindClusterConfig, nodeImageFor, vaultImageFor, kindArgs, loadKindPins } = await import("../providers/kind-plan.ts");
    const node = nodeImageFor({ kubeVersion: config.kind.kubeVersion, image: config.kind.nodeImage });
    const image = vaultImageFor(config.flavor, config.vault.image);
    process.stdout.write(
      [
        `plan of run ${runId} (kind ${node.kind ?? loadKindPins().kind}):`,
        `  kind ${kindArgs.create({ name: runId, image: node.image, configFile: "<run dir>/kind-config.yaml", kubeconfig: "<run dir>/kubeconfig" }).join(" ")}`,
        `  Vault: ${image} ${config.vault.mode === "in-cluster" ? "as a Deployment in the cluster" : "as a container on kind's network"}`,
        `  afterwards: ${config.keep ? "kept (--keep)" : `kind delete cluster --name ${runId}, the container removed`}`,
        `  kind-config.yaml:`,
        kindClusterConfig({ name: runId, image: node.image, issuer: config.issuer }).replace(/^/gm, "    "),
      ].join("\n") + "\n",
    );
    return 0;
  }
  const { kc } = kubeconfigFrom(config);
  const server = kc.getCurrentCluster()?.server ?? "?";
  const plan = await buildPlan({ runId, fixturesDir: config.fixturesDir });
  const out: string[] = [formatPlan(plan, where(config, server, kc.getCurrentContext()))];
  const checks: PermissionCheck[] = [];
  try {
    const kube = await checkKubePermissions(kc);
    checks.push(...kube);
    out.push(formatChecks(`  permissions of context ${kc.getCurrentContext()}:`, kube));
  } catch (err) {
    throw new HarnessError(`cannot check permissions on ${server}: ${errorMessage(err).split("\n")[0]}`, { exitCode: 2 });
  }
  if (config.vault.mode !== "process") {
    const { vaultAddr, vaultToken, vaultCACert } = config.existing;
    if (!vaultAddr || !vaultToken)
      throw new HarnessError("the existing target needs VAULT_ADDR and VAULT_TOKEN, or --vault process", { exitCode: 2 });
    const caCert = vaultCACert ? await readFile(vaultCACert, "utf8") : undefined;
    const vault = new VaultClient({ address: vaultAddr, token: vaultToken, caCert, timeoutMs: 10_000 });
    const v = await checkVaultPermissions(vault, runId).catch((err) => {
      throw new HarnessError(`cannot check the token's capabilities at ${vaultAddr}: ${errorMessage(err)}`, { exitCode: 2 });
    });
    checks.push(...v);
    out.push(formatChecks(`  capabilities of VAULT_TOKEN at ${vaultAddr}:`, v));
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
