import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { loadCases, mapPath, substitute, type Expect } from "../lib/target/cases.ts";
import { SuiteContext } from "../lib/target/suite.ts";
import { login, policyFromFixtures, rebasePolicy, runMark, writeRole } from "../lib/target/steps.ts";
import { waitFor } from "../lib/wait.ts";
import { describeResponse, type VaultClient, type VaultResponse } from "../lib/vault/client.ts";

// The cases of fixtures/cases/*.yaml (or your --fixtures DIR): your policies, roles and the
// outcomes you expect, checked against real Vault and real Kubernetes.
const cases = loadCases(inject("fixturesDir"));

function expectOutcome(res: VaultResponse, e: Expect) {
  expect(res.status, describeResponse(res)).toBe(e.status);
  if (e.error) expect(res.body?.errors?.join(" ")).toContain(e.error);
  if (e.policies) expect([...(res.body?.auth?.policies ?? [])].sort()).toEqual([...e.policies].sort());
  if (e.data) expect(res.body?.data).toEqual(e.data);
  if (e.maxLeaseSeconds !== undefined) expect(res.body?.auth?.lease_duration, "token lease (s)").toBeLessThanOrEqual(e.maxLeaseSeconds);
}

describe.each(cases)("$name ($file)", (c) => {
  let ctx: SuiteContext;
  let mount: string;
  let ns: string;
  let other: string | undefined;
  const mounts: Record<string, string> = {};
  const policyNames: Record<string, string> = {};
  const roleNames: Record<string, string> = {};
  const tokens: Record<string, VaultClient> = {};

  beforeAll(async () => {
    ctx = await SuiteContext.create("cases");
    let reviewer;
    ({ mount, reviewer } = await ctx.standardAuth({ config: c.authConfig, bind: c.reviewer?.bind }));
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
    if (c.defaultPolicy) {
      const before = String((await ctx.vault.must("GET", "sys/policies/acl/default")).body.data.policy);
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
    }
  });
  afterAll(() => ctx?.cleanup());

  const policyOf = (p: string) => policyNames[p] ?? p;

  it.each(c.logins ?? [])("login $serviceAccount as role $role -> $expect.status", async (l) => {
    const jwt = await ctx.kube.requestToken(l.namespace === "other" ? other! : ns, l.serviceAccount, { audiences: l.audiences });
    const res = await login(ctx.vault, mount, roleNames[l.role], jwt);
    expectOutcome(res, { ...l.expect, policies: l.expect.policies?.map(policyOf) });
    if (res.status === 200) tokens[l.role] ??= ctx.vault.withToken(res.body.auth!.client_token);
  });

  it.each(c.requests ?? [])("$method $path as $as -> $expect.status", async (r) => {
    const client = tokens[r.as];
    expect(client, `no successful login for role ${r.as} earlier in this case`).toBeDefined();
    expectOutcome(await client!.request(r.method, mapPath(r.path, mounts), r.body), r.expect);
  });
});
