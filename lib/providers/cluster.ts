import type { KubeConfig } from "@kubernetes/client-node";
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
