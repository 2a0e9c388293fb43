import { describe, expect, it } from "vitest";
import {
  capabilitiesBeyond,
  capabilitiesForPolicies,
  capabilitiesFromBody,
  capabilitiesOfAccessor,
  comparePriority,
  decidingPattern,
  expandPolicyPath,
  fixedPaths,
  intentCovers,
  mountSamplePaths,
  normalizePaths,
  parentsOf,
  pathMatches,
  policyPaths,
  probePaths,
  samplePath,
  validPathPattern,
} from "../capabilities.ts";
import { VaultClient } from "../../vault/client.ts";

describe("policyPaths", () => {
  it("reads every path of an HCL policy, ignoring paths inside comments", () => {
    const hcl = `# vault-k8s-conformance run r1: path "commented/out"
path "secret/data/app/*" {
  capabilities = ["read"]
}
// path "also/commented"
path  "sys/mounts" { capabilities = ["read", "list"] }
/* path "block/comment" */
path "kv/+/config" {
  capabilities = ["update"]
}`;
    expect(policyPaths(hcl)).toEqual(["secret/data/app/*", "sys/mounts", "kv/+/config"]);
  });

  it("reads a JSON policy (object and list forms)", () => {
    expect(policyPaths(JSON.stringify({ path: { "a/b": { capabilities: ["read"] }, "c/*": {} } }))).toEqual(["a/b", "c/*"]);
    expect(policyPaths(JSON.stringify({ path: [{ "x/y": {} }, { "z/+": {} }] }))).toEqual(["x/y", "z/+"]);
  });

  it("an empty or path-less policy has no paths", () => {
    expect(policyPaths("")).toEqual([]);
    expect(policyPaths("{}")).toEqual([]);
  });
});

describe("samplePath / expandPolicyPath", () => {
  it("replaces + segments and a trailing * with the sample segment, and skips templated paths", () => {
    expect(samplePath("kv/+/config")).toBe("kv/vkc-probe/config");
    expect(samplePath("secret/data/app/*")).toBe("secret/data/app/vkc-probe");
    expect(samplePath("secret/data/app-*")).toBe("secret/data/app-vkc-probe");
    expect(samplePath("secret/data/{{identity.entity.id}}/*")).toBeUndefined();
    expect(samplePath("*")).toBe("vkc-probe");
  });

  it("adds the glob's prefix, the parents and a sibling", () => {
    expect(expandPolicyPath("secret/data/app/*").sort()).toEqual(
      [
        "secret/data/app/vkc-probe",
        "secret/data/app/",
        "secret/",
        "secret/data/",
        "secret/data/app",
        "secret/data/vkc-probe-sibling",
      ].sort(),
    );
    expect(expandPolicyPath("sys/mounts").sort()).toEqual(["sys/mounts", "sys/", "sys", "sys/vkc-probe-sibling"].sort());
    expect(expandPolicyPath("secret/data/app-*")).toContain("secret/data/vkc-probe-sibling");
    expect(expandPolicyPath("kv/+/config")).toContain("kv/vkc-probe/vkc-probe-sibling");
    expect(expandPolicyPath("*")).toEqual(["vkc-probe", "vkc-probe-sibling"]);
    expect(expandPolicyPath("secret/data/{{identity.entity.name}}")).toEqual([]);
  });

  it("parentsOf lists directories and the parent", () => {
    expect(parentsOf("a/b/c")).toEqual(["a/", "a/b/", "a/b"]);
    expect(parentsOf("a")).toEqual([]);
  });
});

describe("mountSamplePaths / fixedPaths / normalizePaths", () => {
  it("samples data/ and metadata/ under a kv v2 mount, the root and a child under others", () => {
    expect(mountSamplePaths({ path: "secret/", type: "kv", version: "2" })).toEqual([
      "secret/",
      "secret/vkc-probe",
      "secret/data/",
      "secret/data/vkc-probe",
      "secret/metadata/",
      "secret/metadata/vkc-probe",
      "secret/config",
    ]);
    expect(mountSamplePaths({ path: "kv1/", type: "kv", version: "1" })).toEqual(["kv1/", "kv1/vkc-probe"]);
    expect(mountSamplePaths({ path: "sys/", type: "system" })).toEqual(["sys/"]);
  });

  it("lists the auth mount's config and each role, token and identity endpoints, cubbyhole", () => {
    const f = fixedPaths("/kubernetes/", ["app", "ops"]);
    for (const p of [
      "auth/kubernetes/config",
      "auth/kubernetes/role",
      "auth/kubernetes/role/app",
      "auth/kubernetes/role/ops",
      "sys/auth/kubernetes",
    ])
      expect(f).toContain(p);
    for (const p of [
      "auth/token/create",
      "auth/token/lookup",
      "identity/entity",
      "identity/entity/id",
      "identity/group",
      "cubbyhole/",
      "cubbyhole/vkc-probe",
    ])
      expect(f).toContain(p);
    expect(f).toContain("sys/policies/acl/default");
  });

  it("normalizePaths sorts, de-duplicates, drops leading slashes, empty and templated paths", () => {
    expect(normalizePaths(["b", "/a", "a", "", "x/{{identity.entity.id}}"])).toEqual(["a", "b"]);
  });
});

describe("capabilitiesFromBody", () => {
  it("reads data when present, else the top level; a path Vault did not answer has no capabilities", () => {
    expect(capabilitiesFromBody({ data: { a: ["read", "list"] }, a: ["read", "list"] }, ["a", "b"])).toEqual({
      a: ["list", "read"],
      b: [],
    });
    expect(capabilitiesFromBody({ a: ["deny"] }, ["a"])).toEqual({ a: ["deny"] });
  });
});

describe("pathMatches (Vault policy path patterns)", () => {
  const cases: [string, string, boolean][] = [
    ["secret/data/app", "secret/data/app", true],
    ["secret/data/app", "secret/data/app/x", false],
    ["secret/data/app/*", "secret/data/app/x", true],
    ["secret/data/app/*", "secret/data/app/x/y", true],
    ["secret/data/app/*", "secret/data/app/", true],
    ["secret/data/app/*", "secret/data/app", false],
    ["secret/data/app*", "secret/data/app-2/x", true],
    ["secret/+/config", "secret/a/config", true],
    ["secret/+/config", "secret/a/b/config", false],
    ["secret/+/config", "secret/config", false],
    ["secret/+/*", "secret/a/b/c", true],
    ["secret/+/*", "secret/a", false],
    ["*", "anything/at/all", true],
    ["+", "one", true],
    ["+", "one/two", false],
  ];
  it.each(cases)("%s vs %s -> %s", (pattern, path, want) => {
    expect(pathMatches(pattern, path)).toBe(want);
  });
});

describe("comparePriority / decidingPattern", () => {
  it("follows Vault's priority rules", () => {
    // the first wildcard later wins
    expect(comparePriority("secret/data/*", "secret/*")).toBeGreaterThan(0);
    // no trailing * wins over a glob at the same position
    expect(comparePriority("secret/+/x", "secret/*")).toBeGreaterThan(0);
    // fewer + wins
    expect(comparePriority("a/+/b/c", "a/+/+/c")).toBeGreaterThan(0);
    // longer wins
    expect(comparePriority("a/bcd", "a/bc")).toBeGreaterThan(0);
    // exact beats any glob
    expect(decidingPattern(["secret/*", "secret/data/app", "secret/data/*"], "secret/data/app")).toBe("secret/data/app");
    expect(decidingPattern(["secret/*", "secret/data/*"], "secret/data/x")).toBe("secret/data/*");
    expect(decidingPattern(["kv/*"], "secret/x")).toBeUndefined();
  });
});

describe("intentCovers", () => {
  const intent = {
    "secret/data/app/*": ["read", "list"],
    "secret/data/app/admin": ["deny"],
    "secret/metadata/+/config": ["read"],
    "secret/*": ["list"],
  };
  it("gives the capabilities of the most specific matching pattern", () => {
    expect(intentCovers(intent, "secret/data/app/db")).toEqual(["list", "read"]);
    expect(intentCovers(intent, "secret/metadata/app/config")).toEqual(["read"]);
    expect(intentCovers(intent, "secret/other")).toEqual(["list"]);
  });
  it("a narrower deny overrides a wider grant; an unmatched path allows nothing", () => {
    expect(intentCovers(intent, "secret/data/app/admin")).toEqual([]);
    expect(intentCovers(intent, "sys/mounts")).toEqual([]);
  });
});

describe("capabilitiesBeyond", () => {
  it("names what is granted beyond the intent; deny grants nothing; root is beyond anything but root", () => {
    expect(capabilitiesBeyond(["read", "update"], ["read"])).toEqual(["update"]);
    expect(capabilitiesBeyond(["deny"], [])).toEqual([]);
    expect(capabilitiesBeyond(["root"], ["read", "update"])).toEqual(["root"]);
    expect(capabilitiesBeyond(["root"], ["root"])).toEqual([]);
  });
});

describe("validPathPattern", () => {
  it("accepts Vault-style patterns and names what is wrong with the rest", () => {
    for (const ok of ["secret/data/app", "secret/*", "secret/+/x", "+/x/*", "*"]) expect(validPathPattern(ok)).toBeUndefined();
    expect(validPathPattern("secret/*/x")).toMatch(/only allowed at the end/);
    expect(validPathPattern("secret/a+/x")).toMatch(/whole path segment/);
    expect(validPathPattern("")).toMatch(/empty/);
    expect(validPathPattern("a b")).toMatch(/whitespace/);
  });
});

/** A stand-in for Vault's HTTP API (unit tests of plumbing only; the suites use a real Vault). */
function fakeVault(handler: (method: string, path: string, body: any, token?: string) => { status: number; body?: unknown }) {
  const calls: { method: string; path: string; body: any; token?: string }[] = [];
  const make = (token?: string): VaultClient => {
    const c = new VaultClient({ address: "http://127.0.0.1:1", token });
    c.request = async (method: string, path: string, body?: unknown) => {
      calls.push({ method, path, body, token });
      const r = handler(method, path, body, token);
      return { status: r.status, headers: {}, body: r.body as any, text: JSON.stringify(r.body ?? "") };
    };
    c.withToken = (t) => make(t);
    return c;
  };
  return { client: make("root-token-value"), calls };
}

describe("probePaths (against a stand-in Vault)", () => {
  it("builds the set from sys/mounts, the policies' text and the fixed paths, skipping templated paths", async () => {
    const { client, calls } = fakeVault((method, path) => {
      if (path === "sys/mounts")
        return {
          status: 200,
          body: {
            data: {
              "secret/": { type: "kv", options: { version: "2" } },
              "kv1/": { type: "kv", options: { version: "1" } },
              "sys/": { type: "system" },
              "cubbyhole/": { type: "cubbyhole" },
            },
          },
        };
      if (path === "sys/policies/acl/app")
        return {
          status: 200,
          body: {
            data: {
              policy:
                'path "secret/data/app/*" { capabilities = ["read"] }\npath "secret/data/{{identity.entity.id}}" { capabilities = ["read"] }',
            },
          },
        };
      if (path === "sys/policies/acl/missing") return { status: 404, body: { errors: [] } };
      return { status: 500 };
    });
    const paths = await probePaths(client, { policies: ["app", "missing", "root"], authMount: "kubernetes", roles: ["r1"] });
    expect(paths).toEqual([...paths].sort());
    expect(new Set(paths).size).toBe(paths.length);
    for (const p of [
      "secret/",
      "secret/data/vkc-probe",
      "secret/metadata/vkc-probe",
      "kv1/vkc-probe",
      "secret/data/app/vkc-probe",
      "secret/data/vkc-probe-sibling",
      "auth/kubernetes/role/r1",
      "sys/policies/acl/default",
    ])
      expect(paths).toContain(p);
    expect(paths.some((p) => p.includes("{{"))).toBe(false);
    expect(calls.map((c) => c.path)).not.toContain("sys/policies/acl/root");
  });

  it("a token that may not read sys/mounts is an error naming the path", async () => {
    const { client } = fakeVault(() => ({ status: 403, body: { errors: ["permission denied"] } }));
    await expect(probePaths(client, { policies: [], authMount: "kubernetes" })).rejects.toThrow(
      /sys\/mounts.*HTTP 403.*read on sys\/mounts/,
    );
  });
});

describe("capabilitiesForPolicies (against a stand-in Vault)", () => {
  it("creates a 60 s orphan token with exactly the policies, asks by its accessor, and revokes it", async () => {
    const { client, calls } = fakeVault((method, path) => {
      if (path === "auth/token/create-orphan")
        return { status: 200, body: { auth: { client_token: "child-token-value-123", accessor: "acc-1" } } };
      if (path === "sys/capabilities-accessor") return { status: 200, body: { data: { "a/b": ["read"] }, "a/b": ["read"] } };
      if (path === "auth/token/revoke-accessor") return { status: 204 };
      return { status: 500 };
    });
    expect(await capabilitiesForPolicies(client, ["app", "app"], ["a/b"])).toEqual({ "a/b": ["read"] });
    const create = calls.find((c) => c.path === "auth/token/create-orphan")!;
    expect(create.body).toMatchObject({ policies: ["app"], no_default_policy: true, ttl: "60s" });
    expect(calls.find((c) => c.path === "sys/capabilities-accessor")).toMatchObject({
      body: { accessor: "acc-1", paths: ["a/b"] },
      token: "root-token-value",
    });
    expect(calls.at(-1)).toMatchObject({ path: "auth/token/revoke-accessor", body: { accessor: "acc-1" } });
  });

  it("keeps default only when listed; without capabilities-accessor a token holding default asks itself", async () => {
    const { client, calls } = fakeVault((method, path, body, token) => {
      if (path === "auth/token/create-orphan")
        return { status: 200, body: { auth: { client_token: "child-token-value-456", accessor: "acc-2" } } };
      if (path === "sys/capabilities-accessor") return { status: 403, body: { errors: ["permission denied"] } };
      if (path === "sys/capabilities-self" && token === "child-token-value-456") return { status: 200, body: { data: { x: ["list"] } } };
      if (path === "auth/token/revoke-accessor") return { status: 403, body: { errors: ["permission denied"] } };
      return { status: 204 };
    });
    expect(await capabilitiesForPolicies(client, ["default", "app"], ["x"])).toEqual({ x: ["list"] });
    expect(calls[0]!.body).toMatchObject({ policies: ["app", "default"], no_default_policy: false });
    // revoke-accessor refused: the token revokes itself.
    expect(calls.at(-1)).toMatchObject({ path: "auth/token/revoke-self", token: "child-token-value-456" });
  });

  it("a caller that may not ask by accessor, for policies without default, is told which permission; the token is still revoked", async () => {
    const { client, calls } = fakeVault((method, path) => {
      if (path === "auth/token/create-orphan")
        return { status: 200, body: { auth: { client_token: "child-token-value-789", accessor: "acc-3" } } };
      if (path === "sys/capabilities-accessor") return { status: 403, body: { errors: ["permission denied"] } };
      return { status: 204 };
    });
    await expect(capabilitiesForPolicies(client, ["app"], ["x"])).rejects.toThrow(
      /capabilities-accessor: HTTP 403.*update on sys\/capabilities-accessor/,
    );
    expect(calls.at(-1)).toMatchObject({ path: "auth/token/revoke-accessor", body: { accessor: "acc-3" } });
  });

  it("creates no token for an empty list (it would inherit the parent's policies) nor for root", async () => {
    const { client, calls } = fakeVault(() => ({ status: 500 }));
    expect(await capabilitiesForPolicies(client, [], ["x"])).toEqual({ x: ["deny"] });
    expect(await capabilitiesForPolicies(client, ["root", "app"], ["x"])).toEqual({ x: ["root"] });
    expect(calls).toEqual([]);
  });

  it("a refused token creation names the permission", async () => {
    const { client } = fakeVault(() => ({ status: 403, body: { errors: ["permission denied"] } }));
    await expect(capabilitiesForPolicies(client, ["app"], ["x"])).rejects.toThrow(
      /create-orphan: HTTP 403.*sudo on auth\/token\/create-orphan/,
    );
  });
});

describe("capabilitiesOfAccessor (against a stand-in Vault)", () => {
  it("asks sys/capabilities-accessor with the caller's token; a refusal names the permission", async () => {
    const ok = fakeVault(() => ({ status: 200, body: { data: { a: ["read"] } } }));
    expect(await capabilitiesOfAccessor(ok.client, "acc", ["a", "b"])).toEqual({ a: ["read"], b: [] });
    expect(ok.calls).toEqual([
      { method: "POST", path: "sys/capabilities-accessor", body: { accessor: "acc", paths: ["a", "b"] }, token: "root-token-value" },
    ]);
    const no = fakeVault(() => ({ status: 403, body: { errors: ["permission denied"] } }));
    await expect(capabilitiesOfAccessor(no.client, "acc", ["a"])).rejects.toThrow(/HTTP 403.*update on sys\/capabilities-accessor/);
  });
});
