import { decodeJwt } from "jose";
import { describe, expect, inject } from "vitest";
import { clusterSigningKey, foreignSigningKey, signServiceAccountToken, type SigningKey } from "../lib/vitest/forge.ts";
import { suiteTest } from "../lib/vitest/fixtures.ts";
import { expectRefused } from "../lib/vitest/assert.ts";
import { login, writeRole } from "../lib/auth-setup/steps.ts";
import { describeResponse } from "../lib/vault/client.ts";

/**
 * Time claims are checked by Vault itself (hashicorp/cap's validator) before TokenReview: a token
 * not yet valid, or issued in the future, is refused with the claim named. The tokens are signed
 * with the cluster's own key where the harness has it (local target), so that only the claim is
 * wrong; elsewhere with a foreign key (the claim check comes first either way).
 */
const it = suiteTest("time-claims").extend("app", { scope: "file" }, async ({ ctx }) => {
  const { mount } = await ctx.standardAuth();
  const ns = await ctx.namespace("app");
  const uid = await ctx.kube.createServiceAccount(ns, "app");
  await writeRole(ctx.vault, mount, "app", { bound_service_account_names: ["app"], bound_service_account_namespaces: [ns] });
  const keyFile = ctx.info.kube.saSigningKeyFile;
  const key: SigningKey = keyFile ? await clusterSigningKey(keyFile) : foreignSigningKey();
  const real = decodeJwt(await ctx.kube.requestToken(ns, "app"));
  const issuer = String(real.iss);
  const audience = Array.isArray(real.aud) ? real.aud : [String(real.aud)];
  const sign = (claims: Record<string, number>) =>
    signServiceAccountToken(key, { issuer, audience, namespace: ns, name: "app", uid, claims });
  return { mount, ns, uid, sign };
});
const now = () => Math.floor(Date.now() / 1000);

describe("time claims", () => {
  it.runIf(!!inject("target").kube.saSigningKeyFile)(
    "the harness's token with sane claims is accepted (the signing works: what follows fails only by its claims)",
    async ({ ctx, app: { mount, ns, uid, sign } }) => {
      const res = await login(ctx.vault, mount, "app", await sign({}));
      expect(res.status, describeResponse(res)).toBe(200);
      expect(res.body.auth?.metadata).toMatchObject({
        role: "app",
        service_account_name: "app",
        service_account_namespace: ns,
        service_account_uid: uid,
      });
    },
  );

  it.runIf(!!inject("target").kube.saSigningKeyFile)(
    "tolerates 30 s of clock skew: nbf and iat 30 s ahead are accepted (200)",
    async ({ ctx, app: { mount, ns, sign } }) => {
      const res = await login(ctx.vault, mount, "app", await sign({ nbf: now() + 30, iat: now() + 30 }));
      expect(res.status, describeResponse(res)).toBe(200);
      expect(res.body.auth?.metadata).toMatchObject({ role: "app", service_account_name: "app", service_account_namespace: ns });
    },
  );

  it("rejects a token whose nbf is an hour in the future (403, not valid yet)", async ({ ctx, app: { mount, sign } }) => {
    const res = await login(ctx.vault, mount, "app", await sign({ nbf: now() + 3600, iat: now() }));
    expectRefused(res, 403, "invalid not before (nbf) claim");
  });

  it("rejects a token whose iat is an hour in the future (403, issued in the future)", async ({ ctx, app: { mount, sign } }) => {
    const res = await login(ctx.vault, mount, "app", await sign({ iat: now() + 3600, nbf: now() - 60 }));
    expectRefused(res, 403, "invalid issued at (iat) claim");
  });
});
