/**
 * `npm run audit`: who can log in as what on a live setup (your cluster and your Vault), and what
 * each role's policies allow. Static by default: role definitions, the cluster's ServiceAccounts
 * and namespace labels, and capabilities of each role's policies (a 60-second token per policy
 * set asks sys/capabilities-self and is revoked at once); no logins. `probe` adds a real login for
 * every (role, ServiceAccount) pair and reports where static reasoning and Vault disagree.
 */
import { BlockList, connect as tcpConnect, isIP } from "node:net";
import { type KubeConfig, type V1Namespace, type V1ServiceAccount } from "@kubernetes/client-node";
import { HarnessError, errorMessage } from "../errors.ts";
import { accessReviews } from "../auth-setup/plan.ts";
import type { Kube } from "../kube/client.ts";
import { registerSecret } from "../redact.ts";
import { describeResponse, type VaultClient } from "../vault/client.ts";
import { capabilitiesForPolicies, probePaths } from "./capabilities.ts";
import { asList, parseSelector, predict, type Identity, type RoleShape } from "./match.ts";

export const AUDIT_SCHEMA = "vault-k8s-conformance/audit/v1";

/** What static reasoning expects of a login from outside a role's token_bound_cidrs (Vault answers 403, checked before the JWT). */
export const CIDR_REFUSAL = "refused by token_bound_cidrs";

export interface RoleDefinition {
  names: string[];
  namespaces: string[];
  selector?: string;
  audience?: string;
  alias_name_source?: string;
  token_bound_cidrs: string[];
  /** The policies a login gets: token_policies plus `default` unless token_no_default_policy. */
  policies: string[];
  /** One line: what kinds of binding the role uses (exact, glob, `*`, selector, CIDR). */
  shape: string;
}

export interface IdentityRef {
  namespace: string;
  serviceAccount: string;
}

export interface RoleAudit {
  definition: RoleDefinition;
  /** Set when the role is bound to CIDRs; logins from the auditing host are refused when they exclude it. */
  cidr?: { bound: string[]; auditHost: string; excludesAuditHost: boolean };
  /** Identities the role's name, namespace and selector bindings let in (static), with why. */
  accepted: (IdentityRef & { why: string })[];
  /** Identities refused by those bindings, counted by Vault's error. */
  refused: Record<string, number>;
  probe?: {
    accepted: IdentityRef[];
    /** Refusals counted by `HTTP <status>: <error>`. */
    refused: Record<string, number>;
    /** Pairs that could not be tried (no token could be minted for the ServiceAccount). */
    skipped: (IdentityRef & { error: string })[];
    /** Where the real login and the static verdict (from this host) differ: a finding. */
    disagreements: (IdentityRef & { predicted: string; real: string })[];
  };
  /** Path -> what the role's token may do there (deny-only paths omitted), and which policy grants each capability. */
  capabilities: Record<string, { capabilities: string[]; grantedBy: Record<string, string[]> }>;
}

export interface AuditReport {
  schema: typeof AUDIT_SCHEMA;
  generatedAt: string;
  mode: "static" | "probe";
  vault: { address: string; version?: string };
  kube: { server: string; context: string; serviceAccounts: number; namespaces: Record<string, Record<string, string>> };
  /** Every ServiceAccount of the cluster the audit considered. */
  identities: IdentityRef[];
  /** The address Vault sees the audit connect from (for token_bound_cidrs). */
  auditHost: string;
  mounts: Record<string, { probedPaths: number; roles: Record<string, RoleAudit> }>;
  /** Milliseconds per phase (permissions, read, static, probe, total). */
  timings: Record<string, number>;
  /** --probe: logins made, Vault tokens revoked (one per accepted login), TokenRequests made. */
  probe?: { logins: number; revoked: number; tokenRequests: number };
}

// ---- reading Vault -----------------------------------------------------------------------------

/** The kubernetes auth mounts of a Vault (without slashes), or the named ones. */
export async function kubernetesMounts(vault: VaultClient, only?: string[]): Promise<string[]> {
  const res = await vault.read<{ data?: Record<string, { type?: string }> }>("sys/auth");
  if (res.status !== 200) throw new HarnessError(`cannot list auth mounts: GET sys/auth: ${describeResponse(res)}`, { exitCode: 2 });
  const table = (res.body.data ?? res.body) as Record<string, { type?: string }>;
  const all = Object.entries(table)
    .filter(([k, v]) => k.endsWith("/") && v && typeof v === "object" && v.type === "kubernetes")
    .map(([k]) => k.replace(/\/+$/, ""))
    .sort();
  if (!only?.length) return all;
  const want = only.map((m) => m.replace(/^\/+|\/+$/g, ""));
  for (const m of want)
    if (!all.includes(m))
      throw new HarnessError(`Vault has no kubernetes auth mount ${m}/ (has: ${all.join(", ") || "none"})`, { exitCode: 2 });
  return want;
}

/** Every role of a mount as Vault returns it. */
export async function readRoles(vault: VaultClient, mount: string): Promise<Record<string, RoleShape & Record<string, unknown>>> {
  const list = await vault.list<{ data?: { keys?: string[] } }>(`auth/${mount}/role`);
  if (list.status === 404) return {};
  if (list.status !== 200) throw new HarnessError(`cannot list roles: LIST auth/${mount}/role: ${describeResponse(list)}`, { exitCode: 2 });
  const names = list.body.data?.keys ?? [];
  const out: Record<string, RoleShape & Record<string, unknown>> = {};
  await pool(names, 8, async (name) => {
    const r = await vault.read<{ data?: Record<string, unknown> }>(`auth/${mount}/role/${encodeURIComponent(name)}`);
    if (r.status !== 200)
      throw new HarnessError(`cannot read role: GET auth/${mount}/role/${name}: ${describeResponse(r)}`, { exitCode: 2 });
    out[name] = (r.body.data ?? {}) as RoleShape & Record<string, unknown>;
  });
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

export function effectivePolicies(role: RoleShape): string[] {
  const set = new Set([...asList(role.token_policies), ...asList(role.policies)]);
  if (!role.token_no_default_policy) set.add("default");
  return [...set].sort();
}

/** exact / glob / `*` / selector / CIDR, in a few words. */
export function roleShape(role: RoleShape): string {
  const kind = (list: string[]) =>
    list.length === 0 ? "none" : list.includes("*") ? "*" : list.some((p) => p.startsWith("*") || p.endsWith("*")) ? "glob" : "exact";
  const parts = [`names ${kind(asList(role.bound_service_account_names))}`];
  const ns = asList(role.bound_service_account_namespaces);
  if (ns.length) parts.push(`namespaces ${kind(ns)}`);
  if (parseSelector(role.bound_service_account_namespace_selector)) parts.push("selector");
  if (asList(role.token_bound_cidrs).length) parts.push("cidr");
  if (role.audience) parts.push("audience");
  return parts.join(", ");
}

export function roleDefinition(role: RoleShape): RoleDefinition {
  return {
    names: asList(role.bound_service_account_names),
    namespaces: asList(role.bound_service_account_namespaces),
    ...(role.bound_service_account_namespace_selector ? { selector: String(role.bound_service_account_namespace_selector) } : {}),
    ...(role.audience ? { audience: String(role.audience) } : {}),
    ...(role.alias_name_source ? { alias_name_source: String(role.alias_name_source) } : {}),
    token_bound_cidrs: asList(role.token_bound_cidrs),
    policies: effectivePolicies(role),
    shape: roleShape(role),
  };
}

// ---- reading the cluster -----------------------------------------------------------------------

export interface ClusterIdentities {
  namespaces: Record<string, Record<string, string>>;
  serviceAccounts: Identity[];
}

/** Namespaces (not terminating) with their labels, and every ServiceAccount in them; paged. */
export async function readCluster(kube: Kube): Promise<ClusterIdentities> {
  const namespaces: Record<string, Record<string, string>> = {};
  let cont: string | undefined;
  do {
    const page = await kube.core.listNamespace({ limit: 500, ...(cont ? { _continue: cont } : {}) });
    for (const n of page.items as V1Namespace[])
      if (n.metadata?.name && !n.metadata.deletionTimestamp) namespaces[n.metadata.name] = n.metadata.labels ?? {};
    cont = page.metadata?._continue || undefined;
  } while (cont);
  const serviceAccounts: Identity[] = [];
  cont = undefined;
  do {
    const page = await kube.core.listServiceAccountForAllNamespaces({ limit: 1000, ...(cont ? { _continue: cont } : {}) });
    for (const s of page.items as V1ServiceAccount[]) {
      const ns = s.metadata?.namespace;
      if (ns && s.metadata?.name && namespaces[ns])
        serviceAccounts.push({ namespace: ns, serviceAccount: s.metadata.name, namespaceLabels: namespaces[ns] });
    }
    cont = page.metadata?._continue || undefined;
  } while (cont);
  serviceAccounts.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.serviceAccount.localeCompare(b.serviceAccount));
  return { namespaces, serviceAccounts };
}

// ---- permissions -------------------------------------------------------------------------------

export interface Permission {
  what: string;
  allowed: boolean;
  reason?: string;
}

/** What the audit needs of the cluster credentials (SelfSubjectAccessReviews). */
export async function checkKubeAccess(kc: KubeConfig, probe: boolean): Promise<Permission[]> {
  return accessReviews(kc, [
    { what: "list namespaces", verb: "list", resource: "namespaces" },
    { what: "list serviceaccounts (all namespaces)", verb: "list", resource: "serviceaccounts" },
    ...(probe
      ? [
          {
            what: "create serviceaccounts/token (TokenRequest, --probe)",
            verb: "create",
            resource: "serviceaccounts",
            subresource: "token",
          },
        ]
      : []),
  ]);
}

/** What the audit needs of VAULT_TOKEN, asked with one sys/capabilities-self. */
export async function checkVaultAccess(vault: VaultClient, mounts: string[]): Promise<Permission[]> {
  const wants: { what: string; path: string; need: string[] }[] = [
    { what: "read secrets mounts (sys/mounts)", path: "sys/mounts", need: ["read"] },
    { what: "read ACL policies (sys/policies/acl/*)", path: "sys/policies/acl/vkc-probe", need: ["read"] },
    {
      what: "create short-lived tokens with a role's policies (auth/token/create-orphan)",
      path: "auth/token/create-orphan",
      need: ["update", "sudo"],
    },
    { what: "ask a token's capabilities by accessor (sys/capabilities-accessor)", path: "sys/capabilities-accessor", need: ["update"] },
    { what: "revoke those tokens (auth/token/revoke-accessor)", path: "auth/token/revoke-accessor", need: ["update"] },
    ...mounts.flatMap((m) => [
      { what: `list roles of ${m}/`, path: `auth/${m}/role`, need: ["list"] },
      { what: `read roles of ${m}/`, path: `auth/${m}/role/vkc-probe`, need: ["read"] },
    ]),
  ];
  const res = await vault.write("sys/capabilities-self", { paths: wants.map((w) => w.path) });
  if (res.status !== 200)
    throw new HarnessError(`cannot check VAULT_TOKEN's capabilities: POST sys/capabilities-self: ${describeResponse(res)}`, {
      exitCode: 2,
    });
  const table = (res.body?.data ?? res.body ?? {}) as Record<string, string[]>;
  return wants.map((w) => {
    const have = table[w.path] ?? [];
    const ok = have.includes("root") || w.need.every((n) => have.includes(n) || (n === "update" && have.includes("create")));
    return {
      what: w.what,
      allowed: ok,
      ...(ok ? {} : { reason: `capabilities on ${w.path}: ${have.join(", ") || "none"}; needs ${w.need.join(", ")}` }),
    };
  });
}

export function formatPermissions(title: string, checks: Permission[]): string {
  return [
    title,
    ...checks.map((c) => `    ${c.allowed ? "ok  " : "DENY"} ${c.what}${c.reason && !c.allowed ? ` (${c.reason})` : ""}`),
  ].join("\n");
}

// ---- CIDRs -------------------------------------------------------------------------------------

/** The local address of a TCP connection to Vault: what Vault checks token_bound_cidrs against (absent proxies). */
export function addressTowards(url: string, timeoutMs = 5000): Promise<string> {
  const u = new URL(url);
  const port = Number(u.port || (u.protocol === "https:" ? 443 : 80));
  return new Promise((resolve, reject) => {
    const s = tcpConnect({ host: u.hostname.replace(/^\[|\]$/g, ""), port, timeout: timeoutMs });
    s.once("connect", () => {
      const a = normalizeAddress(s.localAddress ?? "");
      s.destroy();
      resolve(a);
    });
    s.once("timeout", () => {
      s.destroy();
      reject(new HarnessError(`cannot reach Vault at ${url} within ${timeoutMs}ms`, { exitCode: 2 }));
    });
    s.once("error", (err) => reject(new HarnessError(`cannot reach Vault at ${url}: ${err.message}`, { exitCode: 2 })));
  });
}

export function normalizeAddress(a: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  return m ? m[1]! : a;
}

/** Whether an address falls in any of the CIDRs (a bare address is a /32 or /128); unparsable entries never match. */
export function inCidrs(address: string, cidrs: string[]): boolean {
  const addr = normalizeAddress(address);
  const fam = isIP(addr);
  if (!fam) return false;
  const list = new BlockList();
  for (const c of cidrs) {
    const [net, bits] = c.trim().split("/");
    const f = isIP(net ?? "");
    if (!f) continue;
    const prefix = bits === undefined ? (f === 4 ? 32 : 128) : Number(bits);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > (f === 4 ? 32 : 128)) continue;
    list.addSubnet(net!, prefix, f === 4 ? "ipv4" : "ipv6");
  }
  return list.check(addr, fam === 4 ? "ipv4" : "ipv6");
}

// ---- the access map ----------------------------------------------------------------------------

export function staticAccess(role: RoleShape, identities: Identity[]): Pick<RoleAudit, "accepted" | "refused"> {
  const accepted: RoleAudit["accepted"] = [];
  const refused: Record<string, number> = {};
  for (const who of identities) {
    const v = predict(role, who);
    if (v.accepted) accepted.push({ namespace: who.namespace, serviceAccount: who.serviceAccount, why: v.why });
    else refused[v.error] = (refused[v.error] ?? 0) + 1;
  }
  return { accepted, refused };
}

/** What static reasoning expects a login from this host to get: "accepted" or the refusal. */
export function predictedFromHost(role: RoleShape, who: Identity, cidrExcluded: boolean): string {
  if (cidrExcluded) return CIDR_REFUSAL;
  const v = predict(role, who);
  return v.accepted ? "accepted" : v.error;
}

/** Whether a real login outcome agrees with the static verdict. A CIDR refusal is any 403. */
export function agrees(predicted: string, status: number, error: string | undefined): boolean {
  if (predicted === "accepted") return status === 200;
  if (status !== 403) return false;
  return predicted === CIDR_REFUSAL || String(error ?? "").includes(predicted);
}

// ---- capabilities ------------------------------------------------------------------------------

/**
 * The capability maps of a mount's roles over one path set (built from the Vault for all of the
 * mount's policies), and which policy grants each capability. One short-lived token per distinct
 * policy set and per single policy; each revoked at once.
 */
export async function capabilityMaps(
  vault: VaultClient,
  mount: string,
  roles: Record<string, RoleDefinition>,
): Promise<{ probedPaths: number; maps: Record<string, RoleAudit["capabilities"]> }> {
  const allPolicies = [...new Set(Object.values(roles).flatMap((r) => r.policies))].sort();
  const paths = await probePaths(vault, { policies: allPolicies, authMount: mount, roles: Object.keys(roles) });
  const cache = new Map<string, Promise<Record<string, string[]>>>();
  const capsFor = (policies: string[]) => {
    const k = [...policies].sort().join(",");
    let p = cache.get(k);
    if (!p) cache.set(k, (p = capabilitiesForPolicies(vault, policies, paths)));
    return p;
  };
  const sets = [...Object.values(roles).map((r) => r.policies), ...allPolicies.map((p) => [p])];
  await pool(sets, 6, (s) => capsFor(s));
  const maps: Record<string, RoleAudit["capabilities"]> = {};
  for (const [name, r] of Object.entries(roles)) {
    const combined = await capsFor(r.policies);
    const singles = await Promise.all(r.policies.map(async (p) => [p, await capsFor([p])] as const));
    const m: RoleAudit["capabilities"] = {};
    for (const path of paths) {
      const caps = (combined[path] ?? []).filter((c) => c !== "deny");
      if (!caps.length) continue;
      const grantedBy: Record<string, string[]> = {};
      for (const c of caps)
        grantedBy[c] = singles.filter(([, s]) => (s[path] ?? []).includes(c) || (s[path] ?? []).includes("root")).map(([p]) => p);
      m[path] = { capabilities: caps, grantedBy };
    }
    maps[name] = m;
  }
  return { probedPaths: paths.length, maps };
}

// ---- real logins (--probe) ---------------------------------------------------------------------

export interface ProbeDeps {
  kube: Kube;
  vault: VaultClient;
  concurrency: number;
  /** Progress, one line at a time (never secrets). */
  progress?: (msg: string) => void;
}

export interface LoginOutcome {
  status: number;
  error?: string;
}

/**
 * One real login per (role, ServiceAccount) pair. Tokens come from TokenRequest (600 s, the
 * role's audience when it has one; one per ServiceAccount and audience); every Vault token a
 * login returns is revoked at once (by accessor; revoke-self when that is refused).
 */
export async function probeLogins(
  d: ProbeDeps,
  pairs: { mount: string; role: string; audience?: string; who: Identity }[],
): Promise<{ outcomes: (LoginOutcome | { skipped: string })[]; logins: number; revoked: number; tokenRequests: number }> {
  const tokens = new Map<string, Promise<string | { error: string }>>();
  const tokenFor = (who: Identity, audience?: string) => {
    const k = `${who.namespace}/${who.serviceAccount}/${audience ?? ""}`;
    let t = tokens.get(k);
    if (!t) {
      t = d.kube
        .requestToken(who.namespace, who.serviceAccount, { audiences: audience ? [audience] : [], expirationSeconds: 600 })
        .catch((err) => ({ error: `TokenRequest for ${who.namespace}/${who.serviceAccount}: ${errorMessage(err).split("\n")[0]}` }));
      tokens.set(k, t);
    }
    return t;
  };
  // Mint first (bounded), so login timing is not mixed with TokenRequest latency.
  const distinct = new Map<string, { who: Identity; audience?: string }>();
  for (const p of pairs)
    distinct.set(`${p.who.namespace}/${p.who.serviceAccount}/${p.audience ?? ""}`, { who: p.who, audience: p.audience });
  await pool([...distinct.values()], d.concurrency, (x) => tokenFor(x.who, x.audience));
  d.progress?.(`${distinct.size} ServiceAccount token(s) minted; logging in ${pairs.length} time(s)`);
  let logins = 0;
  let revoked = 0;
  const anonymous = d.vault.withToken(undefined);
  const outcomes = await pool(pairs, d.concurrency, async (p): Promise<LoginOutcome | { skipped: string }> => {
    const jwt = await tokenFor(p.who, p.audience);
    if (typeof jwt !== "string") return { skipped: jwt.error };
    logins++;
    const res = await anonymous.request<{ auth?: { client_token?: string; accessor?: string } }>("POST", `auth/${p.mount}/login`, {
      role: p.role,
      jwt,
    });
    const client = registerSecret(res.body?.auth?.client_token);
    if (res.status === 200 && client) {
      // By accessor with the audit's token: a role with token_no_default_policy gives tokens that may not revoke themselves.
      const accessor = res.body.auth?.accessor;
      let r = accessor ? await d.vault.write("auth/token/revoke-accessor", { accessor }).catch(() => undefined) : undefined;
      if (!r || r.status >= 300)
        r = await d.vault
          .withToken(client)
          .write("auth/token/revoke-self", {})
          .catch(() => undefined);
      if (r && r.status < 300) revoked++;
      return { status: 200 };
    }
    const errors = res.body && typeof res.body === "object" ? (res.body as { errors?: string[] }).errors : undefined;
    return { status: res.status, error: (errors ?? [describeResponse(res)]).join("; ") };
  });
  return { outcomes, logins, revoked, tokenRequests: distinct.size };
}

// ---- helpers -----------------------------------------------------------------------------------

export async function pool<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
      for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!);
    }),
  );
  return out;
}

/** The identities a role lets in, as the audit knows it best: real logins when probed from inside its CIDRs, else static. */
export function effectiveAccepted(r: RoleAudit): IdentityRef[] {
  if (r.probe && !r.cidr?.excludesAuditHost) return r.probe.accepted;
  return r.accepted.map(({ namespace, serviceAccount }) => ({ namespace, serviceAccount }));
}

export function idKey(i: IdentityRef): string {
  return `${i.namespace}/${i.serviceAccount}`;
}
