import { describe, expect } from "vitest";
import { suiteTest } from "../lib/vitest/fixtures.ts";
import { expectRefused } from "../lib/vitest/assert.ts";
import { login, writeRole } from "../lib/auth-setup/steps.ts";
import { describeResponse } from "../lib/vault/client.ts";

/**
 * Globs in bound names and namespaces. BEHAVIOR.md (and go-secure-stdlib's GlobbedStringsMatch)
 * say only a leading or trailing `*` matches; the real binaries match a `*` anywhere: the plugin
 * calls strutil.StrListContainsGlob, which uses ryanuber/go-glob (any number of `*`, each matching
 * any run of characters). Seen on HashiCorp Vault 1.21.1 and OpenBao 2.7.2.
 */
const it = suiteTest("globs").extend("app", { scope: "file" }, async ({ ctx }) => {
  const { mount } = await ctx.standardAuth();
  const ns = await ctx.namespace("globs"); // <prefix>-<tag>-<random>, see SuiteContext.name
  for (const sa of ["svc-x-a", "api-worker", "web-1"]) await ctx.kube.createServiceAccount(ns, sa);
  const inNs = { bound_service_account_namespaces: [ns] };
  await writeRole(ctx.vault, mount, "middle", { ...inNs, bound_service_account_names: ["svc-*-a"] });
  await writeRole(ctx.vault, mount, "middle-other", { ...inNs, bound_service_account_names: ["svc-*-b"] });
  await writeRole(ctx.vault, mount, "leading", { ...inNs, bound_service_account_names: ["*-worker"] });
  await writeRole(ctx.vault, mount, "trailing", { ...inNs, bound_service_account_names: ["web-*"] });
  await writeRole(ctx.vault, mount, "both", { ...inNs, bound_service_account_names: ["*-work*"] });
  const [prefix, tag, rand] = ns.split("-");
  await writeRole(ctx.vault, mount, "ns-middle", {
    bound_service_account_names: ["web-1"],
    bound_service_account_namespaces: [`${prefix}-*-${rand}`],
  });
  await writeRole(ctx.vault, mount, "ns-middle-other", {
    bound_service_account_names: ["web-1"],
    bound_service_account_namespaces: [`${prefix}-*-zzzz`],
  });
  await writeRole(ctx.vault, mount, "ns-leading", {
    bound_service_account_names: ["web-1"],
    bound_service_account_namespaces: [`*-${tag}-${rand}`],
  });
  await writeRole(ctx.vault, mount, "ns-exact-star", {
    bound_service_account_names: ["web-1"],
    bound_service_account_namespaces: [`${ns}*`],
  });
  return { mount, ns };
});

describe("globs in bound names and namespaces", () => {
  const table: { name: string; role: string; sa: string; ok: boolean; error?: string }[] = [
    { name: "a * in the middle of a name (svc-*-a) matches svc-x-a (not literal)", role: "middle", sa: "svc-x-a", ok: true },
    {
      name: "a * in the middle (svc-*-b) still needs the rest to match: svc-x-a refused",
      role: "middle-other",
      sa: "svc-x-a",
      ok: false,
      error: "service account name not authorized",
    },
    { name: "a leading * (*-worker) matches api-worker", role: "leading", sa: "api-worker", ok: true },
    {
      name: "a leading * (*-worker) does not match web-1",
      role: "leading",
      sa: "web-1",
      ok: false,
      error: "service account name not authorized",
    },
    { name: "a trailing * (web-*) matches web-1", role: "trailing", sa: "web-1", ok: true },
    { name: "a leading and a trailing * (*-work*) match a substring: api-worker", role: "both", sa: "api-worker", ok: true },
    { name: "a * in the middle of a namespace (<prefix>-*-<random>) matches", role: "ns-middle", sa: "web-1", ok: true },
    {
      name: "a * in the middle of a namespace with another ending (<prefix>-*-zzzz) is refused",
      role: "ns-middle-other",
      sa: "web-1",
      ok: false,
      error: "namespace not authorized",
    },
    { name: "a leading * on a namespace (*-<tag>-<random>) matches", role: "ns-leading", sa: "web-1", ok: true },
    { name: "a trailing * matches the empty string (<namespace>*)", role: "ns-exact-star", sa: "web-1", ok: true },
  ];

  it.for(table)("$name", async ({ role, sa, ok, error }, { ctx, app: { mount, ns } }) => {
    const res = await login(ctx.vault, mount, role, await ctx.kube.requestToken(ns, sa));
    if (ok) {
      expect(res.status, describeResponse(res)).toBe(200);
      expect(res.body.auth?.metadata).toMatchObject({ role, service_account_name: sa, service_account_namespace: ns });
    } else {
      expectRefused(res, 403, error!);
    }
  });
});
