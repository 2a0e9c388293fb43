import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { decodeJwt } from "jose";
import { describe, expect } from "vitest";
import { suiteTest } from "../lib/vitest/fixtures.ts";
import { expectRefused } from "../lib/vitest/assert.ts";
import { describeResponse } from "../lib/vault/client.ts";
import { authConfigFor, discoverIssuer, login, writeAuthConfig, writeRole, type IssuerFacts } from "../lib/auth-setup/steps.ts";

// The 1.21+ issuer story (vault#13867, plugin#125): bound tokens carry the apiserver's
// --service-account-issuer, legacy Secret tokens carry "kubernetes/serviceaccount". Which Vault
// issuer settings accept which tokens is what breaks on cluster upgrades.
const LEGACY_ISS = "kubernetes/serviceaccount";

const it = suiteTest("issuer").extend("app", { scope: "file" }, async ({ ctx }) => {
  const { mount, reviewerJwt } = await ctx.standardAuth();
  const ns = await ctx.namespace("app");
  await ctx.kube.createServiceAccount(ns, "app");
  await writeRole(ctx.vault, mount, "app", { bound_service_account_names: ["app"], bound_service_account_namespaces: [ns] });
  const facts = await discoverIssuer(ctx.kube, ns, "app");
  const bound = await ctx.kube.requestToken(ns, "app"); // a bound token
  const legacy = (await ctx.kube.legacyToken(ns, "app")).token; // a legacy Secret token
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
  const configure = (extra: Record<string, unknown>) => writeAuthConfig(ctx.vault, mount, authConfigFor(ctx.info, reviewerJwt, extra));
  return { mount, ns, facts, bound, legacy, configure };
});

describe("issuer handling", () => {
  it("the discovery document, a fresh bound token and the apiserver flag agree on the issuer", ({ ctx, app: { facts } }) => {
    if (ctx.info.kube.issuers.length) expect(facts.boundTokenIss).toBe(ctx.info.kube.issuers[0]);
    if (facts.discovery !== undefined) expect(facts.discovery).toBe(facts.boundTokenIss);
    expect(facts.boundTokenIss).not.toBe(LEGACY_ISS);
  });

  it("legacy Secret tokens carry the legacy issuer kubernetes/serviceaccount", ({ app: { legacy } }) => {
    expect(decodeJwt(legacy).iss).toBe(LEGACY_ISS);
  });

  it("reads back disable_iss_validation=true and an empty issuer by default (validation off since Vault 1.9)", async ({
    ctx,
    app: { mount, configure },
  }) => {
    await configure({});
    const cfg = await ctx.vault.must("GET", `auth/${mount}/config`);
    expect(cfg.body.data).toMatchObject({ disable_iss_validation: true, issuer: "" });
  });

  it.for<{ mode: string; cfg: Record<string, unknown> | ((facts: IssuerFacts) => Record<string, unknown>) }>([
    { mode: "validation off (disable_iss_validation=true)", cfg: { disable_iss_validation: true } },
    {
      mode: "validation on with the discovered issuer",
      cfg: (facts: IssuerFacts) => ({ disable_iss_validation: false, issuer: facts.boundTokenIss }),
    },
    { mode: "validation on with no issuer set (empty issuer is not checked)", cfg: { disable_iss_validation: false } },
  ])("accepts a bound token with $mode", async ({ cfg }, { ctx, app: { mount, ns, facts, bound, configure } }) => {
    await configure(typeof cfg === "function" ? cfg(facts) : cfg);
    const res = await login(ctx.vault, mount, "app", bound);
    expect(res.status, describeResponse(res)).toBe(200);
    expect(res.body.auth?.metadata.service_account_namespace).toBe(ns);
  });

  it("with validation on and the legacy issuer: rejects bound tokens (403 invalid issuer) yet accepts legacy Secret tokens", async ({
    ctx,
    app: { mount, bound, legacy, configure },
  }) => {
    await configure({ disable_iss_validation: false, issuer: LEGACY_ISS });
    const rejected = await login(ctx.vault, mount, "app", bound);
    expectRefused(rejected, 403, "invalid issuer (iss) claim");
    const accepted = await login(ctx.vault, mount, "app", legacy);
    expect(accepted.status, describeResponse(accepted)).toBe(200);
    expect(accepted.body.auth?.metadata.service_account_secret_name).toBe(`app-token`);
  });

  it("with validation on and the cluster's issuer: rejects legacy Secret tokens (403 invalid issuer)", async ({
    ctx,
    app: { mount, facts, legacy, configure },
  }) => {
    await configure({ disable_iss_validation: false, issuer: facts.boundTokenIss });
    const res = await login(ctx.vault, mount, "app", legacy);
    expectRefused(res, 403, "invalid issuer (iss) claim");
  });

  it("with validation on and a wrong issuer URL: rejects every bound token (403 invalid issuer)", async ({
    ctx,
    app: { mount, bound, configure },
  }) => {
    await configure({ disable_iss_validation: false, issuer: "https://wrong-issuer.invalid" });
    const res = await login(ctx.vault, mount, "app", bound);
    expectRefused(res, 403, "invalid issuer (iss) claim");
  });
});
