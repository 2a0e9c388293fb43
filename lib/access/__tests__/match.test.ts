import { describe, expect, it } from "vitest";
import {
  advice,
  asList,
  describeSelector,
  dns1123,
  globMatch,
  isGlob,
  lookalikes,
  parseSelector,
  predict,
  selectorMatches,
} from "../match.ts";

describe("globMatch (go-glob, as measured on Vault 1.21.1 and OpenBao 2.7.2)", () => {
  const cases: [string, string, boolean][] = [
    ["*", "anything", true],
    ["*", "", true],
    ["payments", "payments", true],
    ["payments", "payments-2", false],
    ["pay*", "payments", true],
    ["pay*", "pay", true],
    ["pay*", "xpay", false],
    ["*-app", "web-app", true],
    ["*-app", "web-apps", false],
    ["*pay*", "my-payments", true],
    ["*pay*", "pa-y", false],
    // A `*` in the middle matches too (suites/globs.test.ts shows it on the real plugin).
    ["a*b", "axb", true],
    ["a*b", "a*b", true],
    ["a*b", "axbx", false],
    ["ab*ba", "aba", false],
    ["p*y*s", "payments", true],
  ];
  it.each(cases)("%s vs %s -> %s", (p, v, want) => expect(globMatch(p, v)).toBe(want));

  it("isGlob: a `*` anywhere makes a glob", () => {
    expect(isGlob("*")).toBe(true);
    expect(isGlob("a*")).toBe(true);
    expect(isGlob("*a")).toBe(true);
    expect(isGlob("a*b")).toBe(true);
    expect(isGlob("ab")).toBe(false);
  });
});

describe("asList", () => {
  it("takes arrays and comma-separated strings, dropping empties", () => {
    expect(asList(["a", "", "b"])).toEqual(["a", "b"]);
    expect(asList("a, b,,c")).toEqual(["a", "b", "c"]);
    expect(asList(undefined)).toEqual([]);
    expect(asList(null)).toEqual([]);
  });
});

describe("parseSelector / selectorMatches / describeSelector", () => {
  it("reads JSON selectors with matchLabels and matchExpressions", () => {
    const sel = parseSelector('{"matchLabels":{"team":"a"},"matchExpressions":[{"key":"env","operator":"In","values":["prod","stage"]}]}')!;
    expect(selectorMatches(sel, { team: "a", env: "prod" })).toBe(true);
    expect(selectorMatches(sel, { team: "a", env: "dev" })).toBe(false);
    expect(selectorMatches(sel, { team: "b", env: "prod" })).toBe(false);
    expect(describeSelector(sel)).toBe("team=a, env In (prod,stage)");
  });

  it("reads a flat YAML matchLabels selector", () => {
    const sel = parseSelector('matchLabels:\n  team: a\n  tier: "web"\n')!;
    expect(sel.matchLabels).toEqual({ team: "a", tier: "web" });
  });

  it("empty text is no selector; an empty selector matches every namespace", () => {
    expect(parseSelector("")).toBeUndefined();
    expect(parseSelector("  ")).toBeUndefined();
    expect(selectorMatches({}, {})).toBe(true);
    expect(describeSelector({})).toMatch(/every namespace/);
  });

  it("NotIn, Exists, DoesNotExist, and an unknown operator (never matches)", () => {
    expect(selectorMatches({ matchExpressions: [{ key: "env", operator: "NotIn", values: ["prod"] }] }, { env: "dev" })).toBe(true);
    expect(selectorMatches({ matchExpressions: [{ key: "env", operator: "NotIn", values: ["prod"] }] }, { env: "prod" })).toBe(false);
    expect(selectorMatches({ matchExpressions: [{ key: "env", operator: "NotIn", values: ["prod"] }] }, {})).toBe(true);
    expect(selectorMatches({ matchExpressions: [{ key: "env", operator: "Exists" }] }, { env: "" })).toBe(true);
    expect(selectorMatches({ matchExpressions: [{ key: "env", operator: "Exists" }] }, {})).toBe(false);
    expect(selectorMatches({ matchExpressions: [{ key: "env", operator: "DoesNotExist" }] }, {})).toBe(true);
    expect(selectorMatches({ matchExpressions: [{ key: "env", operator: "Gt", values: ["1"] }] }, { env: "2" })).toBe(false);
  });
});

describe("predict", () => {
  const who = (namespace: string, serviceAccount: string, namespaceLabels?: Record<string, string>) => ({
    namespace,
    serviceAccount,
    namespaceLabels,
  });

  it("accepts an exact name in an exact namespace, and says why", () => {
    expect(predict({ bound_service_account_names: ["app"], bound_service_account_namespaces: ["prod"] }, who("prod", "app"))).toEqual({
      accepted: true,
      why: "name app, namespace prod",
    });
  });

  it("checks the name before the namespace, as the plugin does", () => {
    const v = predict({ bound_service_account_names: ["app"], bound_service_account_namespaces: ["prod"] }, who("dev", "other"));
    expect(v).toMatchObject({ accepted: false, error: "service account name not authorized" });
    expect(v.why).toBe("name other matches none of [app]");
  });

  it("refuses a bound name in an unbound namespace", () => {
    expect(predict({ bound_service_account_names: ["app"], bound_service_account_namespaces: ["prod"] }, who("dev", "app"))).toMatchObject({
      accepted: false,
      error: "namespace not authorized",
      why: "namespace dev matches none of [prod]",
    });
  });

  it("names the glob that let an identity in", () => {
    expect(
      predict({ bound_service_account_names: ["web-*"], bound_service_account_namespaces: ["team-*"] }, who("team-a", "web-1")),
    ).toEqual({
      accepted: true,
      why: "name glob web-*, namespace glob team-*",
    });
    expect(predict({ bound_service_account_names: "*", bound_service_account_namespaces: "*" }, who("x", "y"))).toMatchObject({
      accepted: true,
    });
  });

  it("a namespace selector lets in namespaces whose labels match, and only when the labels are known", () => {
    const role = { bound_service_account_names: ["app"], bound_service_account_namespace_selector: '{"matchLabels":{"team":"a"}}' };
    expect(predict(role, who("ns1", "app", { team: "a" }))).toEqual({ accepted: true, why: "name app, namespace selector team=a" });
    const refused = predict(role, who("ns2", "app", { team: "b" }));
    expect(refused).toMatchObject({ accepted: false, error: "namespace not authorized" });
    expect(refused.why).toContain("nor the selector team=a");
    expect(predict(role, who("ns1", "app"))).toMatchObject({ accepted: false });
  });

  it("a listed namespace wins before the selector is consulted", () => {
    const role = {
      bound_service_account_names: ["app"],
      bound_service_account_namespaces: ["prod"],
      bound_service_account_namespace_selector: '{"matchLabels":{"team":"a"}}',
    };
    expect(predict(role, who("prod", "app", { team: "b" }))).toEqual({ accepted: true, why: "name app, namespace prod" });
  });
});

describe("lookalikes / dns1123", () => {
  it("gives the neighbours each pattern shape would (or would not) let in", () => {
    expect(lookalikes("payments")).toEqual(["payments-vkc", "vkc-payments"]);
    expect(lookalikes("pay*")).toEqual(["pay-vkc"]);
    expect(lookalikes("pay-*")).toEqual(["pay-vkc"]);
    expect(lookalikes("*-app")).toEqual(["vkc-app"]);
    expect(lookalikes("*app")).toEqual(["vkc-app"]);
    expect(lookalikes("*")).toEqual(["vkc-any"]);
    expect(lookalikes("*mid*")).toEqual(["vkc-mid-vkc"]);
    expect(lookalikes("pay*db")).toEqual(["pay-vkc-db", "pay-vkc-db-vkc", "vkc-pay-vkc-db"]);
    for (const p of ["pay*", "*-app", "*mid*", "pay*db", "*"])
      expect(
        lookalikes(p).some((l) => globMatch(p, l)),
        p,
      ).toBe(true);
    expect(lookalikes("x", "t")).toEqual(["x-t", "t-x"]);
  });

  it("makes DNS-1123 labels (lower case, dashes, at most 63 characters)", () => {
    expect(dns1123("My_App.1")).toBe("my-app-1");
    expect(dns1123("--a--")).toBe("a");
    expect(dns1123("a".repeat(70)).length).toBe(63);
    expect(dns1123("a".repeat(62) + "-b")).toBe("a".repeat(62));
  });
});

describe("advice", () => {
  const who = { namespace: "prod", serviceAccount: "web-1" };
  it("names the glob to replace first, then the namespace glob, then the namespace to drop", () => {
    expect(advice("r", { bound_service_account_names: ["web-*"], bound_service_account_namespaces: ["prod"] }, who)).toBe(
      'replace "web-*" in bound_service_account_names of role r with the exact names it is meant for',
    );
    expect(advice("r", { bound_service_account_names: ["web-1"], bound_service_account_namespaces: ["pr*"] }, who)).toBe(
      'replace "pr*" in bound_service_account_namespaces of role r with the exact namespaces it is meant for',
    );
    expect(advice("r", { bound_service_account_names: ["web-1"], bound_service_account_namespaces: ["prod"] }, who)).toBe(
      "drop prod from bound_service_account_namespaces of role r",
    );
  });
  it("points at the selector when it let the identity in", () => {
    expect(
      advice("r", { bound_service_account_names: ["web-1"], bound_service_account_namespace_selector: '{"matchLabels":{"a":"b"}}' }, who),
    ).toBe("narrow bound_service_account_namespace_selector of role r (namespace prod matches it)");
  });
});
