import { describe, expect } from "vitest";
import { suiteTest } from "../lib/vitest/fixtures.ts";
import { expectRefused } from "../lib/vitest/assert.ts";
import { login, policyFromFixtures, rebasePolicy, writeRole } from "../lib/auth-setup/steps.ts";
import { describeResponse, type VaultClient, type VaultResponse } from "../lib/vault/client.ts";
import type { SuiteContext } from "../lib/vitest/suite.ts";

// What a logged-in workload may do: exactly its policy's capabilities, and 403 everywhere else
// (the CoreOS guide's `secret/demo/` check; the Vultr guide's read/list `my-app/*`).
const it = suiteTest("policy").extend("app", { scope: "file" }, async ({ ctx }) => {
  const { mount } = await ctx.standardAuth();
  const kv1 = await ctx.kv("secret", 1); // stands in for the guide's secret/ (KV v1)
  const myApp = await ctx.kv("my-app", 1); // stands in for my-app/
  const kv2 = await ctx.kv("kv2", 2);
  const mounts = { secret: kv1, "my-app": myApp };
  const demoPolicy = await ctx.policy("demo-policy", rebasePolicy(await policyFromFixtures(ctx.fixturesDir, "demo-policy.hcl"), mounts));
  const appPolicy = await ctx.policy("my-app", rebasePolicy(await policyFromFixtures(ctx.fixturesDir, "my-app.hcl"), mounts));
  const kv2Policy = await ctx.policy("kv2-read", `path "${kv2}/data/app/*" { capabilities = ["read"] }`);
  // Seed data with the root token: what the workload may read.
  await ctx.vault.must("POST", `${myApp}/config`, { db: "postgres://app" });
  await ctx.vault.must("POST", `${kv2}/data/app/config`, { data: { db: "postgres://app" } });

  const ns = await ctx.namespace("app");
  await ctx.kube.createServiceAccount(ns, "default-sa");
  await ctx.kube.createServiceAccount(ns, "my-app");
  await writeRole(ctx.vault, mount, "demo-role", {
    bound_service_account_names: ["default-sa"],
    bound_service_account_namespaces: [ns],
    token_policies: [demoPolicy],
  });
  await writeRole(ctx.vault, mount, "my-app", {
    bound_service_account_names: ["my-app"],
    bound_service_account_namespaces: [ns],
    token_policies: [appPolicy, kv2Policy],
  });
  const tokenOf = async (role: string, sa: string) => {
    const res = await login(ctx.vault, mount, role, await ctx.kube.requestToken(ns, sa));
    expect(res.status, describeResponse(res)).toBe(200);
    return ctx.vault.withToken(res.body.auth!.client_token);
  };
  const demo = await tokenOf("demo-role", "default-sa"); // token of role demo-role (demo-policy)
  const app = await tokenOf("my-app", "my-app"); // token of role my-app (my-app policy + kv2 read)
  return { kv1, myApp, kv2, demo, app };
});

const denied = (res: { status: number; body: { errors?: string[] } }) => expectRefused(res, 403, "permission denied");

describe("policy enforcement for a kubernetes-auth token", () => {
  it("demo-role may write, read and list under secret/demo/ (the guide's 'Success! Data written')", async ({ app: { kv1, demo } }) => {
    const w = await demo.write(`${kv1}/demo/foo`, { value: "bar" });
    expect(w.status).toBe(204);
    const r = await demo.read(`${kv1}/demo/foo`);
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({ value: "bar" });
    const l = await demo.list(`${kv1}/demo`);
    expect(l.status).toBe(200);
    expect(l.body.data.keys).toEqual(["foo"]);
  });

  it("demo-role is refused outside secret/demo/ (403 permission denied, as in the guide)", async ({ app: { kv1, demo } }) => {
    denied(await demo.write(`${kv1}/foo`, { value: "bar" }));
  });

  it.for<[string, (c: VaultClient, kv1: string) => Promise<VaultResponse>]>([
    ["read", (c, kv1) => c.read(`${kv1}/foo`)],
    ["list the mount root", (c, kv1) => c.list(`${kv1}/`)],
    ["write a sibling prefix (secret/demo-other/)", (c, kv1) => c.write(`${kv1}/demo-other/x`, { v: 1 })],
  ])("demo-role may not %s outside secret/demo/ (403)", async ([, call], { app: { kv1, demo } }) => {
    denied(await call(demo, kv1));
  });

  it("my-app may read and list my-app/ (read/list policy) and gets exactly the stored data", async ({ app: { myApp, app } }) => {
    const r = await app.read(`${myApp}/config`);
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({ db: "postgres://app" });
    const l = await app.list(`${myApp}/`);
    expect(l.status).toBe(200);
    expect(l.body.data.keys).toContain("config");
  });

  it.for<[string, (c: VaultClient, myApp: string) => Promise<VaultResponse>]>([
    ["create", (c, myApp) => c.write(`${myApp}/new`, { v: 1 })],
    ["update", (c, myApp) => c.write(`${myApp}/config`, { db: "evil" })],
    ["delete", (c, myApp) => c.delete(`${myApp}/config`)],
  ])("my-app may not %s on its read-only path (403)", async ([, call], { app: { myApp, app } }) => {
    denied(await call(app, myApp));
  });

  it("my-app cannot read another workload's secrets (403)", async ({ app: { kv1, app } }) => {
    denied(await app.read(`${kv1}/demo/foo`));
  });

  it.for<[string, (c: VaultClient, ctx: SuiteContext) => Promise<VaultResponse>]>([
    ["read sys/mounts", (c: VaultClient) => c.read("sys/mounts")],
    ["list ACL policies", (c: VaultClient) => c.list("sys/policies/acl")],
    [
      "write a policy",
      (c: VaultClient) => c.request("PUT", "sys/policies/acl/escalate", { policy: 'path "*" { capabilities = ["sudo"] }' }),
    ],
    ["enable an auth method", (c: VaultClient) => c.write("sys/auth/escalate", { type: "userpass" })],
    ["create a child token", (c: VaultClient) => c.write("auth/token/create", {})],
    [
      "rewrite the kubernetes auth config",
      (c: VaultClient, ctx) => c.write(`auth/${ctx.name("x")}/config`, { kubernetes_host: "https://evil" }),
    ],
  ])("a workload token may not %s (403)", async ([, call], { ctx, app: { app } }) => {
    denied(await call(app, ctx));
  });

  it("KV v2: data/ read is allowed, metadata/ is not, and writes are refused", async ({ app: { kv2, app } }) => {
    const r = await app.read(`${kv2}/data/app/config`);
    expect(r.status).toBe(200);
    expect(r.body.data.data).toEqual({ db: "postgres://app" });
    expect(r.body.data.metadata).toMatchObject({ version: 1 });
    denied(await app.read(`${kv2}/metadata/app/config`));
    denied(await app.write(`${kv2}/data/app/config`, { data: { db: "evil" } }));
  });

  it("the default policy still lets a workload look itself up (200) but not others (403)", async ({ app: { app } }) => {
    const self = await app.read("auth/token/lookup-self");
    expect(self.status).toBe(200);
    expect(self.body.data.policies).toContain("default");
    denied(await app.write("auth/token/lookup", { token: "hvs.doesnotmatter" }));
  });
});
