import { describe, expect } from "vitest";
import { suiteTest } from "../lib/vitest/fixtures.ts";
import { expectRefused } from "../lib/vitest/assert.ts";
import { authConfigFor, login, reviewerJwt, writeRole } from "../lib/auth-setup/steps.ts";
import { expectationsFor } from "../lib/fixtures/expectations.ts";
import type { TargetInfo } from "../lib/lifecycle/info.ts";
import { describeResponse } from "../lib/vault/client.ts";

/**
 * Vault outside the cluster and an API server whose certificate is publicly trusted (no CA in the
 * kubeconfig): the config must set disable_local_ca_jwt=true and has no kubernetes_ca_cert.
 * HashiCorp (plugin >= 0.19) then uses the system roots; OpenBao refuses the config (400), so the
 * harness gives it the public roots (lib/auth-setup/steps.ts caCertEntry).
 */
/** The target as the harness would see an API server with a publicly trusted certificate. */
const publicCertInfo = (info: TargetInfo): TargetInfo => ({ ...info, kube: { ...info.kube, caCertForVault: "" } });

const it = suiteTest("ca-config").extend("app", { scope: "file" }, async ({ ctx }) => {
  const exp = expectationsFor(ctx.info.flavor, ctx.info.vault.version);
  const revNs = await ctx.namespace("rev");
  const jwt = await reviewerJwt(ctx.kube, await ctx.reviewer(revNs));
  const mount = await ctx.mount();
  const ns = await ctx.namespace("app");
  await ctx.kube.createServiceAccount(ns, "app");
  return { exp, jwt, mount, ns };
});

describe("auth config without the API server's CA", () => {
  it("disable_local_ca_jwt=true and no kubernetes_ca_cert: HashiCorp stores it (system roots), OpenBao refuses (400)", async ({
    ctx,
    app: { exp, jwt, mount },
  }) => {
    const res = await ctx.vault.write(`auth/${mount}/config`, {
      kubernetes_host: ctx.info.kube.hostForVault,
      token_reviewer_jwt: jwt,
      disable_local_ca_jwt: true,
    });
    if (exp.caRequiredWithoutLocalCaJwt) {
      expectRefused(res, 400, exp.caRequiredWithoutLocalCaJwt);
    } else {
      expect(res.status, describeResponse(res)).toBe(204);
      const back = (await ctx.vault.read(`auth/${mount}/config`)).body.data;
      expect(back).toMatchObject({ kubernetes_ca_cert: "", disable_local_ca_jwt: true });
    }
  });

  it("the harness's config for such an API server is accepted by this flavor (204)", async ({ ctx, app: { exp, jwt, mount } }) => {
    const res = await ctx.vault.write(`auth/${mount}/config`, authConfigFor(publicCertInfo(ctx.info), jwt));
    expect(res.status, describeResponse(res)).toBe(204);
    const back = (await ctx.vault.read(`auth/${mount}/config`)).body.data;
    expect(back.disable_local_ca_jwt).toBe(true);
    if (exp.caRequiredWithoutLocalCaJwt) expect(back.kubernetes_ca_cert).toContain("-----BEGIN CERTIFICATE-----");
    else expect(back.kubernetes_ca_cert).toBe("");
  });

  it("with only public roots, a privately signed API server is not trusted: TokenReview fails TLS and the login is refused", async ({
    ctx,
    app: { jwt, mount, ns },
  }) => {
    await ctx.vault.must("POST", `auth/${mount}/config`, authConfigFor(publicCertInfo(ctx.info), jwt));
    await writeRole(ctx.vault, mount, "app", { bound_service_account_names: ["app"], bound_service_account_namespaces: [ns] });
    const res = await login(ctx.vault, mount, "app", await ctx.kube.requestToken(ns, "app"));
    expectRefused(res, 403, "permission denied");
  });
});
