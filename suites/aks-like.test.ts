import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_ISSUER } from "../lib/config.ts";
import { LEGACY_ISSUER, predictLogin, type IssuerSettings } from "../lib/gate/predict.ts";
import { SuiteContext } from "../lib/vitest/suite.ts";
import { authConfigFor, login, writeAuthConfig, writeRole } from "../lib/auth-setup/steps.ts";
import { describeResponse } from "../lib/vault/client.ts";

/**
 * The AKS shape (persona `aks-like`): the issuer is the API server's own HTTPS URL and the default
 * audience is that same URL, so a config or role copied from kind (kind's in-cluster issuer or
 * audience) breaks. Every cell is predicted with lib/gate/predict.ts (what profile:diff reasons
 * with) and checked with a real login, so the file runs on any persona: with `--persona aks-like`
 * it pins the AKS answers; on kind's default, kind's.
 */
describe("issuer and audience = the API server's URL (AKS-like)", () => {
  let ctx: SuiteContext;
  let mount: string;
  let reviewerJwt: string;
  let ns: string;
  let issuer: string; // what new tokens carry
  let defaultAud: string[];
  const tokens = { bound: "", vault: "", legacy: "" };

  beforeAll(async () => {
    ctx = await SuiteContext.create("aks-like");
    ({ mount, reviewerJwt } = await ctx.standardAuth());
    ns = await ctx.namespace("app");
    await ctx.kube.createServiceAccount(ns, "app");
    tokens.bound = await ctx.kube.requestToken(ns, "app");
    tokens.vault = await ctx.kube.requestToken(ns, "app", { audiences: ["vault"] });
    tokens.legacy = (await ctx.kube.legacyToken(ns, "app")).token;
    const c = decodeJwt(tokens.bound);
    issuer = String(c.iss);
    defaultAud = Array.isArray(c.aud) ? c.aud : [String(c.aud)];
  });
  afterAll(() => ctx?.cleanup());

  it("new tokens carry the target's first --service-account-issuer, and the default audience is --api-audiences or that issuer", () => {
    expect(issuer).toBe(ctx.info.kube.issuers[0] ?? issuer);
    expect(defaultAud).toEqual(ctx.info.kube.apiAudiences.length ? ctx.info.kube.apiAudiences : [issuer]);
    if (ctx.info.persona?.name === "aks-like") {
      expect(issuer).toMatch(/^https:\/\/[^/]+\.azmk8s\.io$/);
      expect(defaultAud).toEqual([issuer]);
    }
  });

  const cells: { name: string; settings: () => IssuerSettings; audience: () => string | undefined; token: keyof typeof tokens }[] = [
    {
      name: "validation on with the token's issuer, role audience = the issuer URL, a pod's default token",
      settings: () => on(issuer),
      audience: () => issuer,
      token: "bound",
    },
    {
      name: "validation on with the token's issuer, role audience = the issuer URL, a token for audience vault",
      settings: () => on(issuer),
      audience: () => issuer,
      token: "vault",
    },
    {
      name: "validation on with the token's issuer, a legacy Secret token",
      settings: () => on(issuer),
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

  it.each(cells)("$name: the answer profile:diff predicts", async ({ settings, audience, token }) => {
    const s = settings();
    const aud = audience();
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
    expect(res.status, describeResponse(res)).toBe(predicted.status);
    if (predicted.ok) expect(res.body.auth?.metadata).toMatchObject({ role, service_account_name: "app", service_account_namespace: ns });
    else expect(res.body.errors?.join(" ")).toContain(predicted.error);
  });
});

const off: IssuerSettings = { disable_iss_validation: true, issuer: "" };
function on(issuer: string): IssuerSettings {
  return { disable_iss_validation: false, issuer };
}
