import { describe, expect, inject } from "vitest";
import { suiteTest } from "../lib/vitest/fixtures.ts";
import { expectRefused } from "../lib/vitest/assert.ts";
import { authConfigFor, reviewerJwt } from "../lib/auth-setup/steps.ts";
import { expectationsFor } from "../lib/fixtures/expectations.ts";

type Expectations = ReturnType<typeof expectationsFor>;

// What Vault refuses to store (400 with a reason) and how it stores what it accepts.
const it = suiteTest("config-validation").extend("app", { scope: "file" }, async ({ ctx }) => {
  const exp = expectationsFor(ctx.info.flavor, ctx.info.vault.version);
  const ns = await ctx.namespace("rev");
  const jwt = await reviewerJwt(ctx.kube, await ctx.reviewer(ns));
  const mount = await ctx.mount();
  /** A role write succeeds: 204, or 200 with the missing-audience warning where the flavor gives one. */
  const roleWritten = (res: { status: number; body: { warnings?: string[] } }, hasAudience = false) => {
    if (exp.noAudienceWarning && !hasAudience) {
      expect(res.status).toBe(200);
      expect(res.body.warnings?.join(" ")).toContain(exp.noAudienceWarning);
    } else {
      expect(res.status).toBe(204);
    }
  };
  return { exp, jwt, mount, roleWritten };
});
const rejected = (res: { status: number; body: { errors?: string[] } }, error: string) => expectRefused(res, 400, error);

describe("config and role validation", () => {
  describe("auth config", () => {
    it("refuses a config without kubernetes_host (400 no host provided)", async ({ ctx, app: { mount } }) => {
      rejected(await ctx.vault.write(`auth/${mount}/config`, { kubernetes_ca_cert: ctx.info.kube.caCertForVault }), "no host provided");
    });

    // Only where Vault is known to run outside a pod; inside one, the pod's CA is there to read.
    it.runIf(inject("target").vault.outsideCluster)(
      "refuses, outside a pod, a config that would read the pod's CA (400 naming serviceaccount/ca.crt)",
      async ({ ctx, app: { mount } }) => {
        rejected(await ctx.vault.write(`auth/${mount}/config`, { kubernetes_host: ctx.info.kube.hostForVault }), "serviceaccount/ca.crt");
      },
    );

    it("refuses pem_keys that hold no public key (400)", async ({ ctx, app: { exp, jwt, mount } }) => {
      rejected(await ctx.vault.write(`auth/${mount}/config`, { ...authConfigFor(ctx.info, jwt), pem_keys: ["not a key"] }), exp.badPemKeys);
    });

    it("garbage kubernetes_ca_cert: per flavor, refused (400) or stored as given", async ({ ctx, app: { exp, jwt, mount } }) => {
      const res = await ctx.vault.write(`auth/${mount}/config`, {
        ...authConfigFor(ctx.info, jwt),
        kubernetes_ca_cert: "not a certificate",
      });
      if (exp.garbageCaRejected) rejected(res, "The provided CA PEM data contains no valid certificates");
      else expect(res.status).toBe(204);
    });

    it("never returns token_reviewer_jwt on read; reports token_reviewer_jwt_set instead", async ({ ctx, app: { jwt, mount } }) => {
      await ctx.vault.must("POST", `auth/${mount}/config`, authConfigFor(ctx.info, jwt));
      const res = await ctx.vault.read(`auth/${mount}/config`);
      expect(res.status).toBe(200);
      expect(res.body.data).not.toHaveProperty("token_reviewer_jwt");
      expect(res.body.data).toMatchObject({
        token_reviewer_jwt_set: true,
        kubernetes_host: ctx.info.kube.hostForVault,
        kubernetes_ca_cert: ctx.info.kube.caCertForVault,
      });
      expect(res.text).not.toContain(jwt);
    });

    it("replaces the whole config on every write (no merge): a second write without issuer clears it", async ({
      ctx,
      app: { jwt, mount },
    }) => {
      await ctx.vault.must("POST", `auth/${mount}/config`, authConfigFor(ctx.info, jwt, { issuer: "https://first.example" }));
      expect((await ctx.vault.read(`auth/${mount}/config`)).body.data.issuer).toBe("https://first.example");
      await ctx.vault.must("POST", `auth/${mount}/config`, authConfigFor(ctx.info, undefined));
      const after = (await ctx.vault.read(`auth/${mount}/config`)).body.data;
      expect(after).toMatchObject({ issuer: "", token_reviewer_jwt_set: false });
    });
  });

  describe("roles", () => {
    const ok = () => ({ bound_service_account_names: ["app"], bound_service_account_namespaces: ["app"] });
    const cases: { name: string; body: Record<string, unknown>; error: (exp: Expectations) => string }[] = [
      {
        name: "no bound_service_account_names",
        body: { bound_service_account_namespaces: ["app"] },
        error: () => `"bound_service_account_names" can not be empty`,
      },
      {
        name: "no namespaces and no namespace selector",
        body: { bound_service_account_names: ["app"] },
        error: (exp) => exp.roleNeedsNamespaces,
      },
      {
        name: `"*" mixed with names`,
        body: { bound_service_account_names: ["*", "app"], bound_service_account_namespaces: ["app"] },
        error: () => `can not mix "*" with values`,
      },
      {
        name: `"*" mixed with namespaces`,
        body: { bound_service_account_names: ["app"], bound_service_account_namespaces: ["*", "app"] },
        error: () => `can not mix "*" with values`,
      },
      { name: "an unknown alias_name_source", body: { ...ok(), alias_name_source: "pod_name" }, error: (exp) => exp.badAliasSource },
      { name: "token_ttl above token_max_ttl", body: { ...ok(), token_ttl: "2h", token_max_ttl: "1h" }, error: (exp) => exp.ttlAboveMax },
    ];
    it.for(cases)("refuses a role with $name (400)", async ({ body, error }, { ctx, app: { exp, mount } }) => {
      rejected(await ctx.vault.write(`auth/${mount}/role/${ctx.name("bad")}`, body), error(exp));
    });

    it("accepts a namespace selector instead of namespaces and reads it back", async ({ ctx, app: { mount, roleWritten } }) => {
      const selector = '{"matchLabels":{"team":"a"}}';
      const role = ctx.name("sel");
      roleWritten(
        await ctx.vault.write(`auth/${mount}/role/${role}`, {
          bound_service_account_names: ["app"],
          bound_service_account_namespace_selector: selector,
        }),
      );
      const res = await ctx.vault.read(`auth/${mount}/role/${role}`);
      expect(res.body.data).toMatchObject({ bound_service_account_names: ["app"], bound_service_account_namespace_selector: selector });
    });

    it("stores role names lower-case", async ({ ctx, app: { mount, roleWritten } }) => {
      const role = `Mixed-${ctx.tag}`;
      roleWritten(await ctx.vault.write(`auth/${mount}/role/${role}`, ok()));
      const list = await ctx.vault.list(`auth/${mount}/role`);
      expect(list.status).toBe(200);
      expect(list.body.data.keys).toContain(role.toLowerCase());
      expect(list.body.data.keys).not.toContain(role);
    });

    it("reads a role back with its bindings, policies, TTLs and the default alias source", async ({ ctx, app: { mount, roleWritten } }) => {
      const role = ctx.name("full");
      roleWritten(
        await ctx.vault.write(`auth/${mount}/role/${role}`, {
          ...ok(),
          token_policies: ["a", "b"],
          token_ttl: "20m",
          token_max_ttl: "1h",
          audience: "vault",
        }),
        true,
      );
      const res = await ctx.vault.read(`auth/${mount}/role/${role}`);
      expect(res.status).toBe(200);
      expect(res.body.data).toMatchObject({
        bound_service_account_names: ["app"],
        bound_service_account_namespaces: ["app"],
        token_policies: ["a", "b"],
        token_ttl: 1200,
        token_max_ttl: 3600,
        audience: "vault",
        alias_name_source: "serviceaccount_uid",
      });
    });
  });
});
