import { decodeJwt, generateKeyPair, SignJWT } from "jose";
import { describe, expect, inject } from "vitest";
import { suiteTest } from "../lib/vitest/fixtures.ts";
import { expectRefused, refusedWithFreshToken, siblings } from "../lib/vitest/assert.ts";
import { describeResponse } from "../lib/vault/client.ts";
import { login, writeRole } from "../lib/auth-setup/steps.ts";
import { expectationsFor } from "../lib/fixtures/expectations.ts";
import type { SuiteContext } from "../lib/vitest/suite.ts";
import { waitFor } from "../lib/wait.ts";

// Logins that must be refused, each with its status AND the error Vault gives. The order of
// Vault's checks is part of the contract (BEHAVIOR.md: name before namespace since plugin 0.18).
const it = suiteTest("login-rejected").extend("app", { scope: "file" }, async ({ ctx }) => {
  const { mount } = await ctx.standardAuth();
  const ns = await ctx.namespace("app");
  const otherNs = await ctx.namespace("other");
  for (const sa of ["app", "intruder"]) await ctx.kube.createServiceAccount(ns, sa);
  for (const sa of ["app", "intruder"]) await ctx.kube.createServiceAccount(otherNs, sa);
  const bound = { bound_service_account_names: ["app"], bound_service_account_namespaces: [ns], token_ttl: "10m" };
  await writeRole(ctx.vault, mount, "app", bound);
  await writeRole(ctx.vault, mount, "aud", { ...bound, audience: "vault" });
  await writeRole(ctx.vault, mount, "cidr", { ...bound, token_bound_cidrs: ["10.255.0.0/16"] });
  return { mount, ns, otherNs };
});
type App = { mount: string; ns: string; otherNs: string };

const expectAccepted = (res: Awaited<ReturnType<typeof login>>, serviceAccount: string) => {
  expect(res.status, describeResponse(res)).toBe(200);
  expect(res.body.auth?.metadata.service_account_name).toBe(serviceAccount);
  return res.body.auth!;
};

async function forge(claims: Record<string, unknown>): Promise<string> {
  const { privateKey } = await generateKeyPair("RS256");
  return new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: "foreign" }).sign(privateKey);
}

describe("login rejected", () => {
  const table: {
    name: string;
    role: string | undefined;
    jwt: (ctx: SuiteContext, app: App) => Promise<string | undefined>;
    status: number;
    error: (ctx: SuiteContext) => string;
  }[] = [
    {
      name: "a service account whose name the role does not bind",
      role: "app",
      jwt: (ctx, { ns }) => ctx.kube.requestToken(ns, "intruder"),
      status: 403,
      error: () => "service account name not authorized",
    },
    {
      name: "a bound name in a namespace the role does not bind",
      role: "app",
      jwt: (ctx, { otherNs }) => ctx.kube.requestToken(otherNs, "app"),
      status: 403,
      error: () => "namespace not authorized",
    },
    {
      name: "neither name nor namespace bound (the name is checked first)",
      role: "app",
      jwt: (ctx, { otherNs }) => ctx.kube.requestToken(otherNs, "intruder"),
      status: 403,
      error: () => "service account name not authorized",
    },
    {
      name: "an unknown role",
      role: "no-such-role",
      jwt: (ctx, { ns }) => ctx.kube.requestToken(ns, "app"),
      status: 400,
      error: () => `invalid role name "no-such-role"`,
    },
    {
      name: "a request without role",
      role: undefined,
      jwt: (ctx, { ns }) => ctx.kube.requestToken(ns, "app"),
      status: 400,
      error: () => "missing role",
    },
    { name: "a request without jwt", role: "app", jwt: async () => undefined, status: 400, error: () => "missing jwt" },
    {
      name: "a JWT that does not parse",
      role: "app",
      jwt: async () => "not.a-jwt",
      status: 403,
      error: (ctx) => expectationsFor(ctx.info.flavor, ctx.info.vault.version).malformedJwt.error,
    },
    {
      name: "a token whose audience is not the role's audience",
      role: "aud",
      jwt: (ctx, { ns }) => ctx.kube.requestToken(ns, "app"),
      status: 403,
      error: () => "invalid audience (aud) claim",
    },
    {
      name: "a caller outside the role's token_bound_cidrs",
      role: "cidr",
      jwt: (ctx, { ns }) => ctx.kube.requestToken(ns, "app"),
      status: 403,
      error: (ctx) => expectationsFor(ctx.info.flavor, ctx.info.vault.version).cidrRejected.error,
    },
  ];

  it.for(table)("rejects $name ($status)", async (c, { ctx, app }) => {
    expectRefused(await login(ctx.vault, app.mount, c.role, await c.jwt(ctx, app)), c.status, c.error(ctx));
  });

  it("rejects a JWT with the right claims signed by a foreign key (TokenReview says no: 403 permission denied)", async ({
    ctx,
    app: { mount, ns },
  }) => {
    const real = decodeJwt(await ctx.kube.requestToken(ns, "app"));
    expectRefused(await login(ctx.vault, mount, "app", await forge(real)), 403, "permission denied");
  });

  it("rejects an expired token before asking Kubernetes (403, exp claim)", async ({ ctx, app: { mount, ns } }) => {
    const now = Math.floor(Date.now() / 1000);
    const real = decodeJwt(await ctx.kube.requestToken(ns, "app"));
    const expired = await forge({ ...real, iat: now - 7200, nbf: now - 7200, exp: now - 3600 });
    expectRefused(await login(ctx.vault, mount, "app", expired), 403, "invalid expiration time (exp) claim: token is expired");
  });

  it("rejects the token of a deleted service account (403 permission denied)", async ({ ctx, app: { mount, ns } }) => {
    await ctx.kube.createServiceAccount(ns, "short-lived");
    await writeRole(ctx.vault, mount, "short-lived", {
      bound_service_account_names: ["short-lived"],
      bound_service_account_namespaces: [ns],
    });
    const mint = () => ctx.kube.requestToken(ns, "short-lived");
    const used = await mint();
    const fresh = await siblings(mint);
    expectAccepted(await login(ctx.vault, mount, "short-lived", used), "short-lived");
    await ctx.kube.deleteServiceAccount(ns, "short-lived");
    expectRefused(
      await refusedWithFreshToken(fresh, (jwt) => login(ctx.vault, mount, "short-lived", jwt), "a token of the deleted ServiceAccount"),
      403,
      "permission denied",
    );
  });

  it("after a service account is deleted and recreated: the old token is refused, a new token logs in with the new UID", async ({
    ctx,
    app: { mount, ns },
  }) => {
    await ctx.kube.createServiceAccount(ns, "reborn");
    await writeRole(ctx.vault, mount, "reborn", { bound_service_account_names: ["reborn"], bound_service_account_namespaces: [ns] });
    const oldUid = await ctx.kube.serviceAccountUid(ns, "reborn");
    const mint = () => ctx.kube.requestToken(ns, "reborn");
    const used = await mint();
    const fresh = await siblings(mint);
    expect(expectAccepted(await login(ctx.vault, mount, "reborn", used), "reborn").metadata.service_account_uid).toBe(oldUid);
    await ctx.kube.deleteServiceAccount(ns, "reborn");
    const newUid = await ctx.kube.createServiceAccount(ns, "reborn");
    expect(newUid).not.toBe(oldUid);
    expectRefused(
      await refusedWithFreshToken(fresh, (jwt) => login(ctx.vault, mount, "reborn", jwt), "an old token of a recreated ServiceAccount"),
      403,
      "permission denied",
    );
    const newJwt = await ctx.kube.requestToken(ns, "reborn");
    // A refusal is never cached, so polling with one token is fine while the informer catches up.
    const ok = await waitFor(
      async () => {
        const r = await login(ctx.vault, mount, "reborn", newJwt);
        return r.status === 200 ? r : undefined;
      },
      { what: "Vault accepts the recreated ServiceAccount's new token", timeoutMs: 15_000, intervalMs: 250 },
    );
    expect(expectAccepted(ok, "reborn").metadata.service_account_uid).toBe(newUid);
  });

  it("rejects a token bound to a Pod once the Pod is deleted (403 permission denied)", async ({ ctx, app: { mount, ns } }) => {
    const pod = await ctx.kube.createPod(ns, ctx.name("pod"), "app");
    const mint = () => ctx.kube.requestToken(ns, "app", { boundPod: pod });
    const used = await mint();
    const fresh = await siblings(mint);
    expectAccepted(await login(ctx.vault, mount, "app", used), "app");
    await ctx.kube.deletePod(ns, pod.name);
    expectRefused(
      await refusedWithFreshToken(fresh, (jwt) => login(ctx.vault, mount, "app", jwt), "a token bound to the deleted Pod"),
      403,
      "permission denied",
    );
  });

  it.runIf(inject("slow"))(
    "kube-apiserver's 10 s token cache: a token it accepted still logs in right after its Pod is deleted, then is refused (403) within ~10 s (slow; VKC_SLOW=1)",
    { timeout: 60_000 },
    async ({ ctx, app: { mount, ns } }) => {
      const pod = await ctx.kube.createPod(ns, ctx.name("pod"), "app");
      const mint = () => ctx.kube.requestToken(ns, "app", { boundPod: pod });
      const used = await mint();
      const fresh = await siblings(mint);
      const presented = Date.now();
      expectAccepted(await login(ctx.vault, mount, "app", used), "app");
      await ctx.kube.deletePod(ns, pod.name);
      // The Pod is gone for a token the apiserver has not seen ...
      const refused = await refusedWithFreshToken(fresh, (jwt) => login(ctx.vault, mount, "app", jwt), "a token bound to the deleted Pod");
      expectRefused(refused, 403, "permission denied");
      // ... while the one it authenticated before is served from its cache,
      expectAccepted(await login(ctx.vault, mount, "app", used), "app");
      expect(Date.now() - presented).toBeLessThan(10_000);
      // ... until the entry expires (TokenSuccessCacheTTL, 10 s from the first authentication).
      const res = await waitFor(
        async () => {
          const r = await login(ctx.vault, mount, "app", used);
          return r.status === 200 ? undefined : r;
        },
        { what: "Vault refuses the cached pod-bound token once the apiserver's cache entry expires", timeoutMs: 20_000, intervalMs: 250 },
      );
      expectRefused(res, 403, "permission denied");
      expect(Date.now() - presented).toBeGreaterThanOrEqual(9_000);
    },
  );

  it.runIf(inject("slow"))(
    "rejects a real TokenRequest token once it has expired (slow: 11 min; VKC_SLOW=1)",
    { timeout: 15 * 60_000 },
    async ({ ctx, app: { mount, ns } }) => {
      const jwt = await ctx.kube.requestToken(ns, "app", { expirationSeconds: 600 });
      expect((await login(ctx.vault, mount, "app", jwt)).status).toBe(200);
      const exp = Number(decodeJwt(jwt).exp) * 1000;
      // Vault allows 60 s of leeway past exp.
      await new Promise((r) => setTimeout(r, Math.max(0, exp + 65_000 - Date.now())));
      expectRefused(await login(ctx.vault, mount, "app", jwt), 403, "token is expired");
    },
  );
});
