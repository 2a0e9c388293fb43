import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SuiteContext } from "../lib/vitest/suite.ts";
import { login, writeRole } from "../lib/auth-setup/steps.ts";

// The stack end to end, as the seed guides do it: reviewer SA + auth-delegator binding from
// fixtures/, kubernetes auth configured with the reviewer's token, a role bound to one SA, a
// TokenRequest token logs in; another SA's token is refused.
describe("smoke: the seed guides end to end", () => {
  let ctx: SuiteContext;
  let mount: string;
  let appNs: string;
  const role = "demo-role";

  beforeAll(async () => {
    ctx = await SuiteContext.create("smoke");
    ({ mount } = await ctx.standardAuth());
    appNs = await ctx.namespace("app");
    await ctx.kube.createServiceAccount(appNs, "app");
    await ctx.kube.createServiceAccount(appNs, "other");
    await writeRole(ctx.vault, mount, role, {
      bound_service_account_names: ["app"],
      bound_service_account_namespaces: [appNs],
      token_policies: ["default"],
      token_ttl: "1h",
    });
  });
  afterAll(() => ctx?.cleanup());

  it("logs in a bound service account with a TokenRequest token (200, metadata of the SA)", async () => {
    const jwt = await ctx.kube.requestToken(appNs, "app");
    const uid = await ctx.kube.serviceAccountUid(appNs, "app");
    const res = await login(ctx.vault, mount, role, jwt);
    expect(res.status).toBe(200);
    expect(res.body.auth?.metadata).toEqual({
      role,
      service_account_name: "app",
      service_account_namespace: appNs,
      service_account_uid: uid,
      service_account_secret_name: "",
    });
    expect(res.body.auth?.policies).toEqual(["default"]);
    expect(res.body.auth?.client_token).toMatch(/\S{20,}/);
  });

  it("rejects a token of a service account the role does not bind (403)", async () => {
    const jwt = await ctx.kube.requestToken(appNs, "other");
    const res = await login(ctx.vault, mount, role, jwt);
    expect(res.status).toBe(403);
    expect(res.body.errors?.join(" ")).toContain("service account name not authorized");
  });
});
