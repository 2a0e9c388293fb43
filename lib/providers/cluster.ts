import { AppsV1Api, type KubeConfig } from "@kubernetes/client-node";
import { waitFor } from "../wait.ts";
import type { Config } from "../config.ts";
import { rawGet } from "../kube/client.ts";
import { checkExecPlugin, loadKubeconfig, type LoadedKubeconfig } from "../kube/kubeconfig.ts";

/**
 * The existing target's cluster: KUBECONFIG (a list, merged as kubectl does), else the pod's
 * ServiceAccount when running in a pod, else ~/.kube/config (lib/kube/kubeconfig.ts), at the
 * chosen context. An exec credential plugin is run once here, so that a missing or failing one is
 * one line (exit 2) before anything starts. `text` is the one self-contained kubeconfig to hand to
 * other processes (written 0600: it holds credentials).
 */
export async function kubeconfigFrom(config: Pick<Config, "existing" | "home" | "env">): Promise<LoadedKubeconfig> {
  const { kubeconfig, context, inCluster } = config.existing;
  const loaded = loadKubeconfig({
    ...(kubeconfig ? { files: kubeconfig } : {}),
    ...(context ? { context } : {}),
    inCluster,
    home: config.home,
  });
  await checkExecPlugin(loaded, config.env);
  return loaded;
}
export interface ClusterFacts {
  /** The API server's gitVersion. */
  version: string;
  /** The issuer its discovery document names; "" when it serves none. */
  issuer: string;
}

/**
 * The facts every provider records about a cluster it reaches through a kubeconfig: its version
 * and the issuer its discovery document names. `fail` builds the error for an API server that
 * cannot be reached (default: the client's error as is) or answers /version with another status.
 */
export async function clusterFacts(
  kc: KubeConfig,
  fail: { unreachable?: (err: unknown) => Error; status: (status: number) => Error },
): Promise<ClusterFacts> {
  const version = await rawGet(kc, "/version").catch((err: unknown) => {
    throw fail.unreachable ? fail.unreachable(err) : err;
  });
  if (version.status !== 200) throw fail.status(version.status);
  const discovery = await rawGet(kc, "/.well-known/openid-configuration").catch(() => undefined);
  return {
    version: String(version.body.gitVersion ?? "unknown"),
    issuer: discovery?.status === 200 ? String(discovery.body.issuer ?? "") : "",
  };
}

/**
 * Waits until the cluster's DNS (the kube-system Deployments labelled k8s-app=kube-dns: CoreDNS in
 * kind and kubeadm clusters) has all its replicas available. A node that is Ready is not enough:
 * CoreDNS starts answering before its kubernetes plugin has listed the Services, and until then a
 * pod's lookup of kubernetes.default.svc is NXDOMAIN, so a Vault in a pod fails every TokenReview
 * (403 permission denied). CoreDNS's readiness probe is its `ready` plugin, which waits for that list.
 */
export async function waitForClusterDns(kc: KubeConfig, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const apps = kc.makeApiClient(AppsV1Api);
  let seen = "no Deployment labelled k8s-app=kube-dns in kube-system";
  await waitFor(
    async () => {
      const list = await apps.listNamespacedDeployment({ namespace: "kube-system", labelSelector: "k8s-app=kube-dns" });
      if (!list.items.length) return false;
      seen = list.items
        .map((d) => `${d.metadata?.name}: ${d.status?.availableReplicas ?? 0}/${d.spec?.replicas ?? 1} available`)
        .join(", ");
      return list.items.every((d) => (d.status?.availableReplicas ?? 0) >= (d.spec?.replicas ?? 1));
    },
    {
      what: "the cluster's DNS (kube-system, k8s-app=kube-dns)",
      timeoutMs,
      intervalMs: 500,
      evidence: async () => seen,
      ...(signal ? { signal } : {}),
    },
  );
}
