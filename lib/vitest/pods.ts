import { mkdtemp, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { HarnessError } from "../errors.ts";
import type { TargetInfo } from "../lifecycle/info.ts";

/**
 * Helpers of the suites whose pods a kubelet really runs (suites/pods.test.ts,
 * suites/in-cluster.test.ts): only the kind target has a kubelet (the local target runs an API
 * server and no node; an existing cluster's nodes may not reach the run's images or Vault).
 */

/** Why a pod suite cannot run on this target, or undefined when it can. */
export function podsSkipReason(info: TargetInfo): string | undefined {
  return info.target === "kind" ? undefined : "needs a kubelet: --target kind";
}

/** Why the in-cluster suite cannot run, or undefined when Vault runs in a pod of this cluster. */
export function inClusterSkipReason(info: TargetInfo): string | undefined {
  if (info.target !== "kind") return "needs Vault in a pod: --target kind --vault in-cluster";
  return info.vault.outsideCluster ? "needs Vault in a pod: --vault in-cluster (this run: --vault container)" : undefined;
}

/** The image the pods run: the run's Vault image (it has a shell and the vault/bao CLI). */
export function podImage(info: TargetInfo): string {
  const image = info.versions.vaultImage;
  if (!image) throw new HarnessError("the target names no Vault image (versions.vaultImage): pods need one to run");
  return image;
}

const KIND_CONTEXT = /^kind-/;

/**
 * Makes the run's Vault image available to the node without a registry: `kind load docker-image`
 * (a no-op when the node already has that image id, e.g. after the in-cluster Vault's own load).
 */
export async function loadPodImage(info: TargetInfo): Promise<void> {
  const cluster = info.kube.context?.replace(KIND_CONTEXT, "");
  if (!cluster) throw new HarnessError("the kind target info names no context: cannot tell the cluster to load the pod image into");
  const kind = process.env.KIND_BIN || "kind";
  // kind's image tar goes to a temp dir in the run's work dir (next to its kubeconfig), which the
  // run's teardown removes even when a Ctrl-C stops this worker before the finally below.
  const tmp = await mkdtemp(join(dirname(info.kube.kubeconfigPath), "kind-load-"));
  const res = await execa(kind, ["load", "docker-image", podImage(info), "--name", cluster], {
    reject: false,
    timeout: 300_000,
    env: { TMPDIR: tmp },
  }).finally(() => rm(tmp, { recursive: true, force: true }));
  if (res.exitCode !== 0) {
    throw new HarnessError(`${kind} load docker-image ${podImage(info)} --name ${cluster} failed (exit ${res.exitCode})`, {
      details: `${res.stderr}`.trim(),
    });
  }
}

/**
 * Vault's address as a pod of the cluster reaches it, as the target told (TargetInfo's
 * vault.addressForPods: the in-cluster Service, or the Vault container's address on kind's
 * network). undefined when it names none (the test then skips with that reason).
 */
export function vaultAddressForPods(info: TargetInfo): string | undefined {
  return info.vault.addressForPods;
}
