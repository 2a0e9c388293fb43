import { createPublicKey, type JsonWebKey } from "node:crypto";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { kubernetesKeyId } from "../lib/gate/profile.ts";
import { describe, expect, inject } from "vitest";
import { clusterSigningKey, foreignSigningKey, signServiceAccountToken, type SigningKey } from "../lib/vitest/forge.ts";
import { rawGet } from "../lib/kube/client.ts";
import { suiteTest } from "../lib/vitest/fixtures.ts";
import { expectRefused } from "../lib/vitest/assert.ts";
import { authConfigFor, login, writeAuthConfig, writeRole } from "../lib/auth-setup/steps.ts";
import { describeResponse, type VaultResponse } from "../lib/vault/client.ts";

/**
 * pem_keys: with keys set, Vault checks the JWT's signature locally against them before
 * TokenReview; a token signed by any other key is refused even when the API server would accept it.
 *
 * Key rotation: "the key new tokens are signed with is not in pem_keys" is the cluster's real key
 * against pem_keys holding another key. Tokens signed with the OLD key, which the API server still
 * trusts after a rotation, need the persona `rotated-signing-key` (a second, retired
 * --service-account-key-file); those cases run only there.
 */
const base = suiteTest("pem-keys").extend("app", { scope: "file" }, async ({ ctx }) => {
  const { mount, reviewerJwt } = await ctx.standardAuth();
  const ns = await ctx.namespace("app");
  const uid = await ctx.kube.createServiceAccount(ns, "app");
  await writeRole(ctx.vault, mount, "app", { bound_service_account_names: ["app"], bound_service_account_namespaces: [ns] });
  const res = await rawGet(ctx.kube.kc, "/openid/v1/jwks", 10_000, { accept: "application/jwk-set+json, application/json" });
  expect(res.status, "GET /openid/v1/jwks").toBe(200);
  const jwks = res.body as unknown as { keys: JsonWebKey[] };
  // the API server's public keys as PEM, from its JWKS
  const clusterKeys = jwks.keys.map((k) => createPublicKey({ key: k, format: "jwk" }).export({ type: "spki", format: "pem" }).toString());
  const foreign = foreignSigningKey();
  const configure = (pem_keys: string[]) => writeAuthConfig(ctx.vault, mount, authConfigFor(ctx.info, reviewerJwt, { pem_keys }));
  const expectAccepted = (res: VaultResponse) => {
    expect(res.status, describeResponse(res)).toBe(200);
    expect(res.body.auth?.metadata).toMatchObject({
      role: "app",
      service_account_name: "app",
      service_account_namespace: ns,
      service_account_uid: uid,
    });
    expect(res.body.auth?.policies).toEqual(["default"]);
  };
  return { mount, ns, uid, clusterKeys, foreign, configure, expectAccepted };
});

// Persona rotated-signing-key: the API server signs with its new key and still trusts the retired one.
const retiredKeyFile = inject("target").kube.saRetiredSigningKeyFile;

const it = base.extend("rotation", { scope: "file" }, async ({ ctx, app: { ns, uid } }) => {
  const retired = await clusterSigningKey(retiredKeyFile!);
  const current = await clusterSigningKey(ctx.info.kube.saSigningKeyFile!);
  const real = decodeJwt(await ctx.kube.requestToken(ns, "app"));
  expect(decodeProtectedHeader(await ctx.kube.requestToken(ns, "app")).kid).toBe(current.kid);
  const jwt = await signServiceAccountToken(retired, {
    issuer: String(real.iss),
    audience: Array.isArray(real.aud) ? real.aud : [String(real.aud)],
    namespace: ns,
    name: "app",
    uid,
  });
  return { retired, current, jwt };
});

describe("pem_keys: local signature checks", () => {
  it("the API server's JWKS publishes the key its tokens name in their kid", async ({ ctx, app: { ns, clusterKeys } }) => {
    const kid = decodeProtectedHeader(await ctx.kube.requestToken(ns, "app")).kid;
    expect(clusterKeys.map(kubernetesKeyId)).toContain(kid);
  });

  it("pem_keys = the cluster's signing public key: a bound token is accepted (200) and the keys read back", async ({
    ctx,
    app: { mount, ns, clusterKeys, configure, expectAccepted },
  }) => {
    await configure(clusterKeys);
    expectAccepted(await login(ctx.vault, mount, "app", await ctx.kube.requestToken(ns, "app")));
    const cfg = await ctx.vault.read(`auth/${mount}/config`);
    expect(cfg.body.data.pem_keys).toHaveLength(clusterKeys.length);
  });

  it("pem_keys = the cluster's key: a legacy Secret token (same key) is accepted (200)", async ({
    ctx,
    app: { mount, ns, clusterKeys, configure, expectAccepted },
  }) => {
    await configure(clusterKeys);
    const { token } = await ctx.kube.legacyToken(ns, "app", ctx.name("app-legacy"));
    expectAccepted(await login(ctx.vault, mount, "app", token));
  });

  it("pem_keys = a foreign key only (rotated to a key Vault was not given): the cluster's token is refused (403), though TokenReview accepts it", async ({
    ctx,
    app: { mount, ns, foreign, configure, expectAccepted },
  }) => {
    await configure([foreign.publicPem]);
    const jwt = await ctx.kube.requestToken(ns, "app");
    expectRefused(await login(ctx.vault, mount, "app", jwt), 403, "permission denied");
    // The same token with no pem_keys: TokenReview is the authority, and it says yes.
    await configure([]);
    expectAccepted(await login(ctx.vault, mount, "app", jwt));
  });

  it("pem_keys holding both the foreign and the cluster's key (a rotation-ready list): accepted (200)", async ({
    ctx,
    app: { mount, ns, clusterKeys, foreign, configure, expectAccepted },
  }) => {
    await configure([foreign.publicPem, ...clusterKeys]);
    expectAccepted(await login(ctx.vault, mount, "app", await ctx.kube.requestToken(ns, "app")));
  });

  it("a token signed by a key in pem_keys but unknown to the API server: Vault's local check passes, TokenReview refuses (403 permission denied)", async ({
    ctx,
    app: { mount, ns, uid, clusterKeys, foreign, configure },
  }) => {
    await configure([foreign.publicPem, ...clusterKeys]);
    const real = decodeJwt(await ctx.kube.requestToken(ns, "app"));
    const forged = await signServiceAccountToken(foreign, {
      issuer: String(real.iss),
      audience: Array.isArray(real.aud) ? real.aud : [String(real.aud)],
      namespace: ns,
      name: "app",
      uid,
    });
    expectRefused(await login(ctx.vault, mount, "app", forged), 403, "permission denied");
  });

  it.runIf(!!inject("target").kube.saSigningKeyFile)(
    "pem_keys = a foreign key: a token the harness signs with the cluster's own key is refused (403); with the cluster's key, accepted",
    async ({ ctx, app: { mount, ns, uid, foreign, configure, expectAccepted } }) => {
      const key = await clusterSigningKey(ctx.info.kube.saSigningKeyFile!);
      const real = decodeJwt(await ctx.kube.requestToken(ns, "app"));
      const jwt = await signServiceAccountToken(key, {
        issuer: String(real.iss),
        audience: Array.isArray(real.aud) ? real.aud : [String(real.aud)],
        namespace: ns,
        name: "app",
        uid,
      });
      await configure([foreign.publicPem]);
      expectRefused(await login(ctx.vault, mount, "app", jwt), 403, "permission denied");
      await configure([key.publicPem]);
      expectAccepted(await login(ctx.vault, mount, "app", jwt));
    },
  );

  describe.runIf(!!retiredKeyFile)("after a signing-key rotation: a token signed with the retired key", () => {
    it("the API server's JWKS publishes both keys", ({ app: { clusterKeys }, rotation: { current, retired } }) => {
      expect(clusterKeys.map(kubernetesKeyId).sort()).toEqual([current.kid, retired.kid].sort());
    });

    it.for<{ config: string; keys: (k: { retired: SigningKey; current: SigningKey }) => string[]; ok: boolean }>([
      { config: "no pem_keys (TokenReview decides; the API server still trusts the retired key)", keys: () => [], ok: true },
      { config: "pem_keys = only the new signing key", keys: ({ current }) => [current.publicPem], ok: false },
      { config: "pem_keys = both keys", keys: ({ retired, current }) => [retired.publicPem, current.publicPem], ok: true },
      { config: "pem_keys = only the retired key (new tokens refused instead)", keys: ({ retired }) => [retired.publicPem], ok: true },
    ])("$config -> ok=$ok", async ({ keys, ok }, { ctx, app: { mount, configure, expectAccepted }, rotation }) => {
      await configure(keys(rotation));
      const res = await login(ctx.vault, mount, "app", rotation.jwt);
      if (ok) expectAccepted(res);
      else expectRefused(res, 403, "permission denied");
    });

    it("pem_keys = only the retired key: a new token (signed with the new key) is refused (403)", async ({
      ctx,
      app: { mount, ns, configure },
      rotation: { retired },
    }) => {
      await configure([retired.publicPem]);
      expectRefused(await login(ctx.vault, mount, "app", await ctx.kube.requestToken(ns, "app")), 403, "permission denied");
    });
  });
});
