import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { loadAllYaml, type KubernetesObject, type V1ClusterRoleBinding } from "@kubernetes/client-node";
import { decodeJwt } from "jose";
import { HarnessError, UsageError } from "../errors.ts";
import { Kube, RUN_LABEL } from "../kube/client.ts";
import { registerSecret } from "../redact.ts";
import { VaultClient, type VaultResponse } from "../vault/client.ts";
import { vaultClientForTarget } from "../vault/external.ts";
import type { TargetInfo } from "../lifecycle/info.ts";
import { recordLogin } from "../vitest/diagnostics.ts";
import { expectationsFor } from "../fixtures/expectations.ts";
import { rootCertificates } from "node:tls";

/**
 * The setup steps of the seed guides, each small and named, shared by suites and scripts:
 *   applyReviewer -> reviewerJwt -> discoverIssuer -> enableKubernetesAuth -> writeAuthConfig
 *   -> writePolicy -> writeRole -> login
 */

export interface Clients {
  info: TargetInfo;
  kube: Kube;
  /** Vault with the target's root token. */
  vault: VaultClient;
}

export async function connect(info: TargetInfo): Promise<Clients> {
  return {
    info,
    kube: Kube.fromFile(info.kube.kubeconfigPath, info.kube.context),
    // As the run reaches Vault: CA, client certificate, server name, namespace, proxy (lib/vault/external.ts).
    vault: await vaultClientForTarget(info),
  };
}

// ---- reviewer ------------------------------------------------------------------------------

export interface Reviewer {
  namespace: string;
  serviceAccount: string;
  /** Cluster-scoped, so named per run; undefined when applied without the binding. */
  bindingName: string | undefined;
}

export async function loadManifests(fixturesDir: string, file: string): Promise<KubernetesObject[]> {
  const path = join(fixturesDir, "manifests", file);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read fixture ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return (loadAllYaml(text) as KubernetesObject[]).filter((o) => o && typeof o === "object");
  } catch (err) {
    throw new UsageError(`invalid YAML in ${path}: ${(err as Error).message.split("\n")[0]}`, { cause: err });
  }
}

/**
 * Step 1 of both guides: the reviewer ServiceAccount and its ClusterRoleBinding to
 * system:auth-delegator, from fixtures/manifests/reviewer.yaml, placed in `namespace` and with the
 * binding's name suffixed by `suffix`. `bind: false` applies only the ServiceAccount.
 */
export async function applyReviewer(
  kube: Kube,
  o: { fixturesDir: string; namespace: string; suffix: string; runId: string; bind?: boolean },
): Promise<Reviewer> {
  const objs = await loadManifests(o.fixturesDir, "reviewer.yaml");
  const sa = objs.find((x) => x.kind === "ServiceAccount");
  const crb = objs.find((x) => x.kind === "ClusterRoleBinding") as V1ClusterRoleBinding | undefined;
  if (!sa?.metadata?.name || !crb?.metadata?.name) {
    throw new UsageError(`fixtures/manifests/reviewer.yaml must hold a ServiceAccount and a ClusterRoleBinding`);
  }
  const serviceAccount = sa.metadata.name;
  await kube.create({ ...sa, metadata: { ...sa.metadata, namespace: o.namespace } });
  let bindingName: string | undefined;
  if (o.bind !== false) {
    bindingName = `${crb.metadata!.name}-${o.suffix}`.slice(0, 253);
    await kube.create<V1ClusterRoleBinding>({
      ...crb,
      metadata: { ...crb.metadata, name: bindingName, labels: { ...(crb.metadata?.labels ?? {}), [RUN_LABEL]: o.runId } },
      subjects: (crb.subjects ?? []).map((s) =>
        s.kind === "ServiceAccount" && s.name === serviceAccount ? { ...s, namespace: o.namespace } : s,
      ),
    });
  }
  return { namespace: o.namespace, serviceAccount, bindingName };
}

export async function removeReviewerBinding(kube: Kube, reviewer: Reviewer): Promise<void> {
  if (!reviewer.bindingName) return;
  await kube.deleteObject({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: { name: reviewer.bindingName },
  });
}

/** Step 2: the reviewer's JWT, the way a user gets it: a legacy token Secret or a TokenRequest. */
export async function reviewerJwt(kube: Kube, reviewer: Reviewer, mode: "secret" | "tokenrequest" = "secret"): Promise<string> {
  if (mode === "secret") return (await kube.legacyToken(reviewer.namespace, reviewer.serviceAccount)).token;
  return kube.requestToken(reviewer.namespace, reviewer.serviceAccount, { expirationSeconds: 24 * 3600 });
}

// ---- issuer --------------------------------------------------------------------------------

export interface IssuerFacts {
  /** `issuer` of /.well-known/openid-configuration; undefined when discovery is off. */
  discovery: string | undefined;
  /** `iss` of a freshly minted bound token. */
  boundTokenIss: string;
  /** `aud` of that token. */
  boundTokenAud: string[];
}

/** Step 3: what issuer the cluster really uses, from discovery and from a fresh token. */
export async function discoverIssuer(kube: Kube, namespace: string, serviceAccount: string): Promise<IssuerFacts> {
  let discovery: string | undefined;
  try {
    const doc = (await kube.getRaw("/.well-known/openid-configuration")) as { issuer?: string };
    discovery = doc.issuer;
  } catch {
    discovery = undefined;
  }
  const claims = decodeJwt(await kube.requestToken(namespace, serviceAccount, { expirationSeconds: 600 }));
  const aud = claims.aud === undefined ? [] : Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  return { discovery, boundTokenIss: String(claims.iss ?? ""), boundTokenAud: aud };
}

// ---- Vault ---------------------------------------------------------------------------------

/**
 * What marks a run's objects in Vault: the description of its auth and secrets mounts and the
 * first line of its policies (as a comment), so that an interrupted run on your Vault can be
 * swept by run id (lib/auth-setup/sweep.ts) without touching anything else.
 */
export function runMark(runId: string): string {
  return `vault-k8s-conformance run ${runId}`;
}

/** Step 4a: `vault auth enable -path=<mount> kubernetes`. */
export async function enableKubernetesAuth(vault: VaultClient, mount: string, runId?: string): Promise<void> {
  await vault.must("POST", `sys/auth/${mount}`, { type: "kubernetes", description: runId ? runMark(runId) : "vault-k8s-conformance" });
}

export async function disableAuth(vault: VaultClient, mount: string): Promise<void> {
  await vault.must("DELETE", `sys/auth/${mount}`);
}

export interface AuthConfig {
  kubernetes_host: string;
  kubernetes_ca_cert?: string;
  token_reviewer_jwt?: string;
  issuer?: string;
  disable_iss_validation?: boolean;
  disable_local_ca_jwt?: boolean;
  pem_keys?: string[];
  use_annotations_as_alias_metadata?: boolean;
}

/** The config a user writes for Vault outside the cluster: host, CA, reviewer JWT. */
export function authConfigFor(info: TargetInfo, reviewerJwt: string | undefined, extra: Partial<AuthConfig> = {}): AuthConfig {
  return {
    kubernetes_host: info.kube.hostForVault,
    // An API server with a publicly trusted certificate has no CA in the kubeconfig (see caCertEntry).
    ...caCertEntry(info),
    ...(reviewerJwt ? { token_reviewer_jwt: reviewerJwt } : {}),
    // Vault runs outside any pod: never fall back to a pod's mounted CA or JWT.
    disable_local_ca_jwt: true,
    ...extra,
  };
}

/**
 * The kubernetes_ca_cert of authConfigFor: the kubeconfig's CA; without one (an API server with a
 * publicly trusted certificate), nothing where the flavor then falls back to the system roots
 * (HashiCorp, plugin >= 0.19), and the public roots Node trusts where the flavor refuses
 * disable_local_ca_jwt=true without a CA (OpenBao: 400; lib/fixtures/expectations.ts).
 */
export function caCertEntry(info: TargetInfo): { kubernetes_ca_cert?: string } {
  if (info.kube.caCertForVault) return { kubernetes_ca_cert: info.kube.caCertForVault };
  if (!info.vault || !expectationsFor(info.vault.flavor, info.vault.version).caRequiredWithoutLocalCaJwt) return {};
  return { kubernetes_ca_cert: rootCertificates.join("\n") };
}

/** Step 4b: `vault write auth/<mount>/config ...` (every write replaces the whole config). */
export async function writeAuthConfig(vault: VaultClient, mount: string, cfg: AuthConfig): Promise<void> {
  await vault.must("POST", `auth/${mount}/config`, cfg);
}

/** Step 5: an ACL policy. */
export async function writePolicy(vault: VaultClient, name: string, hcl: string): Promise<void> {
  await vault.must("PUT", `sys/policies/acl/${name}`, { policy: hcl });
}

export async function policyFromFixtures(fixturesDir: string, file: string): Promise<string> {
  const path = join(fixturesDir, "policies", file);
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read policy fixture ${path}: ${(err as Error).message}`, { cause: err });
  }
}

export interface RoleSpec {
  bound_service_account_names: string[] | string;
  bound_service_account_namespaces?: string[] | string;
  bound_service_account_namespace_selector?: string;
  audience?: string;
  alias_name_source?: string;
  token_policies?: string[];
  policies?: string[];
  token_ttl?: string | number;
  token_max_ttl?: string | number;
  token_bound_cidrs?: string[];
  [k: string]: unknown;
}

/** Step 6: a role binding service accounts to policies. */
export async function writeRole(vault: VaultClient, mount: string, role: string, spec: RoleSpec): Promise<void> {
  await vault.must("POST", `auth/${mount}/role/${role}`, spec);
}

export interface LoginData {
  auth?: {
    client_token: string;
    accessor: string;
    policies: string[];
    token_policies: string[];
    metadata: Record<string, string>;
    lease_duration: number;
    renewable: boolean;
    entity_id: string;
    token_type: string;
    orphan: boolean;
  };
}

/** Step 7: what a workload does: POST auth/<mount>/login {role, jwt}. Every status is data. */
export async function login(
  vault: VaultClient,
  mount: string,
  role: string | undefined,
  jwt: string | undefined,
): Promise<VaultResponse<LoginData>> {
  const body: Record<string, string> = {};
  if (role !== undefined) body.role = role;
  if (jwt !== undefined) body.jwt = jwt;
  const res = await vault.withToken(undefined).request<LoginData>("POST", `auth/${mount}/login`, body);
  if (res.body?.auth?.client_token) registerSecret(res.body.auth.client_token);
  recordLogin({ mount, role, jwt, status: res.status, errors: res.body?.errors });
  return res;
}

/**
 * Moves a policy's paths from the mounts a guide assumes (`secret/`, `my-app/`) to the unique
 * mounts of this run, so that parallel suites and runs never share a secrets engine.
 */
export function rebasePolicy(hcl: string, mounts: Record<string, string>): string {
  return hcl.replace(/(path\s+")([^/"]+)\//g, (m, head: string, mount: string) => (mounts[mount] ? `${head}${mounts[mount]}/` : m));
}

/** Mounts a secrets engine (kv v1 or v2) at `path`. */
export async function enableKv(vault: VaultClient, path: string, version: 1 | 2, runId?: string): Promise<void> {
  await vault.must("POST", `sys/mounts/${path}`, {
    type: "kv",
    options: { version: String(version) },
    ...(runId ? { description: runMark(runId) } : {}),
  });
}

/** A policy's text marked as the run's (see runMark). */
export function markedPolicy(runId: string, hcl: string): string {
  return `# ${runMark(runId)}\n${hcl}`;
}

/**
 * The common arrangement of both guides, for suites and scripts: `namespace` with the reviewer
 * (bound to auth-delegator unless `bind: false`), its JWT, and the kubernetes auth mount `mount`
 * configured with host, CA and reviewer JWT. `defer` (a teardown's) is told how to remove each
 * object as it is created.
 */
export async function standardAuth(
  c: Clients,
  o: {
    fixturesDir: string;
    namespace: string;
    mount: string;
    /** Suffix of the reviewer's cluster-scoped binding name. */
    suffix: string;
    reviewerMode?: "secret" | "tokenrequest";
    config?: Partial<AuthConfig>;
    bind?: boolean;
    defer?: (what: string, undo: () => Promise<unknown>) => void;
  },
): Promise<{ namespace: string; reviewer: Reviewer; reviewerJwt: string; mount: string }> {
  const { info, kube, vault } = c;
  await kube.createNamespace(o.namespace, info.runId);
  o.defer?.(`delete namespace ${o.namespace}`, () => kube.deleteNamespace(o.namespace));
  const reviewer = await applyReviewer(kube, {
    fixturesDir: o.fixturesDir,
    namespace: o.namespace,
    suffix: o.suffix,
    runId: info.runId,
    bind: o.bind,
  });
  o.defer?.(`delete ClusterRoleBinding ${reviewer.bindingName}`, () => removeReviewerBinding(kube, reviewer));
  const jwt = await reviewerJwt(kube, reviewer, o.reviewerMode ?? "secret");
  await enableKubernetesAuth(vault, o.mount, info.runId);
  o.defer?.(`disable auth mount ${o.mount}`, () => disableAuth(vault, o.mount));
  await writeAuthConfig(vault, o.mount, authConfigFor(info, jwt, o.config));
  return { namespace: o.namespace, reviewer, reviewerJwt: jwt, mount: o.mount };
}
