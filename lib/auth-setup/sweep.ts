import { ApiException } from "@kubernetes/client-node";
import { errorMessage } from "../errors.ts";
import type { Kube } from "../kube/client.ts";
import { isNotFound, RUN_LABEL } from "../kube/client.ts";
import { describeResponse, type VaultClient } from "../vault/client.ts";
import { runMark } from "./steps.ts";

/** What a sweep did: each object it removed, and each it found but could not remove, with why. */
export interface SweepResult {
  removed: string[];
  failed: { object: string; reason: string }[];
}

/**
 * Removes what one run created on a cluster and a Vault it does not own (the existing target),
 * found by run id alone: namespaces, ServiceAccounts, ClusterRoles and ClusterRoleBindings labelled with it, auth and secrets
 * mounts whose description is the run's mark, policies whose first line is the mark, and the
 * marked block a fixture case appended to the `default` policy. Suites remove their own objects;
 * this is what makes Ctrl-C (or a killed worker) leave nothing behind on your systems.
 * Reports what it removed, one line per object, and what it could not remove and why; an object
 * already gone (404) is neither. Nothing else is touched.
 */
export async function sweepRun(c: { kube: Kube; vault: VaultClient }, runId: string): Promise<SweepResult> {
  const mark = runMark(runId);
  const result: SweepResult = { removed: [], failed: [] };
  const selector = `${RUN_LABEL}=${runId}`;
  /** One Kubernetes delete: removed, already gone (404), or failed with the reason. */
  const kubeDelete = async (object: string, del: () => Promise<unknown>) => {
    try {
      await del();
      result.removed.push(object);
    } catch (err) {
      if (!isNotFound(err)) result.failed.push({ object, reason: kubeReason(err) });
    }
  };
  /** One Vault write or delete, judged by its status. */
  const vaultChange = async (object: string, method: string, path: string, body?: unknown) => {
    try {
      const res = await c.vault.request(method, path, body);
      if (res.status >= 200 && res.status <= 299) result.removed.push(object);
      else if (res.status !== 404) result.failed.push({ object, reason: describeResponse(res) });
    } catch (err) {
      result.failed.push({ object, reason: errorMessage(err) });
    }
  };

  const namespaces = await c.kube.core.listNamespace({ labelSelector: selector });
  const doomed = new Set<string>();
  for (const ns of namespaces.items) {
    if (!ns.metadata?.name || ns.metadata.deletionTimestamp) continue;
    const name = ns.metadata.name;
    await kubeDelete(`namespace ${name}`, () => c.kube.deleteNamespace(name));
    if (result.removed.includes(`namespace ${name}`)) doomed.add(name);
  }
  // ServiceAccounts the access probe planted in namespaces it does not own (kube-system, default, ...).
  const accounts = await c.kube.core.listServiceAccountForAllNamespaces({ labelSelector: selector });
  for (const sa of accounts.items) {
    const { name, namespace } = sa.metadata ?? {};
    if (!name || !namespace || doomed.has(namespace)) continue;
    await kubeDelete(`ServiceAccount ${namespace}/${name}`, () => c.kube.deleteServiceAccount(namespace, name));
  }
  const roles = await c.kube.rbac.listClusterRole({ labelSelector: selector });
  for (const r of roles.items) {
    const name = r.metadata?.name;
    if (name) await kubeDelete(`ClusterRole ${name}`, () => c.kube.rbac.deleteClusterRole({ name }));
  }
  const bindings = await c.kube.rbac.listClusterRoleBinding({ labelSelector: selector });
  for (const b of bindings.items) {
    const name = b.metadata?.name;
    if (name) await kubeDelete(`ClusterRoleBinding ${name}`, () => c.kube.rbac.deleteClusterRoleBinding({ name }));
  }

  for (const [list, kind] of [
    ["sys/auth", "auth mount"],
    ["sys/mounts", "secrets mount"],
  ] as const) {
    const res = await c.vault.must("GET", list);
    const table = (res.body?.data ?? res.body ?? {}) as Record<string, { description?: string }>;
    for (const [path, m] of Object.entries(table)) {
      if (m?.description !== mark) continue;
      await vaultChange(`${kind} ${path}`, "DELETE", `${list}/${path.replace(/\/$/, "")}`);
    }
  }

  const names = ((await c.vault.list("sys/policies/acl")).body?.data?.keys ?? []) as string[];
  for (const name of names) {
    if (name === "root") continue;
    const text = String((await c.vault.must("GET", `sys/policies/acl/${name}`)).body?.data?.policy ?? "");
    if (name === "default") {
      const restored = withoutMarkedBlock(text, mark);
      if (restored !== text)
        await vaultChange("the run's block in the default policy", "PUT", "sys/policies/acl/default", { policy: restored });
    } else if (text.startsWith(`# ${mark}\n`)) {
      await vaultChange(`policy ${name}`, "DELETE", `sys/policies/acl/${name}`);
    }
  }
  return result;
}

/** A refused Kubernetes call as one line: the status and the API server's message. */
function kubeReason(err: unknown): string {
  if (!(err instanceof ApiException)) return errorMessage(err).split("\n")[0] ?? "";
  let body: unknown = err.body;
  if (typeof body === "string") {
    try {
      body = JSON.parse(body);
    } catch {
      // not a Status object
    }
  }
  const message = body && typeof body === "object" ? (body as { message?: unknown }).message : undefined;
  return `HTTP ${err.code}${typeof message === "string" && message ? `: ${message}` : ""}`;
}

/** The policy text without the `# begin <mark>` ... `# end <mark>` block (and the newline before it). */
export function withoutMarkedBlock(text: string, mark: string): string {
  const begin = text.indexOf(`\n# begin ${mark}\n`);
  if (begin === -1) return text;
  const endLine = `# end ${mark}\n`;
  const end = text.indexOf(endLine, begin);
  if (end === -1) return text; // half a block: leave it to a person rather than guess
  return text.slice(0, begin) + text.slice(end + endLine.length);
}
