import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SuiteContext } from "../lib/vitest/suite.ts";
import { login, writeRole, type LoginData } from "../lib/auth-setup/steps.ts";
import { describeResponse, type VaultResponse } from "../lib/vault/client.ts";

// Logins that must succeed, and the exact shape of what Vault returns for them.
describe("login accepted", () => {
  let ctx: SuiteContext;
  let mount: string;
  let ns: string; // the app namespace
  let globNs: string; // a namespace matched only by a glob
  let policy: string;

  beforeAll(async () => {
    ctx = await SuiteContext.create("login-accepted");
    ({ mount } = await ctx.standardAuth());
    ns = await ctx.namespace("app");
    globNs = await ctx.namespace(`team-${ctx.tag}`);
    for (const sa of ["app", "svc-a", "svc-b", "named"]) await ctx.kube.createServiceAccount(ns, sa);
    await ctx.kube.createServiceAccount(globNs, "app");
    policy = await ctx.policy("read-app", `path "secret/data/app/*" { capabilities = ["read"] }`);
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
  });
  afterAll(() => ctx?.cleanup());

  function expectAccepted(
    res: VaultResponse<LoginData>,
    sa: { namespace: string; name: string; uid: string; secret?: string; role: string },
  ) {
    expect(res.status, describeResponse(res)).toBe(200);
    const auth = res.body.auth!;
    expect(auth.metadata).toEqual({
      role: sa.role,
      service_account_name: sa.name,
      service_account_namespace: sa.namespace,
      service_account_uid: sa.uid,
      service_account_secret_name: sa.secret ?? "",
    });
    expect([...auth.policies].sort()).toEqual(["default", policy].sort());
    expect(auth.token_policies.sort()).toEqual(["default", policy].sort());
    expect(auth.renewable).toBe(true);
    expect(auth.lease_duration).toBe(30 * 60);
    expect(auth.token_type).toBe("service");
    expect(auth.client_token.length).toBeGreaterThan(20);
    expect(auth.accessor.length).toBeGreaterThan(10);
  }

  it("accepts a TokenRequest (bound) token of the bound service account: metadata, policies incl. default, renewable, TTL of the role", async () => {
    const uid = await ctx.kube.serviceAccountUid(ns, "app");
    expectAccepted(await login(ctx.vault, mount, "app", await ctx.kube.requestToken(ns, "app")), {
      namespace: ns,
      name: "app",
      uid,
      role: "app",
    });
  });

  it("accepts a legacy Secret token and reports the Secret's name in service_account_secret_name", async () => {
    const uid = await ctx.kube.serviceAccountUid(ns, "app");
    const { secretName, token } = await ctx.kube.legacyToken(ns, "app", `app-legacy-${ctx.tag}`);
    expectAccepted(await login(ctx.vault, mount, "app", token), { namespace: ns, name: "app", uid, role: "app", secret: secretName });
  });

  it.each(["svc-a", "svc-b"])("accepts %s through a service-account name glob (svc-*)", async (sa) => {
    const uid = await ctx.kube.serviceAccountUid(ns, sa);
    expectAccepted(await login(ctx.vault, mount, "name-glob", await ctx.kube.requestToken(ns, sa)), {
      namespace: ns,
      name: sa,
      uid,
      role: "name-glob",
    });
  });

  it("accepts a namespace matched by a namespace glob (team-<tag>-*)", async () => {
    const uid = await ctx.kube.serviceAccountUid(globNs, "app");
    expectAccepted(await login(ctx.vault, mount, "ns-glob", await ctx.kube.requestToken(globNs, "app")), {
      namespace: globNs,
      name: "app",
      uid,
      role: "ns-glob",
    });
  });

  it("accepts any service account of the bound namespace with bound_service_account_names=*", async () => {
    const uid = await ctx.kube.serviceAccountUid(ns, "named");
    expectAccepted(await login(ctx.vault, mount, "any-name", await ctx.kube.requestToken(ns, "named")), {
      namespace: ns,
      name: "named",
      uid,
      role: "any-name",
    });
  });

  it("accepts a token whose audience matches the role's audience", async () => {
    const uid = await ctx.kube.serviceAccountUid(ns, "app");
    const jwt = await ctx.kube.requestToken(ns, "app", { audiences: ["vault"] });
    expectAccepted(await login(ctx.vault, mount, "aud", jwt), { namespace: ns, name: "app", uid, role: "aud" });
  });

  async function aliasOf(res: VaultResponse<LoginData>): Promise<{ name: string; mount_type: string }> {
    const entity = await ctx.vault.must("GET", `identity/entity/id/${res.body.auth!.entity_id}`);
    const aliases = entity.body.data.aliases as { name: string; mount_type: string; mount_path: string }[];
    const mine = aliases.find((a) => a.mount_path === `auth/${mount}/`);
    expect(mine, "entity alias on this mount").toBeDefined();
    return mine!;
  }

  it("names the entity alias by the service account's UID by default", async () => {
    const uid = await ctx.kube.serviceAccountUid(ns, "app");
    const res = await login(ctx.vault, mount, "app", await ctx.kube.requestToken(ns, "app"));
    expect(res.status).toBe(200);
    expect(await aliasOf(res)).toMatchObject({ name: uid, mount_type: "kubernetes" });
  });

  it("names the entity alias <namespace>/<name> with alias_name_source=serviceaccount_name", async () => {
    const res = await login(ctx.vault, mount, "by-name", await ctx.kube.requestToken(ns, "named"));
    expect(res.status).toBe(200);
    expect(await aliasOf(res)).toMatchObject({ name: `${ns}/named`, mount_type: "kubernetes" });
  });

  it("returns a token that works: lookup-self shows the role's policies and metadata; renew-self renews it", async () => {
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
