import { describe, expect, it } from "vitest";
import { UsageError } from "../../errors.ts";
import type { Identity } from "../match.ts";
import {
  AUDIT_SCHEMA,
  agrees,
  CIDR_REFUSAL,
  effectiveAccepted,
  effectivePolicies,
  inCidrs,
  normalizeAddress,
  pool,
  predictedFromHost,
  roleDefinition,
  roleShape,
  staticAccess,
  type AuditReport,
  type RoleAudit,
} from "../audit.ts";
import { diffAudits, formatAuditDiff, parseAudit } from "../audit-diff.ts";
import { auditPlan } from "../audit-run.ts";
import { formatAuditConsole, formatAuditMarkdown } from "../audit-format.ts";
import { checkIntentNames, compareWithIntent, loginCovers, parseIntent, parseLabelSelector } from "../intent.ts";

const ids: Identity[] = [
  { namespace: "prod", serviceAccount: "app", namespaceLabels: { team: "a" } },
  { namespace: "prod", serviceAccount: "web-1", namespaceLabels: { team: "a" } },
  { namespace: "dev", serviceAccount: "app", namespaceLabels: { team: "b" } },
  { namespace: "team-x", serviceAccount: "app", namespaceLabels: {} },
];

describe("role shapes and policies", () => {
  it("names each binding kind", () => {
    expect(roleShape({ bound_service_account_names: ["a"], bound_service_account_namespaces: ["b"] })).toBe(
      "names exact, namespaces exact",
    );
    expect(roleShape({ bound_service_account_names: ["web-*"], bound_service_account_namespaces: "*" })).toBe("names glob, namespaces *");
    expect(
      roleShape({
        bound_service_account_names: ["a"],
        bound_service_account_namespace_selector: '{"matchLabels":{"t":"a"}}',
        token_bound_cidrs: ["10.0.0.0/8"],
        audience: "vault",
      }),
    ).toBe("names exact, selector, cidr, audience");
  });
  it("adds default unless token_no_default_policy", () => {
    expect(effectivePolicies({ token_policies: ["b", "a"] })).toEqual(["a", "b", "default"]);
    expect(effectivePolicies({ token_policies: ["a"], token_no_default_policy: true })).toEqual(["a"]);
    expect(effectivePolicies({ policies: ["p"], token_policies: ["p"] })).toEqual(["default", "p"]);
  });
  it("summarises a role as Vault returns it", () => {
    expect(
      roleDefinition({
        bound_service_account_names: ["a"],
        bound_service_account_namespaces: ["b"],
        token_bound_cidrs: [],
        token_policies: ["x"],
      }),
    ).toEqual({
      names: ["a"],
      namespaces: ["b"],
      token_bound_cidrs: [],
      policies: ["default", "x"],
      shape: "names exact, namespaces exact",
    });
  });
});

describe("staticAccess", () => {
  it("lists who gets in with why, and counts refusals by Vault's error", () => {
    const r = staticAccess({ bound_service_account_names: ["app"], bound_service_account_namespaces: ["prod", "team-*"] }, ids);
    expect(r.accepted).toEqual([
      { namespace: "prod", serviceAccount: "app", why: "name app, namespace prod" },
      { namespace: "team-x", serviceAccount: "app", why: "name app, namespace glob team-*" },
    ]);
    expect(r.refused).toEqual({ "service account name not authorized": 1, "namespace not authorized": 1 });
  });
  it("uses namespace labels for selectors", () => {
    const r = staticAccess(
      { bound_service_account_names: ["*"], bound_service_account_namespace_selector: '{"matchLabels":{"team":"a"}}' },
      ids,
    );
    expect(r.accepted.map((a) => `${a.namespace}/${a.serviceAccount}`)).toEqual(["prod/app", "prod/web-1"]);
    expect(r.refused).toEqual({ "namespace not authorized": 2 });
  });
});

describe("CIDRs", () => {
  it("matches IPv4 and IPv6 subnets and bare addresses; garbage never matches", () => {
    expect(inCidrs("127.0.0.1", ["127.0.0.0/8"])).toBe(true);
    expect(inCidrs("::ffff:127.0.0.1", ["127.0.0.1"])).toBe(true);
    expect(inCidrs("127.0.0.1", ["10.0.0.0/8", "192.168.0.0/16"])).toBe(false);
    expect(inCidrs("::1", ["::1/128"])).toBe(true);
    expect(inCidrs("127.0.0.1", ["nonsense", "127.0.0.0/99"])).toBe(false);
    expect(normalizeAddress("::ffff:10.1.2.3")).toBe("10.1.2.3");
  });
});

describe("static verdict from this host vs a real login", () => {
  const role = { bound_service_account_names: ["app"], bound_service_account_namespaces: ["prod"] };
  it("predicts per identity, and a CIDR that excludes this host refuses everyone", () => {
    expect(predictedFromHost(role, ids[0]!, false)).toBe("accepted");
    expect(predictedFromHost(role, ids[1]!, false)).toBe("service account name not authorized");
    expect(predictedFromHost(role, ids[0]!, true)).toBe(CIDR_REFUSAL);
  });
  it("agrees only on the same outcome and the same refusal", () => {
    expect(agrees("accepted", 200, undefined)).toBe(true);
    expect(agrees("accepted", 403, "permission denied")).toBe(false);
    expect(agrees("namespace not authorized", 403, "namespace not authorized")).toBe(true);
    expect(agrees("namespace not authorized", 403, "service account name not authorized")).toBe(false);
    expect(agrees("service account name not authorized", 200, undefined)).toBe(false);
    expect(agrees(CIDR_REFUSAL, 403, "permission denied")).toBe(true);
    expect(agrees(CIDR_REFUSAL, 200, undefined)).toBe(false);
    expect(agrees("namespace not authorized", 500, "namespace not authorized")).toBe(false);
  });
});

describe("pool", () => {
  it("keeps order and never runs more than the limit at once", async () => {
    let running = 0;
    let peak = 0;
    const out = await pool([5, 1, 3, 2, 4], 2, async (n) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, n));
      running--;
      return n * 10;
    });
    expect(out).toEqual([50, 10, 30, 20, 40]);
    expect(peak).toBe(2);
    expect(await pool([], 4, async () => 1)).toEqual([]);
  });
});

// ---- intent ------------------------------------------------------------------------------------

const INTENT = `
mounts:
  kubernetes:
    roles:
      App:
        login:
          - { serviceAccount: app, namespace: prod }
          - { serviceAccount: "web-*", namespaceSelector: "team=a" }
        capabilities:
          "secret/data/app/*": [read, list]
          "cubbyhole/*": [create, read, update, delete, list]
`;

describe("parseIntent", () => {
  it("reads mounts, roles (lower-cased), login entries and capabilities", () => {
    const i = parseIntent(INTENT, "i.yaml");
    expect(i.mounts.kubernetes!.roles.app).toEqual({
      login: [
        { serviceAccount: "app", namespace: "prod" },
        { serviceAccount: "web-*", namespaceSelector: { team: "a" } },
      ],
      capabilities: { "secret/data/app/*": ["list", "read"], "cubbyhole/*": ["create", "delete", "list", "read", "update"] },
    });
  });

  const bad: [string, string, RegExp][] = [
    ["not YAML", "mounts: [", /YAML/],
    ["no mounts", "roles: {}", /unknown key "roles"/],
    ["empty mounts", "mounts: {}", /at least one auth mount/],
    ["a role that is not a mapping", "mounts: { k: { roles: { r: 3 } } }", /mounts\.k\.roles\.r: must be a mapping/],
    ["an unknown capability", "mounts: { k: { roles: { r: { capabilities: { 'a/b': [reed] } } } } }", /"reed" is not a Vault capability/],
    ["root as a capability", "mounts: { k: { roles: { r: { capabilities: { 'a/b': [root] } } } } }", /"root" is not a Vault capability/],
    [
      "a * in the middle of a path",
      "mounts: { k: { roles: { r: { capabilities: { 'a/*/b': [read] } } } } }",
      /malformed path: `\*` is only allowed at the end/,
    ],
    [
      "a partial + segment",
      "mounts: { k: { roles: { r: { capabilities: { 'a/b+/c': [read] } } } } }",
      /malformed path: `\+` must be a whole path segment/,
    ],
    ["a templated path", "mounts: { k: { roles: { r: { capabilities: { 'a/{{identity.entity.id}}': [read] } } } } }", /templated/],
    ["a login without serviceAccount", "mounts: { k: { roles: { r: { login: [{ namespace: x }] } } } }", /needs serviceAccount/],
    [
      "both namespace and selector",
      "mounts: { k: { roles: { r: { login: [{ serviceAccount: a, namespace: x, namespaceSelector: 'a=b' }] } } } }",
      /exactly one/,
    ],
    [
      "a malformed selector",
      "mounts: { k: { roles: { r: { login: [{ serviceAccount: a, namespaceSelector: 'a' }] } } } }",
      /namespaceSelector must be/,
    ],
    [
      "an unknown login key",
      "mounts: { k: { roles: { r: { login: [{ serviceAccount: a, namespace: x, pod: p }] } } } }",
      /unknown key "pod"/,
    ],
    ["a role twice", "mounts: { k: { roles: { r: {}, R: {} } } }", /listed twice/],
  ];
  it.each(bad)("rejects %s in one line (exit 2)", (_what, text, msg) => {
    let err: unknown;
    try {
      parseIntent(text, "i.yaml");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(msg);
    expect((err as Error).message).toMatch(/^intent i\.yaml: /);
    expect((err as Error).message).not.toContain("\n");
  });

  it("takes YAML anchors and merge keys, so what `default` grants is written once", () => {
    const i = parseIntent(
      [
        "mounts:",
        "  k:",
        "    roles:",
        "      a:",
        "        capabilities: &base",
        '          "cubbyhole/*": [read]',
        "      b:",
        "        capabilities:",
        "          <<: *base",
        '          "secret/data/b/*": [read]',
      ].join("\n"),
      "i.yaml",
    );
    expect(i.mounts.k!.roles.b!.capabilities).toEqual({ "cubbyhole/*": ["read"], "secret/data/b/*": ["read"] });
  });

  it("names an unknown mount or role against the Vault's", () => {
    const i = parseIntent(INTENT, "i.yaml");
    expect(() => checkIntentNames(i, { other: ["app"] })).toThrow(
      /mounts\.kubernetes: Vault has no kubernetes auth mount kubernetes\/ \(has: other\)/,
    );
    expect(() => checkIntentNames(i, { kubernetes: ["web"] })).toThrow(/mount kubernetes\/ has no role app \(has: web\)/);
    expect(() => checkIntentNames(i, { kubernetes: ["app", "web"] })).not.toThrow();
  });

  it("label selectors and login coverage", () => {
    expect(parseLabelSelector("a=b, c=d")).toEqual({ a: "b", c: "d" });
    expect(parseLabelSelector("a")).toBeUndefined();
    expect(parseLabelSelector("a=b,")).toBeUndefined();
    expect(loginCovers({ serviceAccount: "web-*", namespaceSelector: { team: "a" } }, ids[1]!)).toBe(true);
    expect(loginCovers({ serviceAccount: "web-*", namespaceSelector: { team: "b" } }, ids[1]!)).toBe(false);
    expect(loginCovers({ serviceAccount: "app", namespace: "team-*" }, ids[3]!)).toBe(true);
  });
});

// ---- a report, its comparison with intent, its diff and its formats --------------------------

function role(accepted: [string, string][], caps: Record<string, string[]> = {}, extra: Partial<RoleAudit> = {}): RoleAudit {
  return {
    definition: {
      names: ["app"],
      namespaces: ["prod"],
      token_bound_cidrs: [],
      policies: ["app", "default"],
      shape: "names exact, namespaces exact",
    },
    accepted: accepted.map(([namespace, serviceAccount]) => ({
      namespace,
      serviceAccount,
      why: `name ${serviceAccount}, namespace ${namespace}`,
    })),
    refused: { "service account name not authorized": 2 },
    capabilities: Object.fromEntries(
      Object.entries(caps).map(([p, c]) => [p, { capabilities: c, grantedBy: Object.fromEntries(c.map((x) => [x, ["app"]])) }]),
    ),
    ...extra,
  };
}

function report(roles: Record<string, RoleAudit>): AuditReport {
  return {
    schema: AUDIT_SCHEMA,
    generatedAt: "2026-01-01T00:00:00.000Z",
    mode: "static",
    vault: { address: "http://127.0.0.1:8200", version: "1.21.1" },
    kube: {
      server: "https://127.0.0.1:6443",
      context: "ctx",
      serviceAccounts: 4,
      namespaces: { prod: { team: "a" }, dev: { team: "b" }, "team-x": {} },
    },
    identities: ids.map(({ namespace, serviceAccount }) => ({ namespace, serviceAccount })),
    auditHost: "127.0.0.1",
    mounts: { kubernetes: { probedPaths: 10, roles } },
    timings: { total: 1234 },
  };
}

describe("compareWithIntent", () => {
  const intent = parseIntent(INTENT, "i.yaml");
  it("finds nothing when the audit matches", () => {
    const r = report({
      app: role(
        [
          ["prod", "app"],
          ["prod", "web-1"],
        ],
        { "secret/data/app/x": ["read"], "cubbyhole/vkc-probe": ["read", "update"] },
      ),
    });
    expect(compareWithIntent(r, intent)).toEqual([]);
  });
  it("names an extra identity, a refused intended one, and a capability beyond intent with its policy", () => {
    const r = report({
      app: role(
        [
          ["prod", "app"],
          ["dev", "app"],
        ],
        { "secret/data/app/x": ["read", "update"], "sys/mounts": ["read"] },
      ),
      other: role([["team-x", "app"]]),
    });
    expect(compareWithIntent(r, intent)).toEqual([
      "kubernetes/app: would accept dev/app (name app, namespace dev), which the intent does not name",
      "kubernetes/app: refuses prod/web-1, which the intent names ({team=a}/web-*)",
      "kubernetes/app: update on secret/data/app/x is beyond the intent, granted by policy app",
      "kubernetes/app: read on sys/mounts is beyond the intent, granted by policy app",
      "kubernetes/other: would accept team-x/app (name app, namespace team-x), which the intent does not name",
    ]);
  });
  it("uses real logins when probed (and static for a role whose CIDRs exclude this host)", () => {
    const probed = role(
      [["prod", "app"]],
      {},
      { probe: { accepted: [{ namespace: "dev", serviceAccount: "app" }], refused: {}, skipped: [], disagreements: [] } },
    );
    expect(effectiveAccepted(probed)).toEqual([{ namespace: "dev", serviceAccount: "app" }]);
    const cidr = { ...probed, cidr: { bound: ["10.0.0.0/8"], auditHost: "127.0.0.1", excludesAuditHost: true } };
    expect(effectiveAccepted(cidr)).toEqual([{ namespace: "prod", serviceAccount: "app" }]);
    const d = compareWithIntent(report({ app: probed }), intent);
    expect(d[0]).toBe("kubernetes/app: accepts dev/app, which the intent does not name");
  });
});

describe("diffAudits", () => {
  it("shows a role that gained a namespace, and exits on anything gained", () => {
    const before = report({ app: role([["prod", "app"]], { "secret/data/app/x": ["read"] }), gone: role([["dev", "app"]]) });
    const after = report({
      app: role(
        [
          ["prod", "app"],
          ["team-x", "app"],
        ],
        { "secret/data/app/x": ["read"], "secret/data/other": ["read"] },
      ),
      fresh: role([]),
    });
    const d = diffAudits(before, after);
    const app = d.roles.find((r) => r.role === "app")!;
    expect(app.namespacesGained).toEqual(["team-x"]);
    expect(app.identitiesGained).toEqual(["team-x/app"]);
    expect(app.capabilitiesGained).toEqual(["read on secret/data/other"]);
    expect(d.roles.find((r) => r.role === "gone")).toMatchObject({
      change: "removed",
      identitiesLost: ["dev/app"],
      namespacesLost: ["dev"],
    });
    expect(d.roles.find((r) => r.role === "fresh")).toMatchObject({ change: "added" });
    expect(d.gained).toBe(2);
    expect(d.lost).toBe(1);
    const text = formatAuditDiff(d, { before: "a.json", after: "b.json" });
    expect(text).toContain("audit diff a.json -> b.json: 2 gained, 1 lost");
    expect(text).toContain(
      "  kubernetes/app:\n    + namespaces: team-x\n    + identities: team-x/app\n    + capabilities: read on secret/data/other",
    );
  });
  it("two equal audits differ in nothing", () => {
    const a = report({ app: role([["prod", "app"]]) });
    expect(diffAudits(a, a)).toEqual({ roles: [], gained: 0, lost: 0 });
  });
  it("parseAudit refuses what is not an audit (exit 2)", () => {
    expect(() => parseAudit("{", "x.json")).toThrow(/x\.json is not JSON/);
    expect(() => parseAudit('{"version":1,"access":[]}', "x.json")).toThrow(/x\.json is not an audit/);
    expect(parseAudit(JSON.stringify(report({})), "x.json").schema).toBe(AUDIT_SCHEMA);
  });
});

describe("formats", () => {
  const r = report({
    app: role([["prod", "app"]], { "secret/data/app/x": ["read", "update"] }),
    net: role([["prod", "app"]], {}, { cidr: { bound: ["10.0.0.0/8"], auditHost: "127.0.0.1", excludesAuditHost: true } }),
  });
  it("console: one row per role, the verdict, and the files", () => {
    const text = formatAuditConsole(r, {
      deviations: ["kubernetes/app: x"],
      disagreements: [],
      intentFile: "i.yaml",
      files: ["access.json"],
    });
    const lines = text.trimEnd().split("\n");
    expect(lines[0]).toMatch(
      /^audit \(static\) of 4 ServiceAccounts in 3 namespaces, 2 role\(s\) in 1 kubernetes auth mount\(s\), from 127\.0\.0\.1 in 1\.2s$/,
    );
    expect(lines[1]).toMatch(/^mount\s+role\s+shape\s+accepted\s+refused\s+probe\s+capabilities$/);
    expect(lines[2]).toMatch(
      /^kubernetes\s+app\s+names exact, namespaces exact\s+1\s+2 name\s+-\s+1 paths, 1 beyond default \(1 writable\)$/,
    );
    expect(lines[3]).toContain("1 (from inside 10.0.0.0/8 only)");
    expect(text).toContain("DEVIATION kubernetes/app: x");
    expect(text).toContain("1 deviation(s) from i.yaml");
    expect(text).toContain("written: access.json");
  });
  it("markdown: the table, each role's identities with why and capabilities with the granting policy", () => {
    const md = formatAuditMarkdown(r, { deviations: [], disagreements: [] });
    expect(md).toContain("| mount | role | shape | accepted | refused | probe | capabilities |");
    expect(md).toContain("## kubernetes/app");
    expect(md).toContain("| prod/app | name app, namespace prod |");
    expect(md).toContain("| `secret/data/app/x` | read, update | read: app; update: app |");
    expect(md).toContain("token_bound_cidrs 10.0.0.0/8: exclude this host (127.0.0.1)");
    const glob = report({
      any: { ...role([["prod", "app"]]), definition: { ...role([]).definition, names: ["*"], shape: "names *, namespaces *" } },
    });
    glob.mounts.kubernetes!.roles.any!.accepted[0]!.why = "name glob *, namespace prod";
    const gmd = formatAuditMarkdown(glob, {
      deviations: ["kubernetes/any: would accept prod/app (name glob *, namespace prod)"],
      disagreements: [],
    });
    // Globs do not turn into emphasis.
    expect(gmd).toContain("| kubernetes | any | names \\*, namespaces \\* |");
    expect(gmd).toContain("| prod/app | name glob \\*, namespace prod |");
    expect(gmd).toContain("- kubernetes/any: would accept prod/app (name glob \\*, namespace prod)");
    expect(gmd).toContain("- names: `*`;");
  });
});

describe("auditPlan", () => {
  const where = { cluster: "https://k:6443 (context c)", vault: "https://v:8200" };
  it("static: says it reads only and what short-lived tokens it creates", () => {
    const p = auditPlan({ probe: false, concurrency: 16, out: "a.json" }, where);
    expect(p).toContain("audit plan (static, read-only):");
    expect(p).toContain("orphan token (60 s, exactly those policies)");
    expect(p).toContain("no logins, no entities, nothing written");
  });
  it("--probe: says first that logins create identity entities that stay", () => {
    const p = auditPlan({ probe: true, concurrency: 16, out: "a.json" }, where);
    expect(p).toContain("creates an identity entity and alias in your Vault, and these stay");
    expect(p).toContain("every Vault token a login returns is revoked at once");
    expect(p).not.toContain("no logins");
  });
});
