import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { AuthorizationV1Api, type KubeConfig } from "@kubernetes/client-node";
import { CODE_ROOT } from "../config.ts";
import { RUN_LABEL } from "../kube/client.ts";
import type { VaultClient } from "../vault/client.ts";
import { loadManifests } from "./steps.ts";

/**
 * What a run creates on a cluster and a Vault it does not own (the existing target), printed
 * before anything is created; `--dry-run` prints it and checks the credentials may do it,
 * without creating anything.
 */
export interface Plan {
  runId: string;
  suites: string[];
  cases: string[];
  reviewer: { serviceAccount: string; binding: string; clusterRole: string };
}

export async function buildPlan(o: { runId: string; fixturesDir: string }): Promise<Plan> {
  // The suites as they ship: .test.ts in a clone, .test.js in the installed (compiled) package.
  const suites = (await readdir(join(CODE_ROOT, "suites")))
    .filter((f) => /\.test\.[jt]s$/.test(f))
    .map((f) => f.replace(/\.test\.[jt]s$/, ""));
  const cases = (await readdir(join(o.fixturesDir, "cases")).catch(() => [] as string[])).filter((f) => /\.ya?ml$/.test(f));
  const objs = await loadManifests(o.fixturesDir, "reviewer.yaml");
  const sa = objs.find((x) => x.kind === "ServiceAccount");
  const crb = objs.find((x) => x.kind === "ClusterRoleBinding") as
    { metadata?: { name?: string }; roleRef?: { name?: string } } | undefined;
  return {
    runId: o.runId,
    suites: suites.sort(),
    cases: cases.sort(),
    reviewer: {
      serviceAccount: sa?.metadata?.name ?? "?",
      binding: crb?.metadata?.name ?? "?",
      clusterRole: crb?.roleRef?.name ?? "?",
    },
  };
}

export function formatPlan(p: Plan, where: { cluster: string; vault: string }): string {
  const label = `${RUN_LABEL}=${p.runId}`;
  return [
    `plan of run ${p.runId}: ${p.suites.length} suites (${p.suites.join(", ")})${p.cases.length ? ` and ${p.cases.length} fixture case files` : ""}`,
    `  on Kubernetes ${where.cluster}, everything labelled ${label} and deleted afterwards:`,
    `    - namespaces named <prefix>-<suite tag>-<random> (several per suite); ServiceAccounts, token Secrets, Pods and TokenRequests only inside them`,
    `    - ClusterRoleBindings ${p.reviewer.binding}-<suffix> of ServiceAccount ${p.reviewer.serviceAccount} (in those namespaces) to ClusterRole ${p.reviewer.clusterRole}, one per reviewer`,
    `    - no existing object is read beyond /version and /.well-known/openid-configuration, none is changed`,
    `  on Vault ${where.vault}, each removed afterwards:`,
    `    - kubernetes auth mounts k8s-<suite tag>-<random>/ with their config and roles`,
    `    - ACL policies and KV secrets mounts (KV v1 and v2, policy suite and fixture cases), all named <prefix>-<suite tag>-<random>`,
    `    - child tokens from test logins (revoked with their mounts)`,
  ].join("\n");
}

export interface PermissionCheck {
  what: string;
  allowed: boolean;
  reason?: string;
}

/** SelfSubjectAccessReviews for what the run needs on the cluster. */
export async function checkKubePermissions(kc: KubeConfig): Promise<PermissionCheck[]> {
  const wants: { what: string; verb: string; resource: string; group?: string; subresource?: string; name?: string }[] = [
    { what: "create namespaces", verb: "create", resource: "namespaces" },
    { what: "delete namespaces", verb: "delete", resource: "namespaces" },
    { what: "create serviceaccounts", verb: "create", resource: "serviceaccounts" },
    { what: "create serviceaccounts/token (TokenRequest)", verb: "create", resource: "serviceaccounts", subresource: "token" },
    { what: "create secrets", verb: "create", resource: "secrets" },
    { what: "create pods", verb: "create", resource: "pods" },
    { what: "create clusterrolebindings", verb: "create", resource: "clusterrolebindings", group: "rbac.authorization.k8s.io" },
    { what: "delete clusterrolebindings", verb: "delete", resource: "clusterrolebindings", group: "rbac.authorization.k8s.io" },
    // Namespace selectors (bound_service_account_namespace_selector) and annotations as alias
    // metadata need the reviewer to get namespaces / serviceaccounts, which system:auth-delegator
    // does not grant: the suites create a ClusterRole for it, and RBAC lets a user grant only what
    // the user may do.
    { what: "create clusterroles", verb: "create", resource: "clusterroles", group: "rbac.authorization.k8s.io" },
    { what: "delete clusterroles", verb: "delete", resource: "clusterroles", group: "rbac.authorization.k8s.io" },
    { what: "get namespaces (for the reviewer of namespace selectors)", verb: "get", resource: "namespaces" },
    { what: "list serviceaccounts (the access probe's candidates)", verb: "list", resource: "serviceaccounts" },
    { what: "get serviceaccounts (for the reviewer of alias metadata)", verb: "get", resource: "serviceaccounts" },
    {
      what: "bind clusterrole system:auth-delegator",
      verb: "bind",
      resource: "clusterroles",
      group: "rbac.authorization.k8s.io",
      name: "system:auth-delegator",
    },
  ];
  return accessReviews(kc, wants);
}

/** One SelfSubjectAccessReview per wanted operation: may these credentials do it? */
export async function accessReviews(
  kc: KubeConfig,
  wants: { what: string; verb: string; resource: string; group?: string; subresource?: string; name?: string }[],
): Promise<PermissionCheck[]> {
  const api = kc.makeApiClient(AuthorizationV1Api);
  return Promise.all(
    wants.map(async (w) => {
      const res = await api.createSelfSubjectAccessReview({
        body: {
          spec: {
            resourceAttributes: {
              verb: w.verb,
              resource: w.resource,
              ...(w.group ? { group: w.group } : {}),
              ...(w.subresource ? { subresource: w.subresource } : {}),
              ...(w.name ? { name: w.name } : {}),
            },
          },
        },
      });
      return { what: w.what, allowed: res.status?.allowed === true, ...(res.status?.reason ? { reason: res.status.reason } : {}) };
    }),
  );
}

/** sys/capabilities-self for the Vault paths the run writes. */
export async function checkVaultPermissions(vault: VaultClient, runId: string): Promise<PermissionCheck[]> {
  const probe = `${runId}-probe`;
  const wants: { what: string; path: string; need: string[] }[] = [
    { what: "enable/disable auth mounts (sys/auth)", path: `sys/auth/${probe}`, need: ["sudo", "update"] },
    { what: "write/delete ACL policies", path: `sys/policies/acl/${probe}`, need: ["update", "delete"] },
    { what: "enable/disable secrets mounts (sys/mounts)", path: `sys/mounts/${probe}`, need: ["update", "delete"] },
    { what: "configure kubernetes auth and roles", path: `auth/${probe}/role/x`, need: ["update"] },
  ];
  const res = await vault.write<Record<string, string[]>>("sys/capabilities-self", { paths: wants.map((w) => w.path) });
  const caps = (res.body?.data ?? res.body ?? {}) as Record<string, string[]>;
  return wants.map((w) => {
    const have = caps[w.path] ?? [];
    const ok = have.includes("root") || w.need.every((n) => have.includes(n) || (n === "update" && have.includes("create")));
    return { what: w.what, allowed: ok, ...(ok ? {} : { reason: `capabilities on ${w.path}: ${have.join(", ") || "none"}` }) };
  });
}

export function formatChecks(title: string, checks: PermissionCheck[]): string {
  return [
    title,
    ...checks.map((c) => `    ${c.allowed ? "ok  " : "DENY"} ${c.what}${c.reason && !c.allowed ? ` (${c.reason})` : ""}`),
  ].join("\n");
}
