import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import { planExisting } from "../auth-setup/dry-run.ts";
import { sweepRun } from "../auth-setup/sweep.ts";
import { externalVaultSettings, type Config } from "../config.ts";
import { HarnessError, errorMessage } from "../errors.ts";
import { checkPolicies, policyParser } from "../fixtures/check.ts";
import { Kube } from "../kube/client.ts";
import type { PreflightContext, RunWorkspace, StartedTarget, TargetInfo, TargetProvider } from "../lifecycle/provider.ts";
import { log } from "../log.ts";
import { StartedProcess } from "../process.ts";
import { VaultClient } from "../vault/client.ts";
import type { VaultSettings } from "../vault/env.ts";
import { closeVaultClient, externalVaultClient, requireAddressAndToken, vaultConnection, vaultWhere } from "../vault/external.ts";
import { assertVaultReady, checkExternalVault } from "../vault/ready.ts";
import { clusterFacts, kubeconfigFrom, type ClusterFacts } from "./cluster.ts";
import { startDevVault } from "./components.ts";
import { provisionVault } from "./provision.ts";

export { kubeconfigFrom } from "./cluster.ts";

/**
 * A cluster and a Vault that already exist (a managed cluster such as VKE, or a running local
 * target). Nothing is started (but a throwaway dev Vault with `--vault process`); the suites
 * create only namespaced objects labelled with the run id, per-run ClusterRoleBindings and per-run
 * auth mounts, and remove them again; the teardown sweeps what they left.
 */
export const existingProvider: TargetProvider = {
  name: "existing",
  preflight: preflightExisting,
  plan: planExisting,
  start: attachExistingTarget,
};

/** The cluster as the kubeconfig names it, reachable, with its facts. */
interface Cluster extends ClusterFacts {
  kc: KubeConfig;
  /** One self-contained kubeconfig at the context (credentials: written 0600 into the run's work dir for the workers). */
  kubeconfig: string;
  server: string;
  context: string;
}

/** The Vault the run uses: its client (root or equivalent token), how it is reached, and how it runs. */
interface RunVault {
  client: VaultClient;
  token: string;
  /** An external Vault's client conventions (VAULT_CACERT, VAULT_NAMESPACE, ...); none for a dev server of the run. */
  settings: VaultSettings | undefined;
  /** A dev server this run started on this machine. */
  started: boolean;
  logs: Record<string, string>;
}

/**
 * Checks what can be checked before the run, creating nothing: the policies, an external Vault
 * and its token, the kubeconfig and the cluster; with `--vault process` the binary is provisioned.
 */
async function preflightExisting(config: Config, { policies }: PreflightContext): Promise<void> {
  await checkPolicies(policies, await policyParser(config), config); // only a binary at hand: provisions nothing
  if (config.vault.mode === "external") await checkExternalVault(config); // before (and without) the cluster
  requireVaultCredentials(config);
  const cluster = await connectCluster(config);
  await clusterCaPem(cluster.kc);
  if (config.vault.mode === "process") await provisionVault(config);
}

export async function attachExistingTarget(config: Config, ws: RunWorkspace): Promise<StartedTarget> {
  const started = Date.now();
  requireVaultCredentials(config);
  const cluster = await ws.step("cluster", () => connectCluster(config));
  const vault = await ws.step("vault", () => (config.vault.mode === "process" ? startProcessVault(config, ws) : externalVault(config)));
  if (vault.settings) ws.defer("close connections to Vault", () => closeVaultClient(vault.client)); // after the sweep (registered later)
  // Vault reachable, initialized, unsealed, and the token valid (lib/vault/ready.ts).
  const tokenFrom = vault.settings?.tokenFrom;
  const health = await ws.step("vault ready", () =>
    assertVaultReady(vault.client, { flavor: config.flavor, ...(tokenFrom ? { tokenFrom } : {}) }),
  );
  const tokenFile = await ws.writeSecret("vault-token", vault.token);
  // TLS, client certificate, namespace, proxy: paths of 0600 files and plain settings, for the workers.
  const connection = vault.settings ? await vaultConnection(ws, vault.settings) : {};
  const vaultVersion = String(health.version ?? "unknown");
  const info: TargetInfo = {
    runId: ws.runId,
    target: "existing",
    flavor: config.flavor,
    kube: {
      kubeconfigPath: await ws.writeSecret("kubeconfig", cluster.kubeconfig),
      context: cluster.context,
      server: cluster.server,
      // Vault is assumed to reach the API server at the same address as the harness.
      hostForVault: config.existing.kubeHostForVault ?? cluster.server,
      caCertForVault: await clusterCaPem(cluster.kc),
      issuers: cluster.issuer ? [cluster.issuer] : [],
      apiAudiences: [],
      version: cluster.version,
    },
    vault: {
      address: vault.client.address,
      tokenFile,
      ...connection,
      flavor: config.flavor,
      version: vaultVersion,
      ...(vault.started ? { outsideCluster: true } : {}),
    },
    versions: { kubernetes: cluster.version, [config.flavor]: vaultVersion },
    artifactsDir: ws.artifactsDir,
    logs: vault.logs,
  };
  sweepOnTeardown(ws, new Kube(cluster.kc), vault.client);
  log.info(
    "existing",
    `${ws.runId}: attached to ${cluster.server} (context ${cluster.context}, kubernetes ${cluster.version}) and ${config.flavor} ${vaultVersion} at ${vaultWhere({ address: vault.client.address, namespace: vault.client.opts.namespace })}`,
  );
  return ws.started(info, Date.now() - started);
}

function requireVaultCredentials(config: Config): void {
  if (config.vault.mode === "process") return;
  requireAddressAndToken(externalVaultSettings(config), "the existing target", {
    token: "a token allowed to manage auth mounts and policies",
    otherwise: "or --vault process to start a throwaway dev Vault",
  });
}

/** The kubeconfig's cluster, reachable, its version and issuer; one line and exit code 2 otherwise. */
async function connectCluster(config: Config): Promise<Cluster> {
  const { kc, text } = await kubeconfigFrom(config);
  const server = kc.getCurrentCluster()!.server;
  const context = kc.getCurrentContext();
  const facts = await clusterFacts(kc, {
    unreachable: (err) =>
      new HarnessError(`cannot reach the Kubernetes API at ${server} (context ${context}): ${errorMessage(err)}`, {
        exitCode: 2,
        cause: err,
      }),
    status: (status) =>
      new HarnessError(
        `the Kubernetes API at ${server} answered /version with HTTP ${status}: check the credentials of context ${context}`,
        {
          exitCode: 2,
        },
      ),
  });
  return { kc, kubeconfig: text, server, context, ...facts };
}

/** The cluster's CA, as Vault must use it for kubernetes_ca_cert. */
async function clusterCaPem(kc: KubeConfig): Promise<string> {
  const cluster = kc.getCurrentCluster()!;
  if (cluster.caData) return Buffer.from(cluster.caData, "base64").toString("utf8");
  return cluster.caFile ? readFile(cluster.caFile, "utf8") : "";
}

/** Your Vault, as the vault/bao CLI would reach it (VAULT_ADDR, VAULT_TOKEN, VAULT_CACERT, VAULT_NAMESPACE, ...: lib/vault/env.ts). */
async function externalVault(config: Config): Promise<RunVault> {
  const settings = externalVaultSettings(config);
  return {
    client: externalVaultClient(settings),
    token: settings.token!,
    settings,
    started: false,
    logs: {},
  };
}

/** `--vault process`: a throwaway dev Vault on this machine, pointed at the cluster; gone with the run. */
async function startProcessVault(config: Config, ws: RunWorkspace): Promise<RunVault> {
  const bin = await provisionVault(config);
  const token = ws.newRootToken();
  const name = config.flavor;
  const dev = await startDevVault({
    config,
    flavor: config.flavor,
    bin,
    work: ws.workDir,
    logDir: ws.logDir,
    token,
    timeout: 60_000,
    startProcess: async (spec) => {
      const p = await StartedProcess.start(spec);
      ws.defer(`stop ${spec.name}`, () => p.stop());
      return p;
    },
  });
  log.info("existing", `${ws.runId}: started ${config.flavor} ${dev.version} dev server at ${dev.address}`);
  return {
    client: new VaultClient({ address: dev.address, token, timeoutMs: 10_000 }),
    token,
    settings: undefined,
    started: true,
    logs: { [name]: join(ws.logDir, `${name}.log`) },
  };
}

/**
 * Last step of the teardown (registered last, so it runs first): whatever the suites left,
 * because they were interrupted or a worker died, is found by run id and removed; what cannot be
 * removed is named, with the reason.
 */
function sweepOnTeardown(ws: RunWorkspace, kube: Kube, vault: VaultClient): void {
  const runId = ws.runId;
  ws.defer("remove what the run left on the cluster and Vault", async () => {
    // Bounded: a hung API server must not hang the teardown (the Kubernetes client has no timeout of its own).
    let timer: NodeJS.Timeout | undefined;
    const swept = await Promise.race([
      sweepRun({ kube, vault }, runId),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new HarnessError("no answer within 60s; remove objects labelled with the run id by hand")), 60_000);
      }),
    ]).finally(() => clearTimeout(timer));
    const { removed, failed } = swept;
    if (removed.length) log.warn("existing", `${runId}: removed ${removed.length} object(s) the suites left: ${removed.join(", ")}`);
    else if (!failed.length) log.info("existing", `${runId}: swept; the suites left nothing`);
    if (failed.length)
      log.warn(
        "existing",
        `${runId}: could not remove ${failed.length} object(s) the suites left: ${failed.map((f) => `${f.object} (${f.reason})`).join(", ")}; remove them by hand`,
      );
  });
}
