import { describe, expect } from "vitest";
import { suiteTest } from "../lib/vitest/fixtures.ts";
import { login, writeRole, type LoginData } from "../lib/auth-setup/steps.ts";
import type { SuiteContext } from "../lib/vitest/suite.ts";
import { describeResponse, type VaultResponse } from "../lib/vault/client.ts";

// Logins that must succeed, and the exact shape of what Vault returns for them.
const it = suiteTest("login-accepted").extend("app", { scope: "file" }, async ({ ctx }) => {
  const { mount } = await ctx.standardAuth();
  const ns = await ctx.namespace("app"); // the app namespace
  const globNs = await ctx.namespace(`team-${ctx.tag}`); // a namespace matched only by a glob
  for (const sa of ["app", "svc-a", "svc-b", "named"]) await ctx.kube.createServiceAccount(ns, sa);
  await ctx.kube.createServiceAccount(globNs, "app");
  const policy = await ctx.policy("read-app", `path "secret/data/app/*" { capabilities = ["read"] }`);
  const base = { token_policies: [policy], token_ttl: "30m", token_max_ttl: "2h" };
  await writeRole(ctx.vault, mount, "app", { ...base, bound_service_account_names: ["app"], bound_service_account_namespaces: [ns] });
  await writeRole(ctx.vault, mount, "name-glob", {
    ...base,
    bound_service_account_names: ["svc-*"],
    bound_service_account_namespaces: [ns],
  });
  await writeRole(ctx.vault, mount, "ns-glob", {
    ...base,
    bound_service_account_names: ["app"],
    bound_service_account_namespaces: [`team-${ctx.tag}-*`],
  });
  await writeRole(ctx.vault, mount, "any-name", { ...base, bound_service_account_names: ["*"], bound_service_account_namespaces: [ns] });
  await writeRole(ctx.vault, mount, "by-name", {
    ...base,
    bound_service_account_names: ["named"],
    bound_service_account_namespaces: [ns],
    alias_name_source: "serviceaccount_name",
  });
  await writeRole(ctx.vault, mount, "aud", {
    ...base,
    bound_service_account_names: ["app"],
    bound_service_account_namespaces: [ns],
    audience: "vault",
  });
  return { mount, ns, globNs, policy };
});

/** One accepted login: which role, which service account (in the app or the glob namespace), which kind of token. */
interface Accepted {
  name: string;
  role: string;
  sa: string;
  inGlobNs?: boolean;
  token?: "legacy" | { audiences: string[] };
}

const accepted: Accepted[] = [
  {
    name: "accepts a TokenRequest (bound) token of the bound service account: metadata, policies incl. default, renewable, TTL of the role",
    role: "app",
    sa: "app",
  },
  {
    name: "accepts a legacy Secret token and reports the Secret's name in service_account_secret_name",
    role: "app",
    sa: "app",
    token: "legacy",
  },
  ...["svc-a", "svc-b"].map((sa) => ({ name: `accepts ${sa} through a service-account name glob (svc-*)`, role: "name-glob", sa })),
  { name: "accepts a namespace matched by a namespace glob (team-<tag>-*)", role: "ns-glob", sa: "app", inGlobNs: true },
  { name: "accepts any service account of the bound namespace with bound_service_account_names=*", role: "any-name", sa: "named" },
  { name: "accepts a token whose audience matches the role's audience", role: "aud", sa: "app", token: { audiences: ["vault"] } },
];

async function aliasOf(ctx: SuiteContext, mount: string, res: VaultResponse<LoginData>): Promise<{ name: string; mount_type: string }> {
  const entity = await ctx.vault.must("GET", `identity/entity/id/${res.body.auth!.entity_id}`);
  const aliases = entity.body.data.aliases as { name: string; mount_type: string; mount_path: string }[];
  const mine = aliases.find((a) => a.mount_path === `auth/${mount}/`);
  expect(mine, "entity alias on this mount").toBeDefined();
  return mine!;
}

describe("login accepted", () => {
  for (const c of accepted) {
    it(c.name, async ({ ctx, app: { mount, ns, globNs, policy } }) => {
      const namespace = c.inGlobNs ? globNs : ns;
      const uid = await ctx.kube.serviceAccountUid(namespace, c.sa);
      let jwt: string;
      let secret = "";
      if (c.token === "legacy") {
        ({ secretName: secret, token: jwt } = await ctx.kube.legacyToken(namespace, c.sa, `app-legacy-${ctx.tag}`));
      } else {
        jwt = await ctx.kube.requestToken(namespace, c.sa, c.token);
      }
      const res = await login(ctx.vault, mount, c.role, jwt);
      // The exact shape of an accepted login.
      expect(res.status, describeResponse(res)).toBe(200);
      const auth = res.body.auth!;
      expect(auth.metadata).toEqual({
        role: c.role,
        service_account_name: c.sa,
        service_account_namespace: namespace,
        service_account_uid: uid,
        service_account_secret_name: secret,
      });
      expect([...auth.policies].sort()).toEqual(["default", policy].sort());
      expect(auth.token_policies.sort()).toEqual(["default", policy].sort());
      expect(auth.renewable).toBe(true);
      expect(auth.lease_duration).toBe(30 * 60);
      expect(auth.token_type).toBe("service");
      expect(auth.client_token.length).toBeGreaterThan(20);
      expect(auth.accessor.length).toBeGreaterThan(10);
    });
  }

  it("names the entity alias by the service account's UID by default", async ({ ctx, app: { mount, ns } }) => {
    const uid = await ctx.kube.serviceAccountUid(ns, "app");
    const res = await login(ctx.vault, mount, "app", await ctx.kube.requestToken(ns, "app"));
    expect(res.status).toBe(200);
    expect(await aliasOf(ctx, mount, res)).toMatchObject({ name: uid, mount_type: "kubernetes" });
  });

  it("names the entity alias <namespace>/<name> with alias_name_source=serviceaccount_name", async ({ ctx, app: { mount, ns } }) => {
    const res = await login(ctx.vault, mount, "by-name", await ctx.kube.requestToken(ns, "named"));
    expect(res.status).toBe(200);
    expect(await aliasOf(ctx, mount, res)).toMatchObject({ name: `${ns}/named`, mount_type: "kubernetes" });
  });

  it("returns a token that works: lookup-self shows the role's policies and metadata; renew-self renews it", async ({
    ctx,
    app: { mount, ns, policy },
  }) => {
    const res = await login(ctx.vault, mount, "app", await ctx.kube.requestToken(ns, "app"));
    expect(res.status).toBe(200);
    const client = ctx.vault.withToken(res.body.auth!.client_token);
    const self = await client.read("auth/token/lookup-self");
    expect(self.status).toBe(200);
    expect(self.body.data).toMatchObject({
      path: `auth/${mount}/login`,
      meta: { role: "app", service_account_name: "app", service_account_namespace: ns },
      renewable: true,
    });
    expect([...self.body.data.policies].sort()).toEqual(["default", policy].sort());
    const renewed = await client.write("auth/token/renew-self", { increment: "10m" });
    expect(renewed.status).toBe(200);
    expect(renewed.body.auth).toMatchObject({ renewable: true, lease_duration: 600 });
  });
});
