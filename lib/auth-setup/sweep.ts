import type { Kube } from "../kube/client.ts";
import { RUN_LABEL } from "../kube/client.ts";
import type { VaultClient } from "../vault/client.ts";
import { runMark } from "./steps.ts";

/**
 * Removes what one run created on a cluster and a Vault it does not own (the existing target),
 * found by run id alone: namespaces, ServiceAccounts, ClusterRoles and ClusterRoleBindings labelled with it, auth and secrets
 * mounts whose description is the run's mark, policies whose first line is the mark, and the
 * marked block a fixture case appended to the `default` policy. Suites remove their own objects;
 * this is what makes Ctrl-C (or a killed worker) leave nothing behind on your systems.
 * Returns what it removed, one line per object; nothing else is touched.
 */
export async function sweepRun(c: { kube: Kube; vault: VaultClient }, runId: string): Promise<string[]> {
  const mark = runMark(runId);
  const removed: string[] = [];
  const selector = `${RUN_LABEL}=${runId}`;

  const namespaces = await c.kube.core.listNamespace({ labelSelector: selector });
  for (const ns of namespaces.items) {
    if (!ns.metadata?.name || ns.metadata.deletionTimestamp) continue;
    await c.kube.deleteNamespace(ns.metadata.name);
    removed.push(`namespace ${ns.metadata.name}`);
  }
  // ServiceAccounts the access probe planted in namespaces it does not own (kube-system, default, ...).
  const accounts = await c.kube.core.listServiceAccountForAllNamespaces({ labelSelector: selector });
  for (const sa of accounts.items) {
    const { name, namespace } = sa.metadata ?? {};
    if (!name || !namespace || removed.includes(`namespace ${namespace}`)) continue;
    await c.kube.deleteServiceAccount(namespace, name).catch(() => undefined);
    removed.push(`ServiceAccount ${namespace}/${name}`);
  }
  const roles = await c.kube.rbac.listClusterRole({ labelSelector: selector });
  for (const r of roles.items) {
    if (!r.metadata?.name) continue;
    await c.kube.rbac.deleteClusterRole({ name: r.metadata.name }).catch(() => undefined);
    removed.push(`ClusterRole ${r.metadata.name}`);
  }
  const bindings = await c.kube.rbac.listClusterRoleBinding({ labelSelector: selector });
  for (const b of bindings.items) {
    if (!b.metadata?.name) continue;
    await c.kube.rbac.deleteClusterRoleBinding({ name: b.metadata.name }).catch(() => undefined);
    removed.push(`ClusterRoleBinding ${b.metadata.name}`);
  }

  for (const [list, kind] of [
    ["sys/auth", "auth mount"],
    ["sys/mounts", "secrets mount"],
  ] as const) {
    const res = await c.vault.must("GET", list);
    const table = (res.body?.data ?? res.body ?? {}) as Record<string, { description?: string }>;
    for (const [path, m] of Object.entries(table)) {
      if (m?.description !== mark) continue;
      await c.vault.must("DELETE", `${list}/${path.replace(/\/$/, "")}`);
      removed.push(`${kind} ${path}`);
    }
  }

  const names = ((await c.vault.list("sys/policies/acl")).body?.data?.keys ?? []) as string[];
  for (const name of names) {
    if (name === "root") continue;
    const text = String((await c.vault.must("GET", `sys/policies/acl/${name}`)).body?.data?.policy ?? "");
    if (name === "default") {
      const restored = withoutMarkedBlock(text, mark);
      if (restored !== text) {
        await c.vault.must("PUT", "sys/policies/acl/default", { policy: restored });
        removed.push("the run's block in the default policy");
      }
    } else if (text.startsWith(`# ${mark}\n`)) {
      await c.vault.must("DELETE", `sys/policies/acl/${name}`);
      removed.push(`policy ${name}`);
    }
  }
  return removed;
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
