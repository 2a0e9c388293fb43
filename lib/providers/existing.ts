import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { Teardown } from "../cleanup.ts";
import type { Config } from "../config.ts";
import { HarnessError, UsageError, errorMessage } from "../errors.ts";
import { Kube, rawGet } from "../kube/client.ts";
import { sweepRun } from "../auth-setup/sweep.ts";
import { log } from "../log.ts";
import { registerSecret } from "../redact.ts";
import type { TargetInfo } from "../lifecycle/info.ts";
import { VaultClient } from "../vault/client.ts";
import { assertVaultReady } from "../vault/ready.ts";
import { StartedProcess } from "../process.ts";
import { provisionVault } from "../lifecycle/start.ts";
import { newRunId, startDevVault } from "./local.ts";

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

export function kubeconfigFrom(config: Config): { kc: KubeConfig; path: string } {
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

/**
 * @param o.preflight only check what can be checked before the run (kubeconfig, cluster, an
 *   external Vault and its token; with `--vault process` the binary is provisioned, not started).
 */
export async function attachExistingTarget(config: Config, o: { preflight?: boolean } = {}): Promise<StartedExistingTarget> {
  const started = Date.now();
  const startVault = config.vault.mode === "process";
  let { vaultAddr, vaultToken } = config.existing;
  const { vaultCACert } = config.existing;
  if (!startVault && (!vaultAddr || !vaultToken))
    throw new UsageError(
      "the existing target needs VAULT_ADDR and VAULT_TOKEN (a token allowed to manage auth mounts and policies), or --vault process to start a throwaway dev Vault",
    );
  registerSecret(vaultToken);
  const { kc, path } = kubeconfigFrom(config);
  const cluster = kc.getCurrentCluster()!;
  const runId = process.env.VKC_RUN_ID || newRunId();
  const t = new Teardown(`existing target ${runId}`).tieToSignals();
  const logs: Record<string, string> = {};
  try {
    const work = await mkdtemp(join(tmpdir(), `${runId}-`));
    await chmod(work, 0o700);
    t.defer("remove work dir", () => rm(work, { recursive: true, force: true }));
    const artifactsDir = join(config.reportsDir, "artifacts", runId);

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

    if (startVault && o.preflight) {
      await provisionVault(config);
      await t.run();
      return { info: undefined as unknown as TargetInfo, startupMs: 0, stop: () => t.run(), [Symbol.asyncDispose]: () => t.run() };
    }
    if (startVault) {
      // A throwaway dev Vault on this machine, pointed at the cluster; gone with the run.
      const bin = await provisionVault(config);
      vaultToken = registerSecret(`vkc-root-${randomBytes(18).toString("base64url")}`);
      const name = config.flavor === "openbao" ? "openbao" : "vault";
      logs[name] = join(artifactsDir, "logs", `${name}.log`);
      const started = await startDevVault({
        flavor: config.flavor,
        bin,
        work,
        logDir: join(artifactsDir, "logs"),
        token: vaultToken,
        timeout: 60_000,
        startProcess: async (spec) => {
          const p = await StartedProcess.start(spec);
          t.defer(`stop ${spec.name}`, () => p.stop());
          return p;
        },
      });
      vaultAddr = started.address;
      log.info("existing", `${runId}: started ${config.flavor} ${started.version} dev server at ${vaultAddr}`);
    }
    // Vault reachable, initialized, unsealed, and the token valid (lib/vault/ready.ts).
    const caCert = vaultCACert ? await readFile(vaultCACert, "utf8") : undefined;
    const vault = new VaultClient({ address: vaultAddr!, token: vaultToken!, caCert, timeoutMs: 10_000 });
    const health = await assertVaultReady(vault, { flavor: config.flavor });

    const tokenFile = join(work, "vault-token");
    await writeFile(tokenFile, vaultToken!, { mode: 0o600 });
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
    const vaultVersion = String(health.version ?? "unknown");
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
      vault: {
        address: vaultAddr!,
        tokenFile,
        ...(caFile ? { caCertFile: caFile } : {}),
        flavor: config.flavor,
        version: vaultVersion,
        ...(startVault ? { outsideCluster: true } : {}),
      },
      versions: { kubernetes: kubeVersion, [config.flavor]: vaultVersion },
      artifactsDir,
      logs,
    };
    // Last step of the teardown (registered last, so it runs first): whatever the suites left,
    // because they were interrupted or a worker died, is found by run id and removed.
    const kube = new Kube(kc);
    t.defer("remove what the run left on the cluster and Vault", async () => {
      // Bounded: a hung API server must not hang the teardown (the Kubernetes client has no timeout of its own).
      let timer: NodeJS.Timeout | undefined;
      const left = await Promise.race([
        sweepRun({ kube, vault }, runId),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("no answer within 60s; remove objects labelled with the run id by hand")), 60_000);
        }),
      ]).finally(() => clearTimeout(timer));
      if (left.length) log.warn("existing", `${runId}: removed ${left.length} object(s) the suites left: ${left.join(", ")}`);
      else log.info("existing", `${runId}: swept; the suites left nothing`);
    });
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
