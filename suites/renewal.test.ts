import { describe, expect } from "vitest";
import { suiteTest } from "../lib/vitest/fixtures.ts";
import { expectRefused, refusedWithFreshToken, siblings } from "../lib/vitest/assert.ts";
import { login, writeRole, type RoleSpec } from "../lib/auth-setup/steps.ts";
import { expectationsFor } from "../lib/fixtures/expectations.ts";
import { describeResponse } from "../lib/vault/client.ts";
import { waitFor } from "../lib/wait.ts";

/**
 * Renewal of a kubernetes-auth token (path_login.go pathLoginRenew): the role is re-read (its TTLs
 * apply; a deleted role ends renewal). HashiCorp does not repeat TokenReview; OpenBao does
 * (expectations: renewalAfterServiceAccountDeleted).
 */
const it = suiteTest("renewal").extend("app", { scope: "file" }, async ({ ctx }) => {
  const { mount } = await ctx.standardAuth();
  const ns = await ctx.namespace("app");
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
  return { mount, ns, loggedIn };
});

describe("token renewal", () => {
  it("after the ServiceAccount is deleted a new login is refused (403); renewal: HashiCorp renews (no TokenReview), OpenBao refuses (TokenReview again)", async ({
    ctx,
    app: { mount, ns, loggedIn },
  }) => {
    const { sa, role, client } = await loggedIn();
    // A sibling token, minted before the deletion and never presented: the apiserver has not cached
    // it (it caches successful authentications for 10 s), so its refusal shows at once.
    // Another unseen sibling only if the apiserver's ServiceAccount informer lags the delete.
    const fresh = await siblings(() => ctx.kube.requestToken(ns, sa), 4);
    await ctx.kube.deleteServiceAccount(ns, sa);
    const refused = await refusedWithFreshToken(
      fresh,
      (jwt) => login(ctx.vault, mount, role, jwt),
      "a login of the deleted ServiceAccount",
    );
    expectRefused(refused, 403, "permission denied");
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
      expectRefused(renewed, refusal.status, refusal.error);
      expect(renewed.body.errors?.join(" ")).toContain(sa);
    } else {
      expect(renewed.status, describeResponse(renewed)).toBe(200);
      expect(renewed.body.auth).toMatchObject({ renewable: true, lease_duration: 1800 });
      expect(renewed.body.auth.metadata).toMatchObject({ role, service_account_name: sa });
    }
  });

  it("fails renewal once the role is deleted (status and `role <r> does not exist during renewal`)", async ({
    ctx,
    app: { mount, loggedIn },
  }) => {
    const { role, client } = await loggedIn();
    await ctx.vault.must("DELETE", `auth/${mount}/role/${role}`);
    const exp = expectationsFor(ctx.info.flavor, ctx.info.vault.version).renewalRoleDeleted;
    const res = await client.write("auth/token/renew-self", {});
    expectRefused(res, exp.status, `role ${role} does not exist during renewal`);
    // The token itself stays valid until its lease ends.
    expect((await client.read("auth/token/lookup-self")).status).toBe(200);
  });

  it("applies the role's new TTL at the next renewal (token_ttl 30m -> 5m)", async ({ ctx, app: { mount, loggedIn } }) => {
    const { role, full, client } = await loggedIn();
    await writeRole(ctx.vault, mount, role, { ...full, token_ttl: "5m" });
    const res = await client.write("auth/token/renew-self", {});
    expect(res.status, describeResponse(res)).toBe(200);
    expect(res.body.auth).toMatchObject({ renewable: true, lease_duration: 300 });
    const self = await client.read("auth/token/lookup-self");
    expect(self.body.data.ttl).toBeLessThanOrEqual(300);
    expect(self.body.data.ttl).toBeGreaterThan(280);
  });

  it("applies the role's new max TTL at the next renewal (token_max_ttl 2h -> 10m caps the lease)", async ({
    ctx,
    app: { mount, loggedIn },
  }) => {
    const { role, full, client } = await loggedIn();
    await writeRole(ctx.vault, mount, role, { ...full, token_ttl: "30m", token_max_ttl: "40m" });
    await writeRole(ctx.vault, mount, role, { ...full, token_ttl: "5m", token_max_ttl: "10m" });
    const res = await client.write("auth/token/renew-self", { increment: "1h" });
    expect(res.status, describeResponse(res)).toBe(200);
    expect(res.body.auth.lease_duration).toBeLessThanOrEqual(600);
    expect(res.body.auth.lease_duration).toBeGreaterThan(580);
  });
});
