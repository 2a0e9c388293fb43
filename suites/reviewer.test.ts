import { describe, expect } from "vitest";
import { suiteTest } from "../lib/vitest/fixtures.ts";
import { expectRefused, refusedWithFreshToken, siblings } from "../lib/vitest/assert.ts";
import { describeResponse } from "../lib/vault/client.ts";
import { authConfigFor, login, reviewerJwt, writeAuthConfig, writeRole } from "../lib/auth-setup/steps.ts";

// The TokenReview side: who asks Kubernetes whether a token is valid, and what happens when
// that identity lacks system:auth-delegator or disappears (vault#12855, #14072, #15430).
const withApp = suiteTest("reviewer").extend("app", { scope: "file" }, async ({ ctx }) => {
  const ns = await ctx.namespace("app");
  await ctx.kube.createServiceAccount(ns, "app");
  async function mountWithRole(config: Parameters<typeof authConfigFor>[1], names = ["app"], namespace = ns) {
    const mount = await ctx.mount();
    await writeAuthConfig(ctx.vault, mount, authConfigFor(ctx.info, config));
    await writeRole(ctx.vault, mount, "app", { bound_service_account_names: names, bound_service_account_namespaces: [namespace] });
    return mount;
  }
  return { ns, mountWithRole };
});

const expectDenied = (res: { status: number; body: { errors?: string[] } }) => expectRefused(res, 403, "permission denied");

const it = withApp.extend("clients", { scope: "file" }, async ({ ctx, app: { mountWithRole } }) => {
  // The fixture's reviewer SA (bound to auth-delegator) acts as a client here; `plain` is not bound.
  const cns = await ctx.namespace("client");
  const bound = await ctx.reviewer(cns);
  const boundClient = bound.serviceAccount;
  await ctx.kube.createServiceAccount(cns, "plain");
  const mount = await mountWithRole(undefined, [bound.serviceAccount, "plain"], cns);
  return { cns, mount, boundClient };
});

describe("token reviewer", () => {
  it("a reviewer bound to system:auth-delegator, with a TokenRequest token instead of a Secret, works (200)", async ({
    ctx,
    app: { ns, mountWithRole },
  }) => {
    const rns = await ctx.namespace("rev");
    const jwt = await reviewerJwt(ctx.kube, await ctx.reviewer(rns), "tokenrequest");
    const mount = await mountWithRole(jwt);
    const res = await login(ctx.vault, mount, "app", await ctx.kube.requestToken(ns, "app"));
    expect(res.status, describeResponse(res)).toBe(200);
    expect(res.body.auth?.metadata.service_account_name).toBe("app");
  });

  it("a reviewer without the auth-delegator binding makes every login fail (403 permission denied)", async ({
    ctx,
    app: { ns, mountWithRole },
  }) => {
    const rns = await ctx.namespace("rev");
    const jwt = await reviewerJwt(ctx.kube, await ctx.reviewer(rns, { bind: false }));
    const mount = await mountWithRole(jwt);
    expectDenied(await login(ctx.vault, mount, "app", await ctx.kube.requestToken(ns, "app")));
  });

  it("a deleted reviewer service account makes logins fail (403); rewriting the config with a live reviewer recovers (200)", async ({
    ctx,
    app: { ns, mountWithRole },
  }) => {
    const rns = await ctx.namespace("rev");
    const reviewer = await ctx.reviewer(rns);
    // kube-apiserver caches a successful authentication of a bearer token for 10 s, but only of a
    // token it has seen: one reviewer token proves the setup works, siblings of it (same
    // ServiceAccount, minted before the deletion, never presented) prove the refusal at once.
    const mint = () => reviewerJwt(ctx.kube, reviewer, "tokenrequest");
    const used = await mint();
    const fresh = await siblings(mint);
    const working = await mountWithRole(used);
    const deleted = await mountWithRole(fresh[0]);
    const ok = await login(ctx.vault, working, "app", await ctx.kube.requestToken(ns, "app"));
    expect(ok.status, describeResponse(ok)).toBe(200);
    expect(ok.body.auth?.metadata.service_account_name).toBe("app");
    await ctx.kube.deleteServiceAccount(rns, reviewer.serviceAccount);
    // The apiserver's informer may still hold the ServiceAccount for a moment, and a stale success
    // would be cached too: each attempt gives Vault the next never-presented sibling. Bounded.
    const refused = await refusedWithFreshToken(
      fresh,
      async (reviewerToken, i) => {
        if (i > 0) await writeAuthConfig(ctx.vault, deleted, authConfigFor(ctx.info, reviewerToken));
        return login(ctx.vault, deleted, "app", await ctx.kube.requestToken(ns, "app"));
      },
      "logins once the reviewer service account is deleted",
    );
    expectDenied(refused);
    await ctx.kube.createServiceAccount(rns, reviewer.serviceAccount);
    await writeAuthConfig(ctx.vault, deleted, authConfigFor(ctx.info, await reviewerJwt(ctx.kube, reviewer, "tokenrequest")));
    const res = await login(ctx.vault, deleted, "app", await ctx.kube.requestToken(ns, "app"));
    expect(res.status, describeResponse(res)).toBe(200);
  });

  describe("no token_reviewer_jwt: the client's own JWT is the TokenReview bearer", () => {
    it("reads back token_reviewer_jwt_set=false", async ({ ctx, clients: { mount } }) => {
      const res = await ctx.vault.read(`auth/${mount}/config`);
      expect(res.status).toBe(200);
      expect(res.body.data.token_reviewer_jwt_set).toBe(false);
    });

    it("accepts a client that is itself bound to system:auth-delegator (200)", async ({ ctx, clients: { cns, mount, boundClient } }) => {
      const res = await login(ctx.vault, mount, "app", await ctx.kube.requestToken(cns, boundClient));
      expect(res.status, describeResponse(res)).toBe(200);
      expect(res.body.auth?.metadata.service_account_name).toBe(boundClient);
    });

    it("rejects a client that may not create TokenReviews (403 permission denied)", async ({ ctx, clients: { cns, mount } }) => {
      expectDenied(await login(ctx.vault, mount, "app", await ctx.kube.requestToken(cns, "plain")));
    });
  });
});
