import { describe, expect } from "vitest";
import { suiteTest } from "../lib/vitest/fixtures.ts";
import { expectRefused } from "../lib/vitest/assert.ts";
import { login, writeRole, type LoginData } from "../lib/auth-setup/steps.ts";
import { describeResponse, type VaultResponse } from "../lib/vault/client.ts";
import { waitFor } from "../lib/wait.ts";

/**
 * bound_service_account_namespace_selector: the plugin GETs the token's namespace with the
 * reviewer's JWT and matches its labels (matchLabels only), as an alternative to the namespace
 * list. The reviewer needs `get namespaces`, which system:auth-delegator does not give.
 */
const expectAccepted = (res: VaultResponse<LoginData>, role: string, namespace: string) => {
  expect(res.status, describeResponse(res)).toBe(200);
  expect(res.body.auth?.metadata).toMatchObject({ role, service_account_name: "app", service_account_namespace: namespace });
  expect(res.body.auth?.policies).toContain("default");
  expect(res.body.auth?.renewable).toBe(true);
};

const it = suiteTest("namespace-selector").extend("app", { scope: "file" }, async ({ ctx }) => {
  const label = `vkc-team-${ctx.tag}`; // the selector's label key, unique to the suite
  const selector = () => JSON.stringify({ matchLabels: { [label]: "a" } });
  /** A namespace with the run label and `labels`, removed with the suite. */
  const labelled = async (prefix: string, labels: Record<string, string>) => {
    const ns = ctx.name(prefix);
    await ctx.kube.createLabelledNamespace(ns, ctx.info.runId, labels);
    ctx.teardown.defer(`delete namespace ${ns}`, () => ctx.kube.deleteNamespace(ns));
    for (const sa of ["app", "intruder"]) await ctx.kube.createServiceAccount(ns, sa);
    return ns;
  };
  /** The reviewer's `get namespaces`, as users add it next to auth-delegator. */
  const grantNamespaceReader = async (namespace: string, serviceAccount: string) => {
    const name = ctx.name("vkc-ns-reader");
    ctx.teardown.defer(`delete ClusterRole(Binding) ${name}`, () => ctx.kube.revokeClusterRole(name));
    await ctx.kube.grantClusterRole(name, ctx.info.runId, [{ apiGroups: [""], resources: ["namespaces"], verbs: ["get"] }], {
      namespace,
      name: serviceAccount,
    });
  };

  const { mount, reviewer } = await ctx.standardAuth();
  await grantNamespaceReader(reviewer.namespace, reviewer.serviceAccount);
  const matched = await labelled("sel-a", { [label]: "a" }); // labelled <label>=a
  const unmatched = await labelled("sel-b", { [label]: "b" }); // labelled <label>=b
  const listed = await labelled("sel-l", {}); // no label, in the role's namespace list
  await writeRole(ctx.vault, mount, "sel", {
    bound_service_account_names: ["app"],
    bound_service_account_namespace_selector: selector(),
  });
  await writeRole(ctx.vault, mount, "sel-and-list", {
    bound_service_account_names: ["app"],
    bound_service_account_namespaces: [listed],
    bound_service_account_namespace_selector: selector(),
  });
  // The new ClusterRoleBinding reaches the apiserver's authorizer through an informer: wait
  // (bounded) until the reviewer may read namespaces, so that no case below races it.
  const probe = await ctx.kube.requestToken(matched, "app");
  await waitFor(async () => (await login(ctx.vault, mount, "sel", probe)).status === 200, {
    what: "the reviewer's get-namespaces grant takes effect (a selector login succeeds)",
    timeoutMs: 15_000,
    intervalMs: 250,
  });
  return { mount, label, selector, labelled, grantNamespaceReader, matched, unmatched, listed };
});

describe("namespace selector", () => {
  it("accepts a service account of a namespace whose labels match the selector (200)", async ({ ctx, app: { mount, matched } }) => {
    expectAccepted(await login(ctx.vault, mount, "sel", await ctx.kube.requestToken(matched, "app")), "sel", matched);
  });

  it("rejects a namespace whose labels do not match (403 namespace not authorized)", async ({ ctx, app: { mount, unmatched } }) => {
    expectRefused(await login(ctx.vault, mount, "sel", await ctx.kube.requestToken(unmatched, "app")), 403, "namespace not authorized");
  });

  it("still checks the name first: an unbound name in a matching namespace (403 service account name not authorized)", async ({
    ctx,
    app: { mount, matched },
  }) => {
    expectRefused(
      await login(ctx.vault, mount, "sel", await ctx.kube.requestToken(matched, "intruder")),
      403,
      "service account name not authorized",
    );
  });

  // Either is enough: the plugin tries the list, then the selector (path_login.go).
  it.for([
    { what: "a listed namespace without the label", ns: "listed", ok: true },
    { what: "a labelled namespace not in the list", ns: "matched", ok: true },
    { what: "a namespace neither listed nor labelled", ns: "unmatched", ok: false },
  ] as const)("selector together with a namespace list: $what -> ok=$ok", async ({ ns: which, ok }, { ctx, app }) => {
    const ns = app[which];
    const res = await login(ctx.vault, app.mount, "sel-and-list", await ctx.kube.requestToken(ns, "app"));
    if (ok) expectAccepted(res, "sel-and-list", ns);
    else expectRefused(res, 403, "namespace not authorized");
  });

  it("reads the labels at each login: relabelling a namespace grants and revokes at once", async ({
    ctx,
    app: { mount, label, labelled },
  }) => {
    const ns = await labelled("sel-r", {});
    const jwt = await ctx.kube.requestToken(ns, "app");
    expectRefused(await login(ctx.vault, mount, "sel", jwt), 403, "namespace not authorized");
    await ctx.kube.setNamespaceLabels(ns, { [label]: "a" });
    expectAccepted(await login(ctx.vault, mount, "sel", jwt), "sel", ns);
    await ctx.kube.setNamespaceLabels(ns, { [label]: "b" });
    expectRefused(await login(ctx.vault, mount, "sel", jwt), 403, "namespace not authorized");
  });

  it("refuses a selector with matchExpressions (400: only matchLabels is supported)", async ({ ctx, app: { mount, label } }) => {
    const res = await ctx.vault.write(`auth/${mount}/role/${ctx.name("expr")}`, {
      bound_service_account_names: ["app"],
      bound_service_account_namespace_selector: JSON.stringify({ matchExpressions: [{ key: label, operator: "In", values: ["a"] }] }),
    });
    expectRefused(res, 400, `invalid "bound_service_account_namespace_selector" configured`);
  });

  it("a role rewritten without the selector loses it: read back empty, the labelled namespace is refused (403)", async ({
    ctx,
    app: { mount, selector, matched, listed },
  }) => {
    const role = "rewritten";
    await writeRole(ctx.vault, mount, role, {
      bound_service_account_names: ["app"],
      bound_service_account_namespaces: [listed],
      bound_service_account_namespace_selector: selector(),
    });
    const jwt = await ctx.kube.requestToken(matched, "app");
    expectAccepted(await login(ctx.vault, mount, role, jwt), role, matched);
    await writeRole(ctx.vault, mount, role, { bound_service_account_names: ["app"], bound_service_account_namespaces: [listed] });
    const back = await ctx.vault.read(`auth/${mount}/role/${role}`);
    expect(back.status).toBe(200);
    expect(back.body.data).toMatchObject({ bound_service_account_namespaces: [listed], bound_service_account_namespace_selector: "" });
    expectRefused(await login(ctx.vault, mount, role, jwt), 403, "namespace not authorized");
  });

  it("a reviewer without `get namespaces` (auth-delegator only): 403 namespace not authorized with the apiserver's refusal; granting it fixes the login", async ({
    ctx,
    app: { selector, matched, grantNamespaceReader },
  }) => {
    const other = await ctx.standardAuth();
    await writeRole(ctx.vault, other.mount, "sel", {
      bound_service_account_names: ["app"],
      bound_service_account_namespace_selector: selector(),
    });
    const jwt = await ctx.kube.requestToken(matched, "app");
    const res = await login(ctx.vault, other.mount, "sel", jwt);
    expectRefused(res, 403, "namespace not authorized");
    expect(res.body.errors?.join("\n")).toContain("forbidden");
    await grantNamespaceReader(other.namespace, other.reviewer.serviceAccount);
    // RBAC changes reach the apiserver's authorizer through its informer: poll briefly.
    const ok = await waitFor(
      async () => {
        const r = await login(ctx.vault, other.mount, "sel", jwt);
        return r.status === 200 ? r : undefined;
      },
      { what: "Vault accepts the login once the reviewer may get namespaces", timeoutMs: 15_000, intervalMs: 250 },
    );
    expectAccepted(ok, "sel", matched);
  });
});
