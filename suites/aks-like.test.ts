import { decodeJwt } from "jose";
import { describe, expect } from "vitest";
import { DEFAULT_ISSUER } from "../lib/config.ts";
import { LEGACY_ISSUER, predictLogin, type IssuerSettings } from "../lib/gate/predict.ts";
import { suiteTest } from "../lib/vitest/fixtures.ts";
import { expectRefused } from "../lib/vitest/assert.ts";
import { authConfigFor, login, writeAuthConfig, writeRole } from "../lib/auth-setup/steps.ts";
import { describeResponse } from "../lib/vault/client.ts";

/**
 * The AKS shape (persona `aks-like`): the issuer is the API server's own HTTPS URL and the default
 * audience is that same URL, so a config or role copied from kind (kind's in-cluster issuer or
 * audience) breaks. Every cell is predicted with lib/gate/predict.ts (what profile:diff reasons
 * with) and checked with a real login, so the file runs on any persona: with `--persona aks-like`
 * it pins the AKS answers; on kind's default, kind's.
 */
const it = suiteTest("aks-like").extend("app", { scope: "file" }, async ({ ctx }) => {
  const { mount, reviewerJwt } = await ctx.standardAuth();
  const ns = await ctx.namespace("app");
  await ctx.kube.createServiceAccount(ns, "app");
  const tokens = {
    bound: await ctx.kube.requestToken(ns, "app"),
    vault: await ctx.kube.requestToken(ns, "app", { audiences: ["vault"] }),
    legacy: (await ctx.kube.legacyToken(ns, "app")).token,
  };
  const c = decodeJwt(tokens.bound);
  const issuer = String(c.iss); // what new tokens carry
  const defaultAud = Array.isArray(c.aud) ? c.aud : [String(c.aud)];
  return { mount, reviewerJwt, ns, tokens, issuer, defaultAud };
});
type Tokens = { bound: string; vault: string; legacy: string };

describe("issuer and audience = the API server's URL (AKS-like)", () => {
  it("new tokens carry the target's first --service-account-issuer, and the default audience is --api-audiences or that issuer", ({
    ctx,
    app: { issuer, defaultAud },
  }) => {
    expect(issuer).toBe(ctx.info.kube.issuers[0] ?? issuer);
    expect(defaultAud).toEqual(ctx.info.kube.apiAudiences.length ? ctx.info.kube.apiAudiences : [issuer]);
    if (ctx.info.persona?.name === "aks-like") {
      expect(issuer).toMatch(/^https:\/\/[^/]+\.azmk8s\.io$/);
      expect(defaultAud).toEqual([issuer]);
    }
  });

  const cells: {
    name: string;
    settings: (issuer: string) => IssuerSettings;
    audience: (issuer: string) => string | undefined;
    token: keyof Tokens;
  }[] = [
    {
      name: "validation on with the token's issuer, role audience = the issuer URL, a pod's default token",
      settings: (issuer) => on(issuer),
      audience: (issuer) => issuer,
      token: "bound",
    },
    {
      name: "validation on with the token's issuer, role audience = the issuer URL, a token for audience vault",
      settings: (issuer) => on(issuer),
      audience: (issuer) => issuer,
      token: "vault",
    },
    {
      name: "validation on with the token's issuer, a legacy Secret token",
      settings: (issuer) => on(issuer),
      audience: () => undefined,
      token: "legacy",
    },
    {
      name: "a config copied from kind (issuer = kind's in-cluster URL), a pod's default token",
      settings: () => on(DEFAULT_ISSUER),
      audience: () => undefined,
      token: "bound",
    },
    {
      name: "a role copied from kind (audience = kind's in-cluster URL), a pod's default token",
      settings: () => off,
      audience: () => DEFAULT_ISSUER,
      token: "bound",
    },
    {
      name: "validation on with kubernetes/serviceaccount, a pod's default token",
      settings: () => on(LEGACY_ISSUER),
      audience: () => undefined,
      token: "bound",
    },
  ];

  it.for(cells)(
    "$name: the answer profile:diff predicts",
    async ({ settings, audience, token }, { ctx, app: { mount, reviewerJwt, ns, tokens, issuer } }) => {
      const s = settings(issuer);
      const aud = audience(issuer);
      await writeAuthConfig(ctx.vault, mount, authConfigFor(ctx.info, reviewerJwt, s));
      const role = ctx.name("role");
      await writeRole(ctx.vault, mount, role, {
        bound_service_account_names: ["app"],
        bound_service_account_namespaces: [ns],
        ...(aud ? { audience: aud } : {}),
      });
      const claims = decodeJwt(tokens[token]);
      const predicted = predictLogin(
        s,
        { audience: aud },
        { iss: String(claims.iss), aud: claims.aud === undefined ? [] : Array.isArray(claims.aud) ? claims.aud : [claims.aud] },
        { flavor: ctx.info.flavor, version: ctx.info.vault.version },
      );
      const res = await login(ctx.vault, mount, role, tokens[token]);
      if (predicted.ok) {
        expect(res.status, describeResponse(res)).toBe(predicted.status);
        expect(res.body.auth?.metadata).toMatchObject({ role, service_account_name: "app", service_account_namespace: ns });
      } else expectRefused(res, predicted.status, predicted.error!);
    },
  );
});

const off: IssuerSettings = { disable_iss_validation: true, issuer: "" };
function on(issuer: string): IssuerSettings {
  return { disable_iss_validation: false, issuer };
}
