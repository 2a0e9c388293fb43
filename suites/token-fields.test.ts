import { request } from "node:http";
import { describe, expect } from "vitest";
import { topologySkips } from "../lib/fixtures/expectations.ts";
import { registerSecret } from "../lib/redact.ts";
import { suiteTest } from "../lib/vitest/fixtures.ts";
import { expectRefused } from "../lib/vitest/assert.ts";
import { login, writeRole, type RoleSpec } from "../lib/auth-setup/steps.ts";
import { describeResponse, type VaultResponse } from "../lib/vault/client.ts";
import type { SuiteContext } from "../lib/vitest/suite.ts";
import type { TargetInfo } from "../lib/lifecycle/info.ts";

/**
 * The SDK's common token fields on a kubernetes role (tokenutil): what the login returns and what
 * the token then does. token_bound_cidrs is checked on every use of the token, not only at login.
 */
const it = suiteTest("token-fields").extend("app", { scope: "file" }, async ({ ctx }) => {
  const { mount } = await ctx.standardAuth();
  const ns = await ctx.namespace("app");
  await ctx.kube.createServiceAccount(ns, "app");
  const kv = await ctx.kv("kv", 1);
  await ctx.vault.must("POST", `${kv}/app/config`, { v: "1" });
  const policy = await ctx.policy("app", `path "${kv}/app/*" { capabilities = ["read"] }`);
  const bound = (): RoleSpec => ({ bound_service_account_names: ["app"], bound_service_account_namespaces: [ns] });
  const loginWith = async (spec: Partial<RoleSpec>) => {
    const role = ctx.name("r");
    await writeRole(ctx.vault, mount, role, { ...bound(), token_policies: [policy], ...spec });
    const res = await login(ctx.vault, mount, role, await ctx.kube.requestToken(ns, "app"));
    expect(res.status, describeResponse(res)).toBe(200);
    return { role, res, auth: res.body.auth!, client: ctx.vault.withToken(res.body.auth!.client_token) };
  };
  return { mount, ns, kv, policy, bound, loginWith };
});

describe("role token fields", () => {
  it("token_type=batch: 200, a batch token (not renewable, no accessor, orphan) that reads what the policy allows", async ({
    app: { mount, ns, kv, policy, loginWith },
  }) => {
    const { auth, client } = await loginWith({ token_type: "batch", token_ttl: "20m" });
    expect(auth).toMatchObject({ token_type: "batch", renewable: false, orphan: true, lease_duration: 1200, accessor: "" });
    expect([...auth.policies].sort()).toEqual(["default", policy].sort());
    expect(auth.metadata).toMatchObject({ service_account_name: "app", service_account_namespace: ns });
    const self = await client.read("auth/token/lookup-self");
    expect(self.status, describeResponse(self)).toBe(200);
    expect(self.body.data).toMatchObject({ type: "batch", renewable: false, path: `auth/${mount}/login` });
    expect((await client.read(`${kv}/app/config`)).body.data).toEqual({ v: "1" });
    expectRefused(await client.write("auth/token/renew-self", {}), 400, "batch tokens cannot be renewed");
  });

  it.for([
    { field: "token_period", value: "1h", error: "when set to generate periodic tokens" },
    { field: "token_num_uses", value: 3, error: "when set to generate tokens with limited use count" },
  ])("refuses a batch role with $field (400)", async ({ field, value, error }, { ctx, app: { mount, bound } }) => {
    const res = await ctx.vault.write(`auth/${mount}/role/${ctx.name("bad")}`, { ...bound(), token_type: "batch", [field]: value });
    expectRefused(res, 400, error);
  });

  it("token_num_uses=2: the token works twice, then it is gone (403 permission denied)", async ({ app: { kv, loginWith } }) => {
    const { auth, client } = await loginWith({ token_num_uses: 2 });
    expect(auth.token_type).toBe("service");
    expect((auth as unknown as { num_uses: number }).num_uses).toBe(2);
    expect((await client.read(`${kv}/app/config`)).status).toBe(200);
    expect((await client.read(`${kv}/app/config`)).status).toBe(200);
    expectRefused(await client.read(`${kv}/app/config`), 403, "permission denied");
  });

  it("token_period: the lease is the period (not token_ttl), lookup-self shows it, a renewal resets it", async ({ app: { loginWith } }) => {
    const { auth, client } = await loginWith({ token_period: "15m", token_ttl: "5m" });
    expect(auth).toMatchObject({ renewable: true, lease_duration: 900 });
    const self = await client.read("auth/token/lookup-self");
    expect(self.body.data).toMatchObject({ period: 900, explicit_max_ttl: 0 });
    const renewed = await client.write("auth/token/renew-self", {});
    expect(renewed.status, describeResponse(renewed)).toBe(200);
    expect(renewed.body.auth).toMatchObject({ renewable: true, lease_duration: 900 });
  });

  it("token_period above token_max_ttl: the role's max TTL caps the periodic token's lease (15m period, 10m max -> 600 s)", async ({
    app: { loginWith },
  }) => {
    const { auth, client } = await loginWith({ token_period: "15m", token_ttl: "5m", token_max_ttl: "10m" });
    expect(auth).toMatchObject({ renewable: true, lease_duration: 600 });
    const self = await client.read("auth/token/lookup-self");
    expect(self.body.data.period).toBe(900);
    const renewed = await client.write("auth/token/renew-self", {});
    expect(renewed.status, describeResponse(renewed)).toBe(200);
    expect(renewed.body.auth.lease_duration).toBeLessThanOrEqual(600);
  });

  it("token_explicit_max_ttl: caps the lease at login and every renewal after it", async ({ app: { loginWith } }) => {
    const { auth, client } = await loginWith({ token_ttl: "1h", token_explicit_max_ttl: "2m" });
    expect(auth.lease_duration).toBeLessThanOrEqual(120);
    expect(auth.lease_duration).toBeGreaterThan(100);
    const self = await client.read("auth/token/lookup-self");
    expect(self.body.data.explicit_max_ttl).toBe(120);
    const renewed = await client.write("auth/token/renew-self", { increment: "1h" });
    expect(renewed.status, describeResponse(renewed)).toBe(200);
    expect(renewed.body.auth.lease_duration).toBeLessThanOrEqual(120);
    expect(renewed.body.warnings?.join(" ")).toContain("max");
  });

  it("token_no_default_policy: only the role's policies; the default policy's paths are refused (403)", async ({
    app: { kv, policy, loginWith },
  }) => {
    const { auth, client } = await loginWith({ token_no_default_policy: true });
    expect(auth.policies).toEqual([policy]);
    expect(auth.token_policies).toEqual([policy]);
    expect((await client.read(`${kv}/app/config`)).status).toBe(200);
    // lookup-self is granted by the default policy only.
    expectRefused(await client.read("auth/token/lookup-self"), 403, "permission denied");
  });

  // Vault listens on 127.0.0.1: on Linux all of 127/8 is loopback, so a client bound to 127.0.0.2
  // is a second source address to test token_bound_cidrs with.
  const loopback = (ctx: SuiteContext) =>
    /^http:\/\/127\.0\.0\.1[:/]/.test(ctx.info.vault.address) && !ctx.info.vault.proxyFile && process.platform === "linux";

  it("token_bound_cidrs holds on every use, not only at login: a token bound to 127.0.0.2 is refused from 127.0.0.1 (403)", async ({
    skip,
    ctx,
    app: { mount, ns, kv, policy, bound },
  }) => {
    const declared = topologySkips(ctx.info).clientSourceAddress;
    if (declared) skip(declared);
    if (!loopback(ctx)) skip();
    const role = ctx.name("cidr");
    await writeRole(ctx.vault, mount, role, { ...bound(), token_policies: [policy], token_bound_cidrs: ["127.0.0.2/32"] });
    const jwt = await ctx.kube.requestToken(ns, "app");
    // From 127.0.0.1 the login itself is refused.
    expectRefused(await login(ctx.vault, mount, role, jwt), 403, "permission denied");
    const res = await from("127.0.0.2", ctx.info.vault, "POST", `/v1/auth/${mount}/login`, undefined, { role, jwt });
    expect(res.status, describeResponse(res)).toBe(200);
    const token = res.body.auth.client_token as string;
    registerSecret(token);
    const self = await from("127.0.0.2", ctx.info.vault, "GET", "/v1/auth/token/lookup-self", token);
    expect(self.status, describeResponse(self)).toBe(200);
    expect(self.body.data.bound_cidrs).toEqual(["127.0.0.2"]);
    expect((await from("127.0.0.2", ctx.info.vault, "GET", `/v1/${kv}/app/config`, token)).status).toBe(200);
    expectRefused(await ctx.vault.withToken(token).read(`${kv}/app/config`), 403, "permission denied");
  });
});

/** One Vault API call from a given local source address (plain HTTP on loopback; in the target's namespace, if any). */
function from(
  localAddress: string,
  vault: Pick<TargetInfo["vault"], "address" | "namespace">,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
): Promise<VaultResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const r = request(
      new URL(path, vault.address),
      {
        method,
        localAddress,
        timeout: 15_000,
        headers: {
          ...(token ? { "x-vault-token": token } : {}),
          ...(vault.namespace ? { "x-vault-namespace": vault.namespace } : {}),
          ...(payload ? { "content-type": "application/json", "content-length": String(payload.length) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : {}, text });
        });
        res.on("error", reject);
      },
    );
    r.on("timeout", () => r.destroy(new Error(`${method} ${path} from ${localAddress}: no answer within 15s`)));
    r.on("error", reject);
    r.end(payload);
  });
}
