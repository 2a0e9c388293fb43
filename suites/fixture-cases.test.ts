import { describe, expect, inject, it } from "vitest";
import { basename } from "node:path";
import { AccessProbe, capabilityMap, identityContinuity, type ProbeDeps } from "../lib/access/probe.ts";
import { asList } from "../lib/access/match.ts";
import "../lib/access/report.ts";
import { loadCases, mapPath, substitute, type CaseFile, type LoginIntent } from "../lib/fixtures/cases.ts";
import { type Expect } from "../lib/fixtures/cases.ts";
import { expectationsFor } from "../lib/fixtures/expectations.ts";
import type { SuiteContext } from "../lib/vitest/suite.ts";
import { describeContext } from "../lib/vitest/fixtures.ts";
import { expectRefused } from "../lib/vitest/assert.ts";
import { login, policyFromFixtures, rebasePolicy, runMark, writeRole } from "../lib/auth-setup/steps.ts";
import { waitFor } from "../lib/wait.ts";
import { describeResponse, type VaultClient, type VaultResponse } from "../lib/vault/client.ts";

// The cases of fixtures/cases/*.yaml (or your --fixtures DIR): your policies, roles and the
// outcomes you expect, checked against real Vault and real Kubernetes.
const cases = loadCases(inject("fixturesDir"));

function expectOutcome(res: VaultResponse, e: Expect) {
  if (e.error) expectRefused(res, e.status, e.error);
  else expect(res.status, describeResponse(res)).toBe(e.status);
  if (e.policies) expect([...(res.body?.auth?.policies ?? [])].sort()).toEqual([...e.policies].sort());
  if (e.data) expect(res.body?.data).toEqual(e.data);
  if (e.maxLeaseSeconds !== undefined) expect(res.body?.auth?.lease_duration, "token lease (s)").toBeLessThanOrEqual(e.maxLeaseSeconds);
}

/** A ClusterRole to get namespaces, bound to the reviewer: what namespace selectors need. */
async function grantNamespaceRead(ctx: SuiteContext, namespace: string, serviceAccount: string): Promise<void> {
  const name = ctx.name("vkc-ns-reader");
  const labels = { "vault-k8s-conformance/run": ctx.info.runId };
  await ctx.kube.create({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name, labels },
    rules: [{ apiGroups: [""], resources: ["namespaces"], verbs: ["get"] }],
  } as never);
  ctx.teardown.defer(`delete ClusterRole ${name}`, () =>
    ctx.kube.deleteObject({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name } }),
  );
  await ctx.kube.create({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: { name, labels },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
    subjects: [{ kind: "ServiceAccount", name: serviceAccount, namespace }],
  } as never);
  ctx.teardown.defer(`delete ClusterRoleBinding ${name}`, () =>
    ctx.kube.deleteObject({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", metadata: { name } }),
  );
}

/** Who may log in to `role`: the intent's list, else the identities of the case's logins that expect 200. */
function loginIntent(c: CaseFile, role: string): LoginIntent[] {
  const declared = c.intent?.[role]?.login;
  if (declared) return declared;
  return (c.logins ?? [])
    .filter((l) => l.role === role && l.expect.status === 200)
    .map((l) => ({ serviceAccount: l.serviceAccount, namespace: l.namespace === "other" ? "${other}" : "${namespace}" }));
}

/** Roles whose identity continuity can be shown from here: a login is possible (no CIDR binding) and intent names one in the case. */
function identityRows(c: CaseFile): string[] {
  return Object.keys(c.roles ?? {}).filter(
    (r) =>
      asList((c.roles?.[r] as { token_bound_cidrs?: string[] }).token_bound_cidrs).length === 0 &&
      loginIntent(c, r).some((i) => !i.namespaceSelector),
  );
}

// Titles are case ids in results.json (compared across runs and machines by results:diff): built
// here in full, never truncated, with the case file's name rather than its absolute path, and
// unique within a case (two logins of one identity differ by namespace or audience).
function titled<T>(items: T[], title: (item: T) => string): [string, T][] {
  const seen = new Map<string, number>();
  return items.map((item) => {
    const t = title(item);
    const n = (seen.get(t) ?? 0) + 1;
    seen.set(t, n);
    return [n === 1 ? t : `${t} (#${n})`, item];
  });
}
const loginTitle = (l: NonNullable<CaseFile["logins"]>[number]) =>
  `login ${l.namespace === "other" ? "other/" : ""}${l.serviceAccount}${l.audiences ? ` (aud ${l.audiences.join(",")})` : ""} as role ${l.role} -> ${l.expect.status}`;

describe.for(titled(cases, (c) => `${c.name} (${basename(c.file)})`))("%s", ([, c]) => {
  let ctx: SuiteContext;
  let mount: string;
  let ns: string;
  let other: string | undefined;
  const mounts: Record<string, string> = {};
  const policyNames: Record<string, string> = {};
  const roleNames: Record<string, string> = {};
  const tokens: Record<string, VaultClient> = {};
  const tokenPolicies: Record<string, string[]> = {};
  const tokenAccessors: Record<string, string> = {};
  const roleBodies: Record<string, Record<string, unknown>> = {};
  let baseline: string;
  let probe: AccessProbe;
  let deps: ProbeDeps;

  // One context per case, not per file: each case restores Vault's `default` policy when it ends.
  describeContext("cases", async (context) => {
    ctx = context;
    let reviewer;
    ({ mount, reviewer } = await ctx.standardAuth({ config: c.authConfig, bind: c.reviewer?.bind }));
    if (c.reviewer?.readNamespaces) await grantNamespaceRead(ctx, reviewer.namespace, reviewer.serviceAccount);
    if (c.reviewer?.deleteServiceAccount) await ctx.kube.deleteServiceAccount(reviewer.namespace, reviewer.serviceAccount);
    ns = await ctx.namespace("case");
    if ((c.logins ?? []).some((l) => l.namespace === "other")) other = await ctx.namespace("other");
    for (const [name, m] of Object.entries(c.mounts ?? {})) {
      mounts[name] = await ctx.kv(name, m.version ?? 1);
    }
    for (const s of c.seed ?? []) await ctx.vault.must("POST", mapPath(s.path, mounts), s.body);
    for (const [name, file] of Object.entries(c.policies ?? {})) {
      policyNames[name] = await ctx.policy(name, rebasePolicy(await policyFromFixtures(ctx.fixturesDir, file), mounts));
    }
    // Vault's `default` policy as it is before the case touches it: what every token may do anyway.
    const defaultBefore = String((await ctx.vault.must("GET", "sys/policies/acl/default")).body.data.policy);
    baseline = await ctx.policy("baseline", defaultBefore);
    if (c.defaultPolicy) {
      const before = defaultBefore;
      // Marked, so that an interrupted run's sweep can take exactly this block out again.
      const block = `# begin ${runMark(ctx.info.runId)}\n${rebasePolicy(c.defaultPolicy.append, mounts)}\n# end ${runMark(ctx.info.runId)}`;
      await ctx.vault.must("PUT", "sys/policies/acl/default", { policy: `${before}\n${block}\n` });
      ctx.teardown.defer("restore the default policy", () => ctx.vault.must("PUT", "sys/policies/acl/default", { policy: before }));
    }
    for (const sa of other ? [...new Set((c.logins ?? []).filter((l) => l.namespace === "other").map((l) => l.serviceAccount))] : [])
      await ctx.kube.createServiceAccount(other!, sa);
    for (const sa of c.serviceAccounts ?? []) {
      if (sa !== "default") await ctx.kube.createServiceAccount(ns, sa);
      // `default` comes from the service-account controller, shortly after the namespace
      else
        await waitFor(() => ctx.kube.serviceAccountUid(ns, sa).then(Boolean), {
          what: `ServiceAccount ${ns}/default exists`,
          timeoutMs: 30_000,
        });
    }
    for (const [name, spec] of Object.entries(c.roles ?? {})) {
      roleNames[name] = name;
      const body = substitute(spec, { namespace: ns });
      for (const key of ["token_policies", "policies"]) {
        const list = body[key];
        if (Array.isArray(list)) body[key] = list.map((p: string) => policyNames[p] ?? p);
      }
      await writeRole(ctx.vault, mount, name, body as never);
      roleBodies[name] = body;
    }
    deps = {
      kube: ctx.kube,
      vault: ctx.vault,
      teardown: ctx.teardown,
      runId: ctx.info.runId,
      name: (prefix) => ctx.name(prefix),
      login: (m, role, jwt) => login(ctx.vault, m, role, jwt),
    };
    probe = new AccessProbe(deps);
  });

  const policyOf = (p: string) => policyNames[p] ?? p;

  it.for(titled(c.logins ?? [], loginTitle))("%s", async ([, l]) => {
    const jwt = await ctx.kube.requestToken(l.namespace === "other" ? other! : ns, l.serviceAccount, { audiences: l.audiences });
    const res = await login(ctx.vault, mount, roleNames[l.role], jwt);
    expectOutcome(res, { ...l.expect, policies: l.expect.policies?.map(policyOf) });
    if (res.status === 200 && !tokens[l.role]) {
      tokens[l.role] = ctx.vault.withToken(res.body.auth!.client_token);
      tokenPolicies[l.role] = res.body.auth!.policies;
      tokenAccessors[l.role] = res.body.auth!.accessor;
    }
  });

  it.for(titled(c.requests ?? [], (r) => `${r.method} ${r.path} as ${r.as} -> ${r.expect.status}`))("%s", async ([, r]) => {
    const client = tokens[r.as];
    expect(client, `no successful login for role ${r.as} earlier in this case`).toBeDefined();
    expectOutcome(await client!.request(r.method, mapPath(r.path, mounts), r.body), r.expect);
  });

  const vars = () => ({ namespace: ns, other: other ?? "" });
  const intentFor = (role: string) =>
    loginIntent(c, role)
      .map((i) => substitute(i, vars()))
      .map((i) => (i.namespaceSelector ? i : { ...i, namespace: i.namespace ?? ns }));

  // Every other identity is refused: the case's intent decides who may log in (lib/access/probe.ts).
  it.for(Object.keys(c.roles ?? {}))("access: role %s lets in exactly its intended identities", async (role, { task }) => {
    const map = await probe.accessMap(
      {
        caseName: c.name,
        mount,
        role,
        spec: roleBodies[role]!,
        intent: intentFor(role),
        cidrRejected: expectationsFor(ctx.info.flavor, ctx.info.versions.vault ?? ctx.info.versions.bao ?? "").cidrRejected,
      },
      [ns, ...(other ? [other] : [])],
    );
    task.meta.vkcAccess = map;
    expect(map.entries.filter((e) => e.outcome !== "skipped").length, "identities probed").toBeGreaterThan(0);
    expect(map.deviations, `access map of role ${role}`).toEqual([]);
  });

  // Nothing beyond intent: the token's capabilities over a path set built from this Vault.
  it.for(Object.keys(c.roles ?? {}).filter((r) => c.intent?.[r]?.capabilities))(
    "capabilities: role %s's token has nothing beyond intent",
    async (role, { task }) => {
      const spec = roleBodies[role]!;
      const token = tokens[role];
      const rolePolicies = [...asList(spec.token_policies as string[]), ...asList(spec.policies as string[])];
      const policies = token ? tokenPolicies[role]! : spec.token_no_default_policy ? rolePolicies : [...rolePolicies, "default"];
      const intent = Object.fromEntries(Object.entries(c.intent![role]!.capabilities!).map(([p, caps]) => [mapPath(p, mounts), caps]));
      const map = await capabilityMap({
        vault: ctx.vault,
        token,
        accessor: tokenAccessors[role],
        via: token ? "a real login of the case" : "a token holding the role's policies (no login possible from here)",
        caseName: c.name,
        role,
        mount,
        roles: Object.keys(c.roles ?? {}),
        policies,
        baselinePolicy: baseline,
        intent,
      });
      task.meta.vkcCapabilities = map;
      expect(map.probed, "paths probed").toBeGreaterThan(10);
      expect(map.deviations, `capability map of role ${role}`).toEqual([]);
    },
  );

  // A ServiceAccount deleted and recreated under the same name is a new identity, unless intended.
  it.for(identityRows(c))("identity: role %s gives a recreated ServiceAccount a new entity", async (role, { task }) => {
    const who = intentFor(role).find((i) => !i.namespaceSelector)!;
    const rec = await identityContinuity({
      d: deps,
      probe,
      caseName: c.name,
      mount,
      role,
      spec: roleBodies[role]!,
      namespace: who.namespace!,
      serviceAccount: who.serviceAccount,
      aliasByName: c.intent?.[role]?.aliasByName ?? false,
    });
    task.meta.vkcIdentity = rec;
    expect(rec.before.entityId, "entity of the first login").toMatch(/^[0-9a-f-]{36}$/);
    expect(rec.deviations, `identity of role ${role}`).toEqual([]);
  });
});
