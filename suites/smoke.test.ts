import { describe, expect } from "vitest";
import { suiteTest } from "../lib/vitest/fixtures.ts";
import { expectRefused } from "../lib/vitest/assert.ts";
import { login, writeRole } from "../lib/auth-setup/steps.ts";

const role = "demo-role";

// The stack end to end, as the seed guides do it: reviewer SA + auth-delegator binding from
// fixtures/, kubernetes auth configured with the reviewer's token, a role bound to one SA, a
// TokenRequest token logs in; another SA's token is refused.
const it = suiteTest("smoke").extend("app", { scope: "file" }, async ({ ctx }) => {
  const { mount } = await ctx.standardAuth();
  const appNs = await ctx.namespace("app");
  await ctx.kube.createServiceAccount(appNs, "app");
  await ctx.kube.createServiceAccount(appNs, "other");
  await writeRole(ctx.vault, mount, role, {
    bound_service_account_names: ["app"],
    bound_service_account_namespaces: [appNs],
    token_policies: ["default"],
    token_ttl: "1h",
  });
  return { mount, appNs };
});

describe("smoke: the seed guides end to end", () => {
  it("logs in a bound service account with a TokenRequest token (200, metadata of the SA)", async ({ ctx, app: { mount, appNs } }) => {
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

  it("rejects a token of a service account the role does not bind (403)", async ({ ctx, app: { mount, appNs } }) => {
    const jwt = await ctx.kube.requestToken(appNs, "other");
    expectRefused(await login(ctx.vault, mount, role, jwt), 403, "service account name not authorized");
  });
});
