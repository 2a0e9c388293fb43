import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import type { Config } from "../config.ts";
import { UsageError, errorMessage } from "../errors.ts";
import { rawGet } from "../kube/client.ts";

/** The user's kubeconfig (KUBECONFIG or the default) at the chosen context: the existing target's cluster. */
export function kubeconfigFrom(config: Pick<Config, "existing" | "home">): { kc: KubeConfig; path: string } {
  const kc = new KubeConfig();
  const path = config.existing.kubeconfig;
  try {
    if (path) kc.loadFromFile(path);
    else kc.loadFromDefault();
  } catch (err) {
    throw new UsageError(`cannot read kubeconfig ${path ?? "(default)"}: ${errorMessage(err).split("\n")[0]}`, { cause: err });
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
  return { kc, path: path ?? join(config.home, ".kube", "config") };
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
