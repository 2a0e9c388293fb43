import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SuiteContext } from "../lib/vitest/suite.ts";
import { login, writeRole, type RoleSpec } from "../lib/auth-setup/steps.ts";
import { expectationsFor } from "../lib/fixtures/expectations.ts";
import { describeResponse } from "../lib/vault/client.ts";
import { waitFor } from "../lib/wait.ts";

/**
 * Renewal of a kubernetes-auth token (path_login.go pathLoginRenew): the role is re-read (its TTLs
 * apply; a deleted role ends renewal). HashiCorp does not repeat TokenReview; OpenBao does
 * (expectations: renewalAfterServiceAccountDeleted).
 */
describe("token renewal", () => {
  let ctx: SuiteContext;
  let mount: string;
  let ns: string;

  beforeAll(async () => {
    ctx = await SuiteContext.create("renewal");
    ({ mount } = await ctx.standardAuth());
    ns = await ctx.namespace("app");
  });
  afterAll(() => ctx?.cleanup());

  /** A fresh ServiceAccount and role, and a login with it; returns the token's client. */
  async function loggedIn(spec: Partial<RoleSpec> = {}) {
    const sa = ctx.name("sa");
    await ctx.kube.createServiceAccount(ns, sa);
    const role = ctx.name("role");
    const full: RoleSpec = {
      bound_service_account_names: [sa],
      bound_service_account_namespaces: [ns],
      token_ttl: "30m",
      token_max_ttl: "2h",
      ...spec,
    };
    await writeRole(ctx.vault, mount, role, full);
    const jwt = await ctx.kube.requestToken(ns, sa);
    const res = await login(ctx.vault, mount, role, jwt);
    expect(res.status, describeResponse(res)).toBe(200);
    expect(res.body.auth).toMatchObject({ renewable: true, lease_duration: 1800 });
    return { sa, role, jwt, full, client: ctx.vault.withToken(res.body.auth!.client_token) };
  }

  it("after the ServiceAccount is deleted a new login is refused (403); renewal: HashiCorp renews (no TokenReview), OpenBao refuses (TokenReview again)", async () => {
    const { sa, role, client } = await loggedIn();
    // A sibling token, minted before the deletion and never presented: the apiserver has not cached
    // it (it caches successful authentications for 10 s), so its refusal shows at once.
    const siblings = await Promise.all([1, 2, 3, 4].map(() => ctx.kube.requestToken(ns, sa)));
    await ctx.kube.deleteServiceAccount(ns, sa);
    let refused = await login(ctx.vault, mount, role, siblings[0]!);
    // Only if the apiserver's ServiceAccount informer lags the delete: another unseen sibling.
    for (const next of siblings.slice(1)) {
      if (refused.status !== 200) break;
      await new Promise((r) => setTimeout(r, 300));
      refused = await login(ctx.vault, mount, role, next);
    }
    expect(refused.status, describeResponse(refused)).toBe(403);
    expect(refused.body.errors?.join(" ")).toContain("permission denied");
    const refusal = expectationsFor(ctx.info.flavor, ctx.info.vault.version).renewalAfterServiceAccountDeleted;
    // A flavor that reviews the login's JWT again on renewal meets the apiserver's 10 s cache of
    // that (presented) JWT: renewal is refused once the cache entry expires.
    const renewed = refusal
      ? await waitFor(
          async () => {
            const r = await client.write("auth/token/renew-self", {});
            return r.status === 200 ? undefined : r;
          },
          { what: "renewal is refused once the apiserver's cached review expires", timeoutMs: 15_000, intervalMs: 250 },
        )
      : await client.write("auth/token/renew-self", {});
    if (refusal) {
      expect(renewed.status, describeResponse(renewed)).toBe(refusal.status);
      expect(renewed.body.errors?.join(" ")).toContain(refusal.error);
      expect(renewed.body.errors?.join(" ")).toContain(sa);
    } else {
      expect(renewed.status, describeResponse(renewed)).toBe(200);
      expect(renewed.body.auth).toMatchObject({ renewable: true, lease_duration: 1800 });
      expect(renewed.body.auth.metadata).toMatchObject({ role, service_account_name: sa });
    }
  });

  it("fails renewal once the role is deleted (status and `role <r> does not exist during renewal`)", async () => {
    const { role, client } = await loggedIn();
    await ctx.vault.must("DELETE", `auth/${mount}/role/${role}`);
    const exp = expectationsFor(ctx.info.flavor, ctx.info.vault.version).renewalRoleDeleted;
    const res = await client.write("auth/token/renew-self", {});
    expect(res.status, describeResponse(res)).toBe(exp.status);
    expect(res.body.errors?.join(" ")).toContain(`role ${role} does not exist during renewal`);
    // The token itself stays valid until its lease ends.
    expect((await client.read("auth/token/lookup-self")).status).toBe(200);
  });

  it("applies the role's new TTL at the next renewal (token_ttl 30m -> 5m)", async () => {
    const { role, full, client } = await loggedIn();
    await writeRole(ctx.vault, mount, role, { ...full, token_ttl: "5m" });
    const res = await client.write("auth/token/renew-self", {});
    expect(res.status, describeResponse(res)).toBe(200);
    expect(res.body.auth).toMatchObject({ renewable: true, lease_duration: 300 });
    const self = await client.read("auth/token/lookup-self");
    expect(self.body.data.ttl).toBeLessThanOrEqual(300);
    expect(self.body.data.ttl).toBeGreaterThan(280);
  });

  it("applies the role's new max TTL at the next renewal (token_max_ttl 2h -> 10m caps the lease)", async () => {
    const { role, full, client } = await loggedIn();
    await writeRole(ctx.vault, mount, role, { ...full, token_ttl: "30m", token_max_ttl: "40m" });
    await writeRole(ctx.vault, mount, role, { ...full, token_ttl: "5m", token_max_ttl: "10m" });
    const res = await client.write("auth/token/renew-self", { increment: "1h" });
    expect(res.status, describeResponse(res)).toBe(200);
    expect(res.body.auth.lease_duration).toBeLessThanOrEqual(600);
    expect(res.body.auth.lease_duration).toBeGreaterThan(580);
  });
});
