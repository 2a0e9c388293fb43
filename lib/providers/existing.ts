import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { Teardown } from "../cleanup.ts";
import type { Config } from "../config.ts";
import { HarnessError, UsageError, errorMessage } from "../errors.ts";
import { rawGet } from "../kube/client.ts";
import { log } from "../log.ts";
import { registerSecret } from "../redact.ts";
import type { TargetInfo } from "../target/info.ts";
import { VaultClient } from "../vault/client.ts";
import { newRunId } from "./local.ts";

/**
 * A cluster and a Vault that already exist (a managed cluster such as VKE, or a running local
 * target). Nothing is started; the suites create only namespaced objects labelled with the run
 * id, per-run ClusterRoleBindings and per-run auth mounts, and remove them again.
 */
export interface StartedExistingTarget extends AsyncDisposable {
  info: TargetInfo;
  startupMs: number;
  stop(): Promise<void>;
}

function kubeconfigFrom(config: Config): { kc: KubeConfig; path: string } {
  const kc = new KubeConfig();
  const path = config.existing.kubeconfig;
  try {
    if (path) kc.loadFromFile(path);
    else kc.loadFromDefault();
  } catch (err) {
    throw new UsageError(`cannot read kubeconfig ${path ?? "(default)"}: ${errorMessage(err).split("\n")[0]}`);
  }
  const context = config.existing.context;
  if (context) {
    if (!kc.getContexts().some((c) => c.name === context)) {
      throw new UsageError(
        `kubeconfig ${path ?? "(default)"} has no context "${context}" (has: ${
          kc
            .getContexts()
            .map((c) => c.name)
            .join(", ") || "none"
        })`,
      );
    }
    kc.setCurrentContext(context);
  }
  if (!kc.getCurrentCluster()) throw new UsageError(`kubeconfig ${path ?? "(default)"} has no current context: pass --context NAME`);
  return { kc, path: path ?? join(process.env.HOME ?? "", ".kube", "config") };
}

export async function attachExistingTarget(config: Config): Promise<StartedExistingTarget> {
  const started = Date.now();
  const { vaultAddr, vaultToken, vaultCACert } = config.existing;
  if (!vaultAddr || !vaultToken)
    throw new UsageError("the existing target needs VAULT_ADDR and VAULT_TOKEN (a token allowed to manage auth mounts and policies)");
  registerSecret(vaultToken);
  const { kc, path } = kubeconfigFrom(config);
  const cluster = kc.getCurrentCluster()!;
  const runId = newRunId();
  const t = new Teardown(`existing target ${runId}`).tieToSignals();
  try {
    // Kubernetes reachable, and its version.
    const kubeGet = (p: string) => rawGet(kc, p);
    const version = await kubeGet("/version").catch((err) => {
      throw new HarnessError(
        `cannot reach the Kubernetes API at ${cluster.server} (context ${kc.getCurrentContext()}): ${errorMessage(err)}`,
        { exitCode: 2 },
      );
    });
    if (version.status !== 200)
      throw new HarnessError(
        `the Kubernetes API at ${cluster.server} answered /version with HTTP ${version.status}: check the credentials of context ${kc.getCurrentContext()}`,
        { exitCode: 2 },
      );
    const discovery = await kubeGet("/.well-known/openid-configuration").catch(() => undefined);
    const issuer = discovery?.status === 200 ? String(discovery.body.issuer ?? "") : "";

    // Vault reachable, unsealed, and the token valid.
    const caCert = vaultCACert ? await readFile(vaultCACert, "utf8") : undefined;
    const vault = new VaultClient({ address: vaultAddr, token: vaultToken, caCert, timeoutMs: 10_000 });
    const health = await vault.read<{ version?: string; sealed?: boolean }>("sys/health").catch((err) => {
      throw new HarnessError(`cannot reach Vault at ${vaultAddr}: ${errorMessage(err)}`, { exitCode: 2 });
    });
    if (health.body?.sealed) throw new HarnessError(`Vault at ${vaultAddr} is sealed: unseal it first`, { exitCode: 2 });
    const self = await vault.read("auth/token/lookup-self");
    if (self.status !== 200)
      throw new HarnessError(`VAULT_TOKEN is not valid for ${vaultAddr} (lookup-self: HTTP ${self.status})`, { exitCode: 2 });

    const work = await mkdtemp(join(tmpdir(), `${runId}-`));
    await chmod(work, 0o700);
    t.defer("remove work dir", () => rm(work, { recursive: true, force: true }));
    const tokenFile = join(work, "vault-token");
    await writeFile(tokenFile, vaultToken, { mode: 0o600 });
    let caFile: string | undefined;
    if (caCert) {
      caFile = join(work, "vault-ca.crt");
      await writeFile(caFile, caCert, { mode: 0o600 });
    }
    const clusterCa = cluster.caData
      ? Buffer.from(cluster.caData, "base64").toString("utf8")
      : cluster.caFile
        ? await readFile(cluster.caFile, "utf8")
        : "";
    const kubeVersion = String(version.body.gitVersion ?? "unknown");
    const vaultVersion = String(health.body?.version ?? "unknown");
    const info: TargetInfo = {
      runId,
      target: "existing",
      flavor: config.flavor,
      kube: {
        kubeconfigPath: path,
        context: kc.getCurrentContext(),
        server: cluster.server,
        // Vault is assumed to reach the API server at the same address as the harness.
        hostForVault: config.existing.kubeHostForVault ?? cluster.server,
        caCertForVault: clusterCa,
        issuers: issuer ? [issuer] : [],
        apiAudiences: [],
        version: kubeVersion,
      },
      vault: { address: vaultAddr, tokenFile, ...(caFile ? { caCertFile: caFile } : {}), flavor: config.flavor, version: vaultVersion },
      versions: { kubernetes: kubeVersion, [config.flavor]: vaultVersion },
      artifactsDir: join(config.reportsDir, "artifacts", runId),
      logs: {},
    };
    log.info(
      "existing",
      `${runId}: attached to ${cluster.server} (context ${kc.getCurrentContext()}, kubernetes ${kubeVersion}) and ${config.flavor} ${vaultVersion} at ${vaultAddr}`,
    );
    return { info, startupMs: Date.now() - started, stop: () => t.run(), [Symbol.asyncDispose]: () => t.run() };
  } catch (err) {
    await t.run();
    throw err;
  }
}
