/**
 * The cluster `npm run bench:audit` measures the audit on: generated namespaces (labels tier and
 * team) with ServiceAccounts, a reviewer, a kubernetes auth mount and 20 roles of mixed shapes.
 * Built on a local target of the bench's own (everything goes with the target).
 */
import type { TargetInfo } from "../lifecycle/info.ts";
import {
  authConfigFor,
  enableKubernetesAuth,
  enableKv,
  writeAuthConfig,
  writePolicy,
  writeRole,
  type Clients,
} from "../auth-setup/steps.ts";

export const AUDIT_BENCH_MOUNT = "k8s-bench";

async function pool<T>(items: T[], limit: number, fn: (t: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) await fn(items[i]!, i);
    }),
  );
}

/** 30 namespaces (labels tier=<0..2>, team=<even|odd>), 9 named ServiceAccounts each plus `default`: 300. */
async function buildNamespaces(c: Clients, namespaces: number, perNamespace: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < namespaces; i++)
    names.push(`bench-${i % 3 === 0 ? "prod" : i % 3 === 1 ? "stage" : "dev"}-${String(i).padStart(2, "0")}`);
  await pool(names, 8, async (ns, i) => {
    await c.kube.core.createNamespace({ body: { metadata: { name: ns, labels: { tier: String(i % 3), team: i % 2 ? "odd" : "even" } } } });
    for (let j = 0; j < perNamespace - 1; j++) await c.kube.createServiceAccount(ns, j < 3 ? `web-${j}` : j < 6 ? `api-${j}` : `job-${j}`);
  });
  return names;
}

/** 20 roles: exact, name globs, namespace globs, `*`, selectors, a CIDR-bound one, an audience. */
function roles(ns: string[]): Record<string, Record<string, unknown>> {
  const r: Record<string, Record<string, unknown>> = {};
  for (let i = 0; i < 6; i++)
    r[`exact-${i}`] = {
      bound_service_account_names: [`web-${i % 3}`],
      bound_service_account_namespaces: [ns[i]!],
      token_policies: [`p${i % 5}`],
    };
  r["glob-web"] = { bound_service_account_names: ["web-*"], bound_service_account_namespaces: [ns[0]!, ns[1]!], token_policies: ["p1"] };
  r["glob-suffix"] = { bound_service_account_names: ["*-4"], bound_service_account_namespaces: [ns[2]!], token_policies: ["p2"] };
  r["glob-both"] = { bound_service_account_names: ["*pi*"], bound_service_account_namespaces: [ns[3]!], token_policies: ["p3"] };
  r["glob-job"] = { bound_service_account_names: ["job-*"], bound_service_account_namespaces: ["bench-prod-*"], token_policies: ["p4"] };
  r["ns-prod"] = { bound_service_account_names: ["api-3"], bound_service_account_namespaces: ["bench-prod-*"], token_policies: ["p0"] };
  r["ns-suffix"] = { bound_service_account_names: ["web-0"], bound_service_account_namespaces: ["*-1*"], token_policies: ["p1"] };
  r["ns-any"] = { bound_service_account_names: ["default"], bound_service_account_namespaces: ["*"], token_policies: ["p2"] };
  r["name-any"] = { bound_service_account_names: ["*"], bound_service_account_namespaces: [ns[4]!], token_policies: ["p3"] };
  r["anyone"] = { bound_service_account_names: ["*"], bound_service_account_namespaces: ["*"], token_policies: ["p4"] };
  r["sel-tier0"] = {
    bound_service_account_names: ["web-1"],
    bound_service_account_namespace_selector: JSON.stringify({ matchLabels: { tier: "0" } }),
    token_policies: ["p0", "p1"],
  };
  r["sel-odd"] = {
    bound_service_account_names: ["api-*"],
    bound_service_account_namespace_selector: JSON.stringify({ matchLabels: { team: "odd" } }),
    token_policies: ["p2"],
  };
  r["sel-expr"] = {
    bound_service_account_names: ["job-7"],
    bound_service_account_namespace_selector: JSON.stringify({ matchLabels: { team: "even", tier: "1" } }),
    token_policies: ["p3"],
  };
  r["cidr"] = {
    bound_service_account_names: ["web-0"],
    bound_service_account_namespaces: ["*"],
    token_bound_cidrs: ["10.255.0.0/16"],
    token_policies: ["p4"],
  };
  r["audience"] = {
    bound_service_account_names: ["api-5"],
    bound_service_account_namespaces: ["bench-dev-*"],
    audience: "vault",
    token_policies: ["p0"],
  };
  return r;
}

/** Everything the bench needs on a fresh local target; returns the roles written. */
export async function buildAuditBench(
  c: Clients,
  info: TargetInfo,
  o: { namespaces: number; perNamespace: number },
): Promise<Record<string, Record<string, unknown>>> {
  // Reviewer (TokenReview, and get namespaces for the selector roles).
  await c.kube.createNamespace("bench-sys", info.runId);
  await c.kube.createServiceAccount("bench-sys", "reviewer");
  await c.kube.create({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name: "bench-ns-reader" },
    rules: [{ apiGroups: [""], resources: ["namespaces"], verbs: ["get"] }],
  } as never);
  for (const role of ["system:auth-delegator", "bench-ns-reader"])
    await c.kube.create({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: `bench-${role.replace(/:/g, "-")}` },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role },
      subjects: [{ kind: "ServiceAccount", name: "reviewer", namespace: "bench-sys" }],
    } as never);
  const ns = await buildNamespaces(c, o.namespaces, o.perNamespace);
  await enableKubernetesAuth(c.vault, AUDIT_BENCH_MOUNT);
  await writeAuthConfig(
    c.vault,
    AUDIT_BENCH_MOUNT,
    authConfigFor(info, await c.kube.requestToken("bench-sys", "reviewer", { expirationSeconds: 24 * 3600 })),
  );
  await enableKv(c.vault, "bench-kv", 2);
  for (let i = 0; i < 5; i++)
    await writePolicy(
      c.vault,
      `p${i}`,
      `path "bench-kv/data/team${i}/*" { capabilities = ["read", "list"] }\npath "bench-kv/metadata/team${i}/*" { capabilities = ["list"] }\npath "bench-kv/data/shared/+/config" { capabilities = ["read"] }\n${i === 4 ? 'path "sys/mounts" { capabilities = ["read"] }\n' : ""}`,
    );
  const rs = roles(ns);
  for (const [name, spec] of Object.entries(rs)) await writeRole(c.vault, AUDIT_BENCH_MOUNT, name, spec as never);
  // Let the controller-manager add each namespace's `default` ServiceAccount.
  await new Promise((r) => setTimeout(r, 3000));
  return rs;
}
