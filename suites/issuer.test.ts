import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SuiteContext } from "../lib/vitest/suite.ts";
import { describeResponse } from "../lib/vault/client.ts";
import { authConfigFor, discoverIssuer, login, writeAuthConfig, writeRole, type IssuerFacts } from "../lib/auth-setup/steps.ts";

// The 1.21+ issuer story (vault#13867, plugin#125): bound tokens carry the apiserver's
// --service-account-issuer, legacy Secret tokens carry "kubernetes/serviceaccount". Which Vault
// issuer settings accept which tokens is what breaks on cluster upgrades.
describe("issuer handling", () => {
  let ctx: SuiteContext;
  let mount: string;
  let reviewerJwt: string;
  let ns: string;
  let facts: IssuerFacts;
  let bound: string; // a bound token
  let legacy: string; // a legacy Secret token
  const LEGACY_ISS = "kubernetes/serviceaccount";

  beforeAll(async () => {
    ctx = await SuiteContext.create("issuer");
    ({ mount, reviewerJwt } = await ctx.standardAuth());
    ns = await ctx.namespace("app");
    await ctx.kube.createServiceAccount(ns, "app");
    await writeRole(ctx.vault, mount, "app", { bound_service_account_names: ["app"], bound_service_account_namespaces: [ns] });
    facts = await discoverIssuer(ctx.kube, ns, "app");
    bound = await ctx.kube.requestToken(ns, "app");
    legacy = (await ctx.kube.legacyToken(ns, "app")).token;
    // The three views of the issuer, side by side, for the person reading the report.
    const report = {
      configuredIssuers: ctx.info.kube.issuers,
      discoveryDocumentIssuer: facts.discovery ?? null,
      boundTokenIss: facts.boundTokenIss,
      legacyTokenIss: decodeJwt(legacy).iss,
    };
    await mkdir(ctx.info.artifactsDir, { recursive: true });
    await writeFile(join(ctx.info.artifactsDir, "issuer-report.json"), JSON.stringify(report, null, 2));
    console.info(`issuer report: ${JSON.stringify(report)}`);
  });
  afterAll(() => ctx?.cleanup());

  const configure = (extra: Record<string, unknown>) => writeAuthConfig(ctx.vault, mount, authConfigFor(ctx.info, reviewerJwt, extra));

  it("the discovery document, a fresh bound token and the apiserver flag agree on the issuer", () => {
    if (ctx.info.kube.issuers.length) expect(facts.boundTokenIss).toBe(ctx.info.kube.issuers[0]);
    if (facts.discovery !== undefined) expect(facts.discovery).toBe(facts.boundTokenIss);
    expect(facts.boundTokenIss).not.toBe(LEGACY_ISS);
  });

  it("legacy Secret tokens carry the legacy issuer kubernetes/serviceaccount", () => {
    expect(decodeJwt(legacy).iss).toBe(LEGACY_ISS);
  });

  it("reads back disable_iss_validation=true and an empty issuer by default (validation off since Vault 1.9)", async () => {
    await configure({});
    const cfg = await ctx.vault.must("GET", `auth/${mount}/config`);
    expect(cfg.body.data).toMatchObject({ disable_iss_validation: true, issuer: "" });
  });

  it.each([
    { mode: "validation off (disable_iss_validation=true)", cfg: { disable_iss_validation: true } },
    { mode: "validation on with the discovered issuer", cfg: () => ({ disable_iss_validation: false, issuer: facts.boundTokenIss }) },
    { mode: "validation on with no issuer set (empty issuer is not checked)", cfg: { disable_iss_validation: false } },
  ])("accepts a bound token with $mode", async ({ cfg }) => {
    await configure(typeof cfg === "function" ? cfg() : cfg);
    const res = await login(ctx.vault, mount, "app", bound);
    expect(res.status, describeResponse(res)).toBe(200);
    expect(res.body.auth?.metadata.service_account_namespace).toBe(ns);
  });

  it("with validation on and the legacy issuer: rejects bound tokens (403 invalid issuer) yet accepts legacy Secret tokens", async () => {
    await configure({ disable_iss_validation: false, issuer: LEGACY_ISS });
    const rejected = await login(ctx.vault, mount, "app", bound);
    expect(rejected.status).toBe(403);
    expect(rejected.body.errors?.join(" ")).toContain("invalid issuer (iss) claim");
    const accepted = await login(ctx.vault, mount, "app", legacy);
    expect(accepted.status, describeResponse(accepted)).toBe(200);
    expect(accepted.body.auth?.metadata.service_account_secret_name).toBe(`app-token`);
  });

  it("with validation on and the cluster's issuer: rejects legacy Secret tokens (403 invalid issuer)", async () => {
    await configure({ disable_iss_validation: false, issuer: facts.boundTokenIss });
    const res = await login(ctx.vault, mount, "app", legacy);
    expect(res.status).toBe(403);
    expect(res.body.errors?.join(" ")).toContain("invalid issuer (iss) claim");
  });

  it("with validation on and a wrong issuer URL: rejects every bound token (403 invalid issuer)", async () => {
    await configure({ disable_iss_validation: false, issuer: "https://wrong-issuer.invalid" });
    const res = await login(ctx.vault, mount, "app", bound);
    expect(res.status).toBe(403);
    expect(res.body.errors?.join(" ")).toContain("invalid issuer (iss) claim");
  });
});
