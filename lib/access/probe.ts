/**
 * The universal claims of a case, proven on a real target: every identity the cluster can mint a
 * token for, plus the ones a widened role would let in (lookalike names, the bound names in other
 * namespaces, namespaces a glob or selector matches), logs in to each role; exactly the intended
 * identities may get in (access map). Each accepted token's capabilities over a path set built
 * from the Vault itself must stay within intent plus Vault's stock `default` policy (capability
 * map). A recreated ServiceAccount must get a new entity unless the role is meant to alias by name.
 * Static reasoning (match.ts) picks candidates and explains; real logins decide.
 */
import { randomBytes } from "node:crypto";
import type { V1Namespace, V1ServiceAccount } from "@kubernetes/client-node";
import type { Teardown } from "../cleanup.ts";
import { errorMessage } from "../errors.ts";
import { isNotFound, type Kube } from "../kube/client.ts";
import { describeResponse, type VaultClient } from "../vault/client.ts";
import { waitFor } from "../wait.ts";
import { capabilitiesBeyond, capabilitiesForPolicies, capabilitiesOfAccessor, intentCovers, probePaths } from "./capabilities.ts";
import {
  advice,
  asList,
  dns1123,
  isGlob,
  lookalikes,
  parseLabelSelector,
  parseSelector,
  predict,
  selectorMatches,
  type Identity,
  type RoleShape,
} from "./match.ts";

export type Source =
  "cluster" | "intended" | "lookalike" | "other-namespace" | "bound-namespace" | "namespace-glob" | "selector-match" | "selector-mismatch";

export interface AccessEntry {
  namespace: string;
  serviceAccount: string;
  sources: Source[];
  intended: boolean;
  /** What static reasoning expects, and why. */
  predicted: "accepted" | string;
  why: string;
  /** What Vault answered: accepted, refused (with its error), or skipped (no token could be minted). */
  outcome: "accepted" | "refused" | "skipped";
  status?: number;
  error?: string;
}

export interface AccessMap {
  case: string;
  mount: string;
  role: string;
  /** A role bound to CIDRs that exclude this host: logins from here are refused first; the map is static. */
  cidrBound?: string[];
  intended: string[];
  accepted: string[];
  refused: Record<string, number>;
  skipped: number;
  entries: AccessEntry[];
  deviations: string[];
}

export interface CapabilityMap {
  case: string;
  role: string;
  /** How the token was had: a real login as `ns/sa`, or a token holding the role's policies. */
  via: string;
  policies: string[];
  /** Path -> capabilities (only paths with something other than deny). */
  granted: Record<string, string[]>;
  /** The part of `granted` beyond Vault's stock default policy: what the role's own policies add. */
  added: Record<string, string[]>;
  probed: number;
  checks: { method: string; path: string; status: number; expected: string }[];
  deviations: string[];
}

export interface IdentityRecord {
  case: string;
  role: string;
  identity: string;
  aliasNameSource: string;
  before: { entityId: string; aliasId?: string; aliasName?: string };
  after: { entityId: string; aliasId?: string; aliasName?: string };
  sameEntity: boolean;
  deviations: string[];
}

const key = (ns: string, sa: string) => `${ns}/${sa}`;

async function pool<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!);
    }),
  );
  return out;
}

/** Most clusters are small; a huge one is sampled (every candidate but the cluster-wide ones is kept). */
const MAX_CLUSTER_SERVICE_ACCOUNTS = 1000;

export interface ProbeDeps {
  kube: Kube;
  /** Root (or sufficiently privileged) Vault client. */
  vault: VaultClient;
  teardown: Teardown;
  runId: string;
  /** DNS-1123 unique name maker (SuiteContext.name). */
  name: (prefix: string) => string;
  login: (mount: string, role: string, jwt: string) => Promise<{ status: number; body: any }>;
}

export interface RoleUnderTest {
  caseName: string;
  mount: string;
  role: string;
  /** As written to Vault (names already substituted). */
  spec: RoleShape;
  /** Intended identities; a namespaceSelector entry stands for every namespace whose labels match. */
  intent: { serviceAccount: string; namespace?: string; namespaceSelector?: string }[];
  /** How a login from outside token_bound_cidrs is refused on this flavor. */
  cidrRejected: { status: number; error: string };
}

/** One probe per case: candidates, namespaces and tokens shared by its roles. */
export class AccessProbe {
  #namespaces = new Map<string, Record<string, string>>();
  #serviceAccounts = new Set<string>();
  #listed = false;
  #tokens = new Map<string, Promise<string | undefined>>();
  #freshNs: string | undefined;

  constructor(private readonly d: ProbeDeps) {}

  private async listCluster(): Promise<void> {
    if (this.#listed) return;
    const [nss, sas] = await Promise.all([this.d.kube.core.listNamespace(), this.d.kube.core.listServiceAccountForAllNamespaces()]);
    for (const n of nss.items as V1Namespace[])
      if (n.metadata?.name && !n.metadata.deletionTimestamp) this.#namespaces.set(n.metadata.name, n.metadata.labels ?? {});
    const items = (sas.items as V1ServiceAccount[]).filter((s) => s.metadata?.namespace && this.#namespaces.has(s.metadata.namespace));
    for (const s of items.slice(0, MAX_CLUSTER_SERVICE_ACCOUNTS)) this.#serviceAccounts.add(key(s.metadata!.namespace!, s.metadata!.name!));
    this.#listed = true;
  }

  /** A namespace of the probe's own (labelled with the run, removed with the case). */
  private async ownNamespace(name: string, labels: Record<string, string> = {}): Promise<string> {
    await this.d.kube.core.createNamespace({
      body: { metadata: { name, labels: { "vault-k8s-conformance/run": this.d.runId, ...labels } } },
    });
    this.d.teardown.defer(`delete namespace ${name}`, () => this.d.kube.deleteNamespace(name));
    const read = await this.d.kube.core.readNamespace({ name });
    this.#namespaces.set(name, read.metadata?.labels ?? {});
    return name;
  }

  private async freshNamespace(): Promise<string> {
    this.#freshNs ??= await this.ownNamespace(this.d.name("probe"));
    return this.#freshNs;
  }

  /** Makes sure `ns/sa` exists (creating the namespace only if it is missing); false when it cannot. */
  private async ensureServiceAccount(ns: string, sa: string): Promise<boolean> {
    if (this.#serviceAccounts.has(key(ns, sa))) return true;
    try {
      if (!this.#namespaces.has(ns)) {
        try {
          await this.d.kube.core.readNamespace({ name: ns });
        } catch (err) {
          if (!isNotFound(err)) throw err;
          await this.ownNamespace(ns);
        }
      }
      // Labelled with the run, so that an interrupted run's sweep finds it in namespaces it does not own.
      await this.d.kube.core.createNamespacedServiceAccount({
        namespace: ns,
        body: { metadata: { name: sa, labels: { "vault-k8s-conformance/run": this.d.runId } } },
      });
      this.d.teardown.defer(`delete ServiceAccount ${ns}/${sa}`, async () => {
        try {
          await this.d.kube.deleteServiceAccount(ns, sa);
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      });
    } catch (err) {
      if (!(err as { code?: number }).code || (err as { code?: number }).code !== 409) return false;
    }
    this.#serviceAccounts.add(key(ns, sa));
    return true;
  }

  /** The candidates for one role, each with the reasons it was chosen. */
  async candidates(r: RoleUnderTest, caseNamespaces: string[]): Promise<Map<string, Set<Source>>> {
    await this.listCluster();
    const out = new Map<string, Set<Source>>();
    const add = (ns: string, sa: string, s: Source) => {
      const k = key(ns, sa);
      if (!out.has(k)) out.set(k, new Set());
      out.get(k)!.add(s);
    };
    const names = asList(r.spec.bound_service_account_names);
    const intendedNames = r.intent.map((i) => i.serviceAccount);
    // Names to plant elsewhere: each bound name (a glob as a name it lets in) and each intended name.
    const plant = new Set<string>([...intendedNames, ...names.flatMap((n) => (isGlob(n) ? lookalikes(n) : [n]))]);
    const home = caseNamespaces[0]!;
    const tasks: Promise<void>[] = [];
    const ensure = (ns: string, sa: string, s: Source) =>
      tasks.push(this.ensureServiceAccount(ns, sa).then((ok) => void (ok && add(ns, sa, s))));

    for (const i of r.intent) if (i.namespace) ensure(i.namespace, i.serviceAccount, "intended");
    // Lookalikes of every bound and intended name, in the case's own namespace(s).
    for (const n of new Set([...names, ...intendedNames]))
      for (const l of lookalikes(n)) for (const ns of caseNamespaces) ensure(ns, l, "lookalike");
    // The bound names in other namespaces: kube-system, default, a fresh one.
    const fresh = await this.freshNamespace();
    for (const ns of ["kube-system", "default", fresh]) for (const n of plant) ensure(ns, n, "other-namespace");
    // Every namespace the role names literally, and one each glob lets in.
    for (const p of asList(r.spec.bound_service_account_namespaces)) {
      if (p === "*") continue; // the fresh namespace already stands for "any namespace"
      const ns = isGlob(p) ? await this.ownNamespace(globNamespace(p, randomBytes(2).toString("hex"))) : p;
      for (const n of plant) ensure(ns, n, isGlob(p) ? "namespace-glob" : "bound-namespace");
    }
    // A selector: a namespace with its labels and one without.
    const sel = parseSelector(r.spec.bound_service_account_namespace_selector);
    if (sel) {
      const match = await this.ownNamespace(this.d.name("sel-in"), sel.matchLabels ?? {});
      const miss = await this.ownNamespace(this.d.name("sel-out"));
      for (const n of plant) {
        ensure(match, n, "selector-match");
        ensure(miss, n, "selector-mismatch");
      }
    }
    await Promise.all(tasks);
    for (const k of this.#serviceAccounts) {
      const [ns, sa] = k.split("/") as [string, string];
      add(ns, sa, "cluster");
    }
    return out;
  }

  private token(ns: string, sa: string, audience: string | undefined): Promise<string | undefined> {
    const k = `${ns}/${sa}/${audience ?? ""}`;
    let t = this.#tokens.get(k);
    if (!t) {
      t = this.d.kube
        .requestToken(ns, sa, { audiences: audience ? [audience] : undefined, expirationSeconds: 3600 })
        .catch(() => undefined);
      this.#tokens.set(k, t);
    }
    return t;
  }

  /** Mints a fresh token (for identities whose ServiceAccount was recreated). */
  async freshToken(ns: string, sa: string, audience: string | undefined): Promise<string> {
    return this.d.kube.requestToken(ns, sa, { audiences: audience ? [audience] : undefined, expirationSeconds: 600 });
  }

  private isIntended(r: RoleUnderTest, who: Identity): boolean {
    return r.intent.some((i) => {
      if (i.serviceAccount !== who.serviceAccount) return false;
      if (i.namespaceSelector) {
        const labels = parseLabelSelector(i.namespaceSelector);
        return !!labels && selectorMatches({ matchLabels: labels }, who.namespaceLabels ?? {});
      }
      return i.namespace === who.namespace;
    });
  }

  /** The access map of one role: a real login for every candidate, judged against intent. */
  async accessMap(r: RoleUnderTest, caseNamespaces: string[]): Promise<AccessMap> {
    const cands = await this.candidates(r, caseNamespaces);
    const cidrs = asList(r.spec.token_bound_cidrs);
    const audience = r.spec.audience ? String(r.spec.audience) : undefined;
    const deviations: string[] = [];
    const entries = await pool([...cands.entries()], 12, async ([k, sources]): Promise<AccessEntry> => {
      const [namespace, serviceAccount] = k.split("/") as [string, string];
      const who: Identity = { namespace, serviceAccount, namespaceLabels: this.#namespaces.get(namespace) ?? {} };
      const p = predict(r.spec, who);
      const intended = this.isIntended(r, who);
      const base = {
        namespace,
        serviceAccount,
        sources: [...sources].sort(),
        intended,
        predicted: p.accepted ? "accepted" : p.error,
        why: p.why,
      };
      const jwt = await this.token(namespace, serviceAccount, audience);
      if (!jwt)
        return { ...base, outcome: "skipped", why: `${p.why}; no token could be minted (the ServiceAccount or its namespace went away)` };
      let res = await this.d.login(r.mount, r.role, jwt);
      // A ServiceAccount created moments ago may not be in the apiserver's cache yet: its token
      // fails TokenReview ("permission denied") for a moment. Retry only where a login may succeed.
      if (!cidrs.length && res.status === 403 && (p.accepted || intended) && /permission denied/.test(String(res.body?.errors))) {
        const deadline = Date.now() + 8000;
        while (res.status === 403 && Date.now() < deadline) {
          await new Promise((s) => setTimeout(s, 250));
          res = await this.d.login(r.mount, r.role, jwt);
        }
      }
      if (res.status === 200) {
        const accessor = res.body?.auth?.accessor;
        if (accessor && !intended) await this.d.vault.write("auth/token/revoke-accessor", { accessor }).catch(() => undefined);
        return { ...base, outcome: "accepted", status: 200 };
      }
      return { ...base, outcome: "refused", status: res.status, error: (res.body?.errors ?? [describeResponse(res)]).join("; ") };
    });

    const label = (e: AccessEntry) => key(e.namespace, e.serviceAccount);
    for (const e of entries) {
      if (e.outcome === "skipped") continue;
      const who = `${label(e)}`;
      if (cidrs.length) {
        // Refused here by the CIDR check before any identity check: prove that, then judge statically.
        if (e.status !== r.cidrRejected.status || !String(e.error).includes(r.cidrRejected.error))
          deviations.push(
            `role ${r.role} is bound to ${cidrs.join(", ")} but ${who} got ${e.status} ${e.error ?? ""} from here (expected ${r.cidrRejected.status} "${r.cidrRejected.error}")`,
          );
        if (e.predicted === "accepted" && !e.intended)
          deviations.push(
            `role ${r.role} would accept ${who} from inside ${cidrs.join(", ")} (${e.why}), which intent does not name: ${advice(r.role, r.spec, this.identity(e))}`,
          );
        if (e.predicted !== "accepted" && e.intended)
          deviations.push(`role ${r.role} would refuse the intended ${who} even from inside ${cidrs.join(", ")}: ${e.why}`);
        continue;
      }
      if (e.outcome === "accepted" && !e.intended)
        deviations.push(
          `role ${r.role} accepts ${who} (${e.why}), which intent does not name: ${advice(r.role, r.spec, this.identity(e))}`,
        );
      else if (e.outcome === "refused" && e.intended)
        deviations.push(
          `role ${r.role} refuses the intended ${who}: ${e.status} ${e.error}${e.predicted === "accepted" ? "" : ` (${e.why})`}`,
        );
      else if (e.outcome === "refused") {
        // The refusal must be Vault's 403 with the reason static reasoning gives (TokenReview
        // failures are "permission denied" whatever static reasoning says).
        const expected = e.predicted === "accepted" ? "permission denied" : e.predicted;
        if (e.status !== 403 || !String(e.error).includes(expected))
          deviations.push(`role ${r.role} refused ${who} with ${e.status} "${e.error}", expected 403 "${expected}" (${e.why})`);
      }
    }
    const refused: Record<string, number> = {};
    for (const e of entries)
      if (e.outcome === "refused") refused[e.error ?? String(e.status)] = (refused[e.error ?? String(e.status)] ?? 0) + 1;
    const accepted = entries
      .filter((e) => (cidrs.length ? e.predicted === "accepted" : e.outcome === "accepted"))
      .map(label)
      .sort();
    return {
      case: r.caseName,
      mount: r.mount,
      role: r.role,
      ...(cidrs.length ? { cidrBound: cidrs } : {}),
      intended: r.intent.map((i) =>
        i.namespaceSelector ? `{${i.namespaceSelector}}/${i.serviceAccount}` : key(i.namespace ?? "?", i.serviceAccount),
      ),
      accepted,
      refused,
      skipped: entries.filter((e) => e.outcome === "skipped").length,
      entries: entries.sort((a, b) => label(a).localeCompare(label(b))),
      deviations,
    };
  }

  private identity(e: AccessEntry): Identity {
    return { namespace: e.namespace, serviceAccount: e.serviceAccount, namespaceLabels: this.#namespaces.get(e.namespace) };
  }
}

/** A namespace name a namespace glob lets in: `team-*` -> `team-vkc-ab12`, `*-prod` -> `vkc-ab12-prod`. */
function globNamespace(pattern: string, rand: string): string {
  const core = pattern.replace(/^\*+|\*+$/g, "");
  if (pattern.endsWith("*") && !pattern.startsWith("*")) return dns1123(`${core}${core.endsWith("-") ? "" : "-"}vkc-${rand}`);
  if (pattern.startsWith("*") && !pattern.endsWith("*")) return dns1123(`vkc-${rand}${core.startsWith("-") ? "" : "-"}${core}`);
  return dns1123(`vkc-${rand}-${core}-x`);
}

// ---- capabilities ------------------------------------------------------------------------------

/**
 * The capability map of one role: what its token may do on every probed path, judged against the
 * intent plus `baseline` (a policy holding Vault's `default` as it was before the case touched
 * it). Each excess names path, capability and the policy that grants it. A few real requests
 * confirm that capabilities-self says what Vault enforces.
 */
export async function capabilityMap(o: {
  vault: VaultClient;
  token: VaultClient | undefined;
  /** The token's accessor: its capabilities are asked by accessor (a token without `default` may not ask itself). */
  accessor: string | undefined;
  via: string;
  caseName: string;
  role: string;
  mount: string;
  roles: string[];
  policies: string[];
  baselinePolicy: string;
  intent: Record<string, string[]>;
}): Promise<CapabilityMap> {
  const paths = await probePaths(o.vault, { policies: [...o.policies, o.baselinePolicy], authMount: o.mount, roles: o.roles });
  const caps =
    o.token && o.accessor
      ? await capabilitiesOfAccessor(o.vault, o.accessor, paths)
      : await capabilitiesForPolicies(o.vault, o.policies, paths);
  const baseline = await capabilitiesForPolicies(o.vault, [o.baselinePolicy], paths);
  const deviations: string[] = [];
  const beyond: Record<string, string[]> = {};
  for (const p of paths) {
    const extra = capabilitiesBeyond(caps[p] ?? [], [...intentCovers(o.intent, p), ...(baseline[p] ?? [])]);
    if (extra.length) beyond[p] = extra;
  }
  if (Object.keys(beyond).length) {
    // Which attached policy grants each excess: one short-lived token per policy, asked by Vault.
    const attached = o.policies.filter((p) => p !== "root");
    const per = await Promise.all(
      attached.map(async (p) => [p, await capabilitiesForPolicies(o.vault, [p], Object.keys(beyond))] as const),
    );
    for (const [path, extra] of Object.entries(beyond)) {
      for (const c of extra) {
        const from = per.filter(([, m]) => (m[path] ?? []).includes(c) || (m[path] ?? []).includes("root")).map(([p]) => p);
        deviations.push(
          `role ${o.role}: ${c} on ${path} is beyond intent, granted by ${from.length ? `policy ${from.join(", ")}` : "the combination of its policies"}: remove it from ${from[0] ?? "the policies"} or add it to the intent`,
        );
      }
    }
  }
  const granted: Record<string, string[]> = {};
  const added: Record<string, string[]> = {};
  for (const [p, c] of Object.entries(caps)) {
    if (!c.length || (c.length === 1 && c[0] === "deny")) continue;
    granted[p] = c;
    const extra = capabilitiesBeyond(c, baseline[p] ?? []);
    if (extra.length) added[p] = extra;
  }
  // Real requests stay on the case's own engines (other suites' mounts may come and go meanwhile).
  const own = new Set(Object.keys(o.intent).map((p) => p.split("/")[0]!));
  const sample = Object.fromEntries(Object.entries(caps).filter(([p]) => own.has(p.split("/")[0]!)));
  const checks = o.token ? await confirmEnforcement(o.token, sample, deviations) : [];
  return { case: o.caseName, role: o.role, via: o.via, policies: o.policies, granted, added, probed: paths.length, checks, deviations };
}

/**
 * A sample of real requests: paths capabilities-self says may be read or listed must not answer
 * 403, paths it denies must answer 403 "permission denied". Secrets engine paths only (sys
 * endpoints answer some methods before the ACL).
 */
async function confirmEnforcement(
  token: VaultClient,
  caps: Record<string, string[]>,
  deviations: string[],
): Promise<CapabilityMap["checks"]> {
  const checks: CapabilityMap["checks"] = [];
  const engine = (p: string) => !/^(sys|auth|identity)\//.test(p) && !p.startsWith("cubbyhole/") && !p.endsWith("/");
  const entries = Object.entries(caps).filter(([p]) => engine(p));
  const allowed = entries.filter(([, c]) => c.includes("read") || c.includes("root")).slice(0, 3);
  const denied = entries.filter(([, c]) => c.length === 1 && c[0] === "deny").slice(0, 3);
  for (const [path] of allowed) {
    const res = await token.request("GET", path);
    checks.push({ method: "GET", path, status: res.status, expected: "not 403" });
    if (res.status === 403) deviations.push(`capabilities-self says read on ${path}, but GET answered ${describeResponse(res)}`);
  }
  for (const [path] of denied) {
    const res = await token.request("GET", path);
    checks.push({ method: "GET", path, status: res.status, expected: "403 permission denied" });
    if (res.status !== 403 || !String(res.body?.errors).includes("permission denied"))
      deviations.push(`capabilities-self says deny on ${path}, but GET answered ${describeResponse(res)}`);
  }
  return checks;
}

// ---- identity continuity -----------------------------------------------------------------------

/** The entity alias of a login's entity on `mount` (read with the root client). */
export async function aliasOf(vault: VaultClient, entityId: string, mount: string): Promise<{ aliasId?: string; aliasName?: string }> {
  const [ent, auths] = await Promise.all([vault.read(`identity/entity/id/${entityId}`), vault.read("sys/auth")]);
  const accessor = ((auths.body?.data ?? auths.body) as Record<string, { accessor?: string }>)[`${mount}/`]?.accessor;
  const alias = ((ent.body?.data?.aliases ?? []) as { id: string; name: string; mount_accessor: string }[]).find(
    (a) => a.mount_accessor === accessor,
  );
  return alias ? { aliasId: alias.id, aliasName: alias.name } : {};
}

/**
 * Deletes and recreates `ns/sa`, logs in before and after, and compares the entities: a new one
 * unless the role is meant to alias by name (then the same one is the intent).
 */
export async function identityContinuity(o: {
  d: ProbeDeps;
  probe: AccessProbe;
  caseName: string;
  mount: string;
  role: string;
  spec: RoleShape;
  namespace: string;
  serviceAccount: string;
  aliasByName: boolean;
}): Promise<IdentityRecord> {
  const audience = o.spec.audience ? String(o.spec.audience) : undefined;
  const loginAs = async (what: string) => {
    // Right after a (re)creation the apiserver's cache may not know the ServiceAccount yet.
    return waitFor(
      async () => {
        const res = await o.d.login(o.mount, o.role, await o.probe.freshToken(o.namespace, o.serviceAccount, audience));
        if (res.status === 200) return res.body.auth as { entity_id: string; accessor: string };
        if (res.status === 403) return undefined;
        throw new Error(`login ${what}: ${describeResponse(res)}`);
      },
      { what: `login as ${o.namespace}/${o.serviceAccount} to role ${o.role} ${what}`, timeoutMs: 15_000, intervalMs: 250 },
    );
  };
  const first = await loginAs("before the ServiceAccount is recreated");
  const before = { entityId: first.entity_id, ...(await aliasOf(o.d.vault, first.entity_id, o.mount)) };
  await o.d.kube.deleteServiceAccount(o.namespace, o.serviceAccount);
  if (o.serviceAccount === "default") {
    // The service-account controller recreates `default` by itself.
    await waitFor(
      () =>
        o.d.kube
          .serviceAccountUid(o.namespace, "default")
          .catch(() => "")
          .then(Boolean),
      {
        what: `ServiceAccount ${o.namespace}/default is recreated`,
        timeoutMs: 30_000,
      },
    );
  } else {
    await waitFor(
      async () => {
        try {
          await o.d.kube.createServiceAccount(o.namespace, o.serviceAccount);
          return true;
        } catch (err) {
          if ((err as { code?: number }).code === 409) return false; // still being deleted
          throw new Error(errorMessage(err));
        }
      },
      { what: `recreate ServiceAccount ${o.namespace}/${o.serviceAccount}`, timeoutMs: 15_000 },
    );
  }
  const second = await loginAs("after the ServiceAccount is recreated");
  const after = { entityId: second.entity_id, ...(await aliasOf(o.d.vault, second.entity_id, o.mount)) };
  for (const a of [first.accessor, second.accessor])
    await o.d.vault.write("auth/token/revoke-accessor", { accessor: a }).catch(() => undefined);
  const sameEntity = before.entityId === after.entityId;
  const source = String(o.spec.alias_name_source ?? "serviceaccount_uid");
  const deviations: string[] = [];
  if (sameEntity && !o.aliasByName)
    deviations.push(
      `role ${o.role} aliases entities by ServiceAccount name (alias_name_source=${source}): ${o.namespace}/${o.serviceAccount}, deleted and recreated, inherits entity ${before.entityId} and what is attached to it: set alias_name_source=serviceaccount_uid, or declare aliasByName: true in the intent`,
    );
  if (!sameEntity && o.aliasByName)
    deviations.push(
      `role ${o.role} is meant to alias by name, but the recreated ${o.namespace}/${o.serviceAccount} got a new entity (alias_name_source=${source})`,
    );
  return {
    case: o.caseName,
    role: o.role,
    identity: key(o.namespace, o.serviceAccount),
    aliasNameSource: source,
    before,
    after,
    sameEntity,
    deviations,
  };
}
