import { decodeJwt } from "jose";
import { describe, expect } from "vitest";
import { suiteTest } from "../lib/vitest/fixtures.ts";
import { expectRefused } from "../lib/vitest/assert.ts";
import { login, writeRole } from "../lib/auth-setup/steps.ts";
import { describeResponse } from "../lib/vault/client.ts";

/**
 * Role audience x token audience. The plugin checks the role's `audience` against the token's
 * `aud` before TokenReview; without a role audience it asks TokenReview for the token's own
 * audiences (token_review.go), so any audience the apiserver issued is accepted.
 */
const it = suiteTest("audiences").extend("app", { scope: "file" }, async ({ ctx }) => {
  const { mount } = await ctx.standardAuth();
  const ns = await ctx.namespace("app");
  await ctx.kube.createServiceAccount(ns, "app");
  const aud = decodeJwt(await ctx.kube.requestToken(ns, "app")).aud;
  const defaultAud: string[] = aud === undefined ? [] : Array.isArray(aud) ? aud : [aud]; // what a TokenRequest without audiences gets
  const bound = { bound_service_account_names: ["app"], bound_service_account_namespaces: [ns] };
  await writeRole(ctx.vault, mount, "none", bound);
  await writeRole(ctx.vault, mount, "default-aud", { ...bound, audience: defaultAud[0] });
  await writeRole(ctx.vault, mount, "vault", { ...bound, audience: "vault" });
  await writeRole(ctx.vault, mount, "comma", { ...bound, audience: "vault,other" });
  return { mount, ns, defaultAud };
});

describe("audiences: role x token", () => {
  it("the API server's default audience is its --api-audiences (or, unset, its issuer)", ({ ctx, app: { defaultAud } }) => {
    const expected = ctx.info.kube.apiAudiences.length ? ctx.info.kube.apiAudiences : ctx.info.kube.issuers.slice(0, 1);
    if (ctx.info.target === "local") expect(defaultAud).toEqual(expected);
    expect(defaultAud.length).toBeGreaterThan(0);
  });

  const table: { name: string; role: string; audiences: () => string[] | undefined; ok: boolean }[] = [
    { name: "role without audience x token with a custom audience", role: "none", audiences: () => ["custom-service"], ok: true },
    { name: "role without audience x token with several audiences", role: "none", audiences: () => ["a", "b"], ok: true },
    {
      name: "role audience = the API server's default audience x token requested without one",
      role: "default-aud",
      audiences: () => undefined,
      ok: true,
    },
    {
      name: "role audience = the default audience x token with only a custom audience",
      role: "default-aud",
      audiences: () => ["vault"],
      ok: false,
    },
    { name: "role audience vault x token requested without one (default audience)", role: "vault", audiences: () => undefined, ok: false },
    {
      name: "role audience vault x token with several audiences, vault among them",
      role: "vault",
      audiences: () => ["other", "vault"],
      ok: true,
    },
    {
      name: "role audience vault x token with several audiences, none vault",
      role: "vault",
      audiences: () => ["other", "vault2"],
      ok: false,
    },
    {
      name: "role audience 'vault,other' is one string, not a list: token with vault",
      role: "comma",
      audiences: () => ["vault"],
      ok: false,
    },
  ];

  it.for(table)("$name -> ok=$ok", async ({ role, audiences, ok }, { ctx, app: { mount, ns } }) => {
    const auds = audiences();
    const jwt = await ctx.kube.requestToken(ns, "app", auds ? { audiences: auds } : {});
    const res = await login(ctx.vault, mount, role, jwt);
    if (ok) {
      expect(res.status, describeResponse(res)).toBe(200);
      expect(res.body.auth?.metadata).toMatchObject({ role, service_account_name: "app", service_account_namespace: ns });
      expect(res.body.auth?.policies).toEqual(["default"]);
    } else {
      expectRefused(res, 403, "invalid audience (aud) claim");
    }
  });

  it("several audiences on a role: `audience` is one string, a JSON list is refused (400)", async ({ ctx, app: { mount, ns } }) => {
    const res = await ctx.vault.write(`auth/${mount}/role/${ctx.name("list")}`, {
      bound_service_account_names: ["app"],
      bound_service_account_namespaces: [ns],
      audience: ["vault", "other"],
    });
    // The part every sdk says: v0.15 (Vault 1.19) also quotes the value after "input".
    expectRefused(res, 400, `for field "audience": '' expected type 'string'`);
  });

  it("stores the role's audience as given and reads it back", async ({ ctx, app: { mount } }) => {
    const res = await ctx.vault.read(`auth/${mount}/role/comma`);
    expect(res.status).toBe(200);
    expect(res.body.data.audience).toBe("vault,other");
  });
});
