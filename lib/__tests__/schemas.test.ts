import { readdirSync } from "node:fs";
import Ajv2020Module from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import type { AccessEntry, AccessMap, CapabilityMap, IdentityRecord } from "../access/probe.ts";
import { ACCESS_SCHEMA, collectAccess, type AccessReport } from "../access/report.ts";
import { AUDIT_SCHEMA, type AuditReport, type RoleAudit, type RoleDefinition } from "../access/audit.ts";
import {
  PROFILE_SCHEMA,
  type AuthMountProfile,
  type KubeProfile,
  type Profile,
  type RoleProfile,
  type TokenFacts,
  type VaultProfile,
} from "../gate/types.ts";
import { RESULTS_SCHEMA, type CaseResult, type RunResults } from "../report/reporter.ts";
import { SCHEMA_BASE, SCHEMA_KINDS, SCHEMA_MARKERS, SCHEMAS_DIR, loadSchema, validate, type SchemaKind } from "../schemas.ts";

// The schemas in schemas/ against hand-made documents, typed as the TypeScript types the
// harness writes them from: so the types and the schemas agree, and drift is caught both ways.

// ---- type-level agreement: the key lists below must equal the types' keys (tsc checks) ----------

type Equal<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type RequiredKeys<T> = { [K in keyof T]-?: {} extends Pick<T, K> ? never : K }[keyof T];
/** Compiles only when `L` lists exactly the keys of `T`. */
const keysOf =
  <T>() =>
  <const L extends readonly (keyof T)[]>(
    l: L & (Equal<L[number], keyof T> extends true ? unknown : { missing: Exclude<keyof T, L[number]> }),
  ) =>
    l as readonly string[];
/** Compiles only when `L` lists exactly the required keys of `T`. */
const requiredOf =
  <T>() =>
  <const L extends readonly RequiredKeys<T>[]>(
    l: L & (Equal<L[number], RequiredKeys<T>> extends true ? unknown : { missing: Exclude<RequiredKeys<T>, L[number]> }),
  ) =>
    l as readonly string[];

type Obj = { properties?: Record<string, unknown>; required?: string[] };

/** A closed object of a schema, by JSON pointer below the schema's root. */
function at(kind: SchemaKind, pointer: string): Obj {
  let node: any = loadSchema(kind);
  for (const part of pointer.split("/").filter(Boolean)) node = node[part];
  if (!node) throw new Error(`${kind}: nothing at ${pointer}`);
  return node as Obj;
}

const sorted = (l: readonly string[] | undefined) => [...(l ?? [])].sort();

// Each closed type: its schema object, its keys, its required keys (schema-only extras noted).
const AGREEMENT: { name: string; kind: SchemaKind; pointer: string; keys: readonly string[]; required: readonly string[] }[] = [
  {
    name: "RunResults",
    kind: "results",
    pointer: "",
    keys: keysOf<RunResults>()([
      "schema",
      "startedAt",
      "durationMs",
      "target",
      "flavor",
      "versions",
      "runId",
      "totals",
      "cases",
      "unhandledErrors",
      "aborted",
      "access",
    ]),
    // `schema` is optional in the type (older files still load) but required of a v1 document.
    required: [...requiredOf<RunResults>()(["startedAt", "durationMs", "totals", "cases", "unhandledErrors"]), "schema"],
  },
  {
    name: "CaseResult",
    kind: "results",
    pointer: "/$defs/case",
    keys: keysOf<CaseResult>()([
      "id",
      "project",
      "suite",
      "name",
      "status",
      "durationMs",
      "error",
      "skipNote",
      "target",
      "flavor",
      "versions",
    ]),
    required: requiredOf<CaseResult>()(["id", "project", "suite", "name", "status", "durationMs"]),
  },
  {
    name: "AccessReport",
    kind: "access",
    pointer: "",
    keys: keysOf<AccessReport>()(["schema", "version", "access", "capabilities", "identity"]),
    required: requiredOf<AccessReport>()(["schema", "version", "access", "capabilities", "identity"]),
  },
  {
    name: "AccessMap",
    kind: "access",
    pointer: "/$defs/accessMap",
    keys: keysOf<AccessMap>()([
      "case",
      "mount",
      "role",
      "cidrBound",
      "intended",
      "accepted",
      "refused",
      "skipped",
      "entries",
      "deviations",
    ]),
    required: requiredOf<AccessMap>()(["case", "mount", "role", "intended", "accepted", "refused", "skipped", "entries", "deviations"]),
  },
  {
    name: "AccessEntry",
    kind: "access",
    pointer: "/$defs/accessEntry",
    keys: keysOf<AccessEntry>()(["namespace", "serviceAccount", "sources", "intended", "predicted", "why", "outcome", "status", "error"]),
    required: requiredOf<AccessEntry>()(["namespace", "serviceAccount", "sources", "intended", "predicted", "why", "outcome"]),
  },
  {
    name: "CapabilityMap",
    kind: "access",
    pointer: "/$defs/capabilityMap",
    keys: keysOf<CapabilityMap>()(["case", "role", "via", "policies", "granted", "added", "probed", "checks", "deviations"]),
    required: requiredOf<CapabilityMap>()(["case", "role", "via", "policies", "granted", "added", "probed", "checks", "deviations"]),
  },
  {
    name: "IdentityRecord",
    kind: "access",
    pointer: "/$defs/identityRecord",
    keys: keysOf<IdentityRecord>()(["case", "role", "identity", "aliasNameSource", "before", "after", "sameEntity", "deviations"]),
    required: requiredOf<IdentityRecord>()(["case", "role", "identity", "aliasNameSource", "before", "after", "sameEntity", "deviations"]),
  },
  {
    name: "Profile",
    kind: "profile",
    pointer: "",
    keys: keysOf<Profile>()(["schema", "createdAt", "runId", "target", "persona", "kubernetes", "vault", "cases"]),
    required: requiredOf<Profile>()(["schema", "createdAt", "runId", "target", "kubernetes", "vault"]),
  },
  {
    name: "KubeProfile",
    kind: "profile",
    pointer: "/$defs/kubeProfile",
    keys: keysOf<KubeProfile>()([
      "version",
      "server",
      "hostForVault",
      "caFingerprints",
      "issuer",
      "jwks",
      "defaultAudiences",
      "boundToken",
      "podBoundToken",
      "longRequest",
      "tokenSecretsAutoCreated",
      "anonymousDiscoveryStatus",
    ]),
    required: requiredOf<KubeProfile>()([
      "version",
      "server",
      "hostForVault",
      "caFingerprints",
      "issuer",
      "jwks",
      "defaultAudiences",
      "boundToken",
      "podBoundToken",
      "longRequest",
      "tokenSecretsAutoCreated",
      "anonymousDiscoveryStatus",
    ]),
  },
  {
    name: "TokenFacts",
    kind: "profile",
    pointer: "/$defs/tokenFacts",
    keys: keysOf<TokenFacts>()(["kid", "alg", "iss", "aud", "requestedSeconds", "lifetimeSeconds", "warnAfterSeconds", "kubernetesClaims"]),
    required: requiredOf<TokenFacts>()([
      "kid",
      "alg",
      "iss",
      "aud",
      "requestedSeconds",
      "lifetimeSeconds",
      "warnAfterSeconds",
      "kubernetesClaims",
    ]),
  },
  {
    name: "VaultProfile",
    kind: "profile",
    pointer: "/$defs/vaultProfile",
    keys: keysOf<VaultProfile>()(["flavor", "version", "mounts", "note"]),
    required: requiredOf<VaultProfile>()(["flavor", "version", "mounts"]),
  },
  {
    name: "AuthMountProfile",
    kind: "profile",
    pointer: "/$defs/authMountProfile",
    keys: keysOf<AuthMountProfile>()(["path", "source", "config", "roles"]),
    required: requiredOf<AuthMountProfile>()(["path", "source", "config", "roles"]),
  },
  {
    name: "AuthMountProfile.config",
    kind: "profile",
    pointer: "/$defs/authMountProfile/properties/config",
    keys: keysOf<AuthMountProfile["config"]>()([
      "kubernetes_host",
      "issuer",
      "disable_iss_validation",
      "disable_local_ca_jwt",
      "token_reviewer_jwt_set",
      "caFingerprints",
      "pemKeyIds",
    ]),
    required: requiredOf<AuthMountProfile["config"]>()([
      "kubernetes_host",
      "issuer",
      "disable_iss_validation",
      "disable_local_ca_jwt",
      "token_reviewer_jwt_set",
      "caFingerprints",
      "pemKeyIds",
    ]),
  },
  {
    name: "RoleProfile",
    kind: "profile",
    pointer: "/$defs/roleProfile",
    keys: keysOf<RoleProfile>()([
      "name",
      "audience",
      "bound_service_account_names",
      "bound_service_account_namespaces",
      "alias_name_source",
    ]),
    required: requiredOf<RoleProfile>()([
      "name",
      "audience",
      "bound_service_account_names",
      "bound_service_account_namespaces",
      "alias_name_source",
    ]),
  },
  {
    name: "AuditReport",
    kind: "audit",
    pointer: "",
    keys: keysOf<AuditReport>()([
      "schema",
      "generatedAt",
      "mode",
      "vault",
      "kube",
      "identities",
      "auditHost",
      "mounts",
      "timings",
      "probe",
    ]),
    required: requiredOf<AuditReport>()(["schema", "generatedAt", "mode", "vault", "kube", "identities", "auditHost", "mounts", "timings"]),
  },
  {
    name: "RoleAudit",
    kind: "audit",
    pointer: "/$defs/roleAudit",
    keys: keysOf<RoleAudit>()(["definition", "cidr", "accepted", "refused", "probe", "capabilities"]),
    required: requiredOf<RoleAudit>()(["definition", "accepted", "refused", "capabilities"]),
  },
  {
    name: "RoleDefinition",
    kind: "audit",
    pointer: "/$defs/roleDefinition",
    keys: keysOf<RoleDefinition>()([
      "names",
      "namespaces",
      "selector",
      "audience",
      "alias_name_source",
      "token_bound_cidrs",
      "policies",
      "shape",
    ]),
    required: requiredOf<RoleDefinition>()(["names", "namespaces", "token_bound_cidrs", "policies", "shape"]),
  },
];

// ---- samples, typed as what the harness writes -----------------------------------------------

const versions = { kubernetes: "v1.36.3", etcd: "3.6.8", vault: "1.21.1" };

const entry = (ns: string, sa: string, outcome: AccessEntry["outcome"], error?: string): AccessEntry => ({
  namespace: ns,
  serviceAccount: sa,
  sources: outcome === "accepted" ? ["bound-namespace", "cluster", "intended"] : ["cluster", "lookalike"],
  intended: outcome === "accepted",
  predicted: error ?? "accepted",
  why: outcome === "accepted" ? `name ${sa}, namespace ${ns}` : `name ${sa} matches none of [default]`,
  outcome,
  ...(outcome === "skipped" ? {} : { status: outcome === "accepted" ? 200 : 403 }),
  ...(error ? { error } : {}),
});

function sampleAccess(): AccessReport {
  const access: AccessMap = {
    case: "CoreOS Tectonic guide (vault CLI)",
    mount: "k8s-94071a-4fbe",
    role: "demo-role",
    intended: ["case-94071a-cad4/default", "{team=a}/app"],
    accepted: ["case-94071a-cad4/default"],
    refused: { "service account name not authorized": 1 },
    skipped: 1,
    entries: [
      entry("case-94071a-cad4", "default", "accepted"),
      entry("case-94071a-cad4", "vkc-default", "refused", "service account name not authorized"),
      entry("case-94071a-cad4", "nobody", "skipped"),
    ],
    deviations: [],
  };
  const cidr: AccessMap = {
    ...access,
    role: "cidr-role",
    cidrBound: ["10.255.0.0/16"],
    accepted: [],
    entries: [],
    refused: {},
    skipped: 0,
  };
  const capabilities: CapabilityMap = {
    case: access.case,
    role: "demo-role",
    via: "a real login of the case",
    policies: ["default", "demo-policy"],
    granted: { "secret/demo/": ["create", "read"], "auth/token/lookup-self": ["read"] },
    added: { "secret/demo/": ["create", "read"] },
    probed: 24,
    checks: [{ method: "GET", path: "secret/other/x", status: 403, expected: "denied" }],
    deviations: ["role demo-role may read secret/other/x"],
  };
  const identity: IdentityRecord = {
    case: access.case,
    role: "demo-role",
    identity: "case-94071a-cad4/default",
    aliasNameSource: "serviceaccount_uid",
    before: { entityId: "1803496a-706e-1f0e-f21d-16e7de9a2360", aliasId: "f2ff553d", aliasName: "71c3db1a" },
    after: { entityId: "65ec73b7-fb28-c307-d85f-94cceaa7cd09" },
    sameEntity: false,
    deviations: [],
  };
  // collectAccess sorts by case, then role: access[0] is cidr-role, access[1] demo-role.
  return collectAccess([{ vkcAccess: access, vkcCapabilities: capabilities, vkcIdentity: identity }, { vkcAccess: cidr }]);
}

function sampleResults(): RunResults {
  const c = (name: string, status: CaseResult["status"], extra: Partial<CaseResult> = {}): CaseResult => ({
    id: `suites/smoke.test.ts::smoke > ${name}`,
    project: "conformance",
    suite: "smoke",
    name,
    status,
    durationMs: 12,
    target: "local",
    flavor: "vault",
    versions,
    ...extra,
  });
  return {
    schema: RESULTS_SCHEMA,
    startedAt: "2026-12-03T19:37:10.123Z",
    durationMs: 16_000,
    target: "local",
    flavor: "vault",
    versions,
    runId: "vkc-20261203193710-d0dfa7",
    totals: { passed: 1, failed: 1, skipped: 1 },
    cases: [
      c("logs in", "passed"),
      c("rejects", "failed", { error: "expected 403, got 200" }),
      c("kind only", "skipped"),
      {
        id: "lib/x.test.ts::(file)",
        project: "unit",
        suite: "lib/x.test.ts",
        name: "(setup)",
        status: "failed",
        durationMs: 0,
        error: "boom",
      },
    ],
    unhandledErrors: [],
    aborted: "kube-apiserver (pid 12) killed by SIGKILL while the suites ran",
    access: sampleAccess(),
  };
}

function sampleProfile(): Profile {
  const facts: TokenFacts = {
    kid: "T7tXxnei-PyHbhcW4jV7WTR2OgKjPTREGrzzovGdTUQ",
    alg: "RS256",
    iss: "https://kubernetes.default.svc.cluster.local",
    aud: ["https://kubernetes.default.svc.cluster.local"],
    requestedSeconds: 3600,
    lifetimeSeconds: 3600,
    warnAfterSeconds: null,
    kubernetesClaims: ["namespace", "serviceaccount"],
  };
  const fp = "0e1078cb2672e6044d00b042cfe382460d941609bfdf34c512025cdd9b6fa350";
  return {
    schema: PROFILE_SCHEMA,
    createdAt: "2026-12-03T19:40:52.683Z",
    runId: "vkc-20261203194043-53efc9",
    target: "local",
    persona: "eks-like",
    kubernetes: {
      version: "v1.36.3",
      server: "https://127.0.0.1:33071",
      hostForVault: "https://127.0.0.1:33071",
      caFingerprints: [fp],
      issuer: {
        discovery: null,
        jwksUri: null,
        boundToken: facts.iss,
        legacyToken: "kubernetes/serviceaccount",
        configured: [facts.iss],
      },
      jwks: null,
      defaultAudiences: facts.aud,
      boundToken: facts,
      podBoundToken: { error: "pods are forbidden" },
      longRequest: { requestedSeconds: 172800, grantedSeconds: 86400 },
      tokenSecretsAutoCreated: false,
      anonymousDiscoveryStatus: null,
    },
    vault: {
      flavor: "openbao",
      version: "2.4.1",
      mounts: [
        {
          path: "kubernetes",
          source: "read",
          config: {
            kubernetes_host: "https://10.0.0.1:443",
            issuer: "",
            disable_iss_validation: true,
            disable_local_ca_jwt: false,
            token_reviewer_jwt_set: false,
            caFingerprints: [],
            pemKeyIds: ["unparsable"],
          },
          roles: [
            {
              name: "app",
              audience: "",
              bound_service_account_names: ["app"],
              bound_service_account_namespaces: ["prod"],
              alias_name_source: "serviceaccount_uid",
            },
          ],
        },
      ],
      note: "some mounts could not be read",
    },
    cases: { totals: { passed: 1, failed: 0, skipped: 0 }, results: [{ id: "suites/smoke.test.ts::smoke > logs in", status: "passed" }] },
  };
}

function sampleAudit(): AuditReport {
  const role: RoleAudit = {
    definition: {
      names: ["app"],
      namespaces: ["aud-prod"],
      selector: '{"matchLabels":{"team":"a"}}',
      token_bound_cidrs: ["10.255.0.0/16"],
      policies: ["default"],
      shape: "names exact, namespaces exact, selector, cidr",
    },
    cidr: { bound: ["10.255.0.0/16"], auditHost: "127.0.0.1", excludesAuditHost: true },
    accepted: [{ namespace: "aud-prod", serviceAccount: "app", why: "name app, namespace aud-prod" }],
    refused: { "namespace not authorized": 3 },
    probe: {
      accepted: [],
      refused: { "HTTP 403: permission denied": 1 },
      skipped: [{ namespace: "aud-dev", serviceAccount: "gone", error: "serviceaccounts not found" }],
      disagreements: [{ namespace: "aud-prod", serviceAccount: "app", predicted: "accepted", real: "HTTP 403 permission denied" }],
    },
    capabilities: { "aud-kv/data/app/vkc-probe": { capabilities: ["read"], grantedBy: { read: ["aud-app"] } } },
  };
  return {
    schema: AUDIT_SCHEMA,
    generatedAt: "2026-12-03T19:40:52.683Z",
    mode: "probe",
    vault: { address: "http://127.0.0.1:8200", version: "1.21.1" },
    kube: { server: "https://127.0.0.1:6443", context: "vkc", serviceAccounts: 4, namespaces: { "aud-prod": { team: "a" } } },
    identities: [{ namespace: "aud-prod", serviceAccount: "app" }],
    auditHost: "127.0.0.1",
    mounts: { "k8s-audit": { probedPaths: 12, roles: { cidr: role } } },
    timings: { read: 12.5, total: 40 },
    probe: { logins: 4, revoked: 1, tokenRequests: 4 },
  };
}

const SAMPLES: Record<SchemaKind, () => object> = {
  results: sampleResults,
  access: sampleAccess,
  profile: sampleProfile,
  audit: sampleAudit,
};

/** A deep copy of `doc` changed by `edit`. */
function mutated<T>(doc: T, edit: (d: any) => void): unknown {
  const copy = structuredClone(doc);
  edit(copy);
  return copy;
}

describe("JSON Schemas (schemas/*.v1.schema.json)", () => {
  it("every schema file is draft 2020-12 with an $id under one base, and compiles in strict mode", () => {
    expect(sorted(readdirSync(SCHEMAS_DIR))).toEqual(sorted(SCHEMA_KINDS.map((k) => `${k}.v1.schema.json`)));
    for (const kind of SCHEMA_KINDS) {
      const s = loadSchema(kind);
      expect(s.$schema).toBe("https://json-schema.org/draft/2020-12/schema");
      expect(s.$id).toBe(`${SCHEMA_BASE}${kind}.v1.json`);
      expect(s.properties.schema, kind).toEqual({ const: SCHEMA_MARKERS[kind] });
      expect(s.required, kind).toContain("schema");
    }
    // Each compiles on its own in a fresh strict instance (results with the access schema it refers to).
    for (const kind of SCHEMA_KINDS) {
      const ajv = new Ajv2020Module.default({ strict: true, allErrors: true });
      if (kind === "results") ajv.addSchema(loadSchema("access"));
      expect(() => ajv.compile(loadSchema(kind)), kind).not.toThrow();
    }
  });

  it("the markers in the code match the schemas", () => {
    expect(SCHEMA_MARKERS).toEqual({ results: RESULTS_SCHEMA, access: ACCESS_SCHEMA, profile: PROFILE_SCHEMA, audit: AUDIT_SCHEMA });
    expect(sampleAccess()).toMatchObject({ schema: ACCESS_SCHEMA, version: 1 });
  });

  it.each(AGREEMENT)("$name: the schema's properties and required fields are the type's", ({ kind, pointer, keys, required }) => {
    const o = at(kind, pointer);
    expect(sorted(Object.keys(o.properties ?? {}))).toEqual(sorted(keys));
    expect(sorted(o.required)).toEqual(sorted(required));
    expect((o as { additionalProperties?: unknown }).additionalProperties).toBe(false);
  });

  it.each(SCHEMA_KINDS)("a valid %s document (typed as the TypeScript type) passes", (kind) => {
    expect(validate(kind, SAMPLES[kind]())).toEqual([]);
  });

  it("optional parts may be left out", () => {
    const minimal: RunResults = {
      schema: RESULTS_SCHEMA,
      startedAt: "2026-12-03T19:37:10.123Z",
      durationMs: 0,
      totals: { passed: 0, failed: 0, skipped: 0 },
      cases: [],
      unhandledErrors: ["Error: worker exited"],
    };
    expect(validate("results", minimal)).toEqual([]);
    expect(validate("access", collectAccess([]))).toEqual([]);
    expect(
      validate(
        "profile",
        mutated(sampleProfile(), (p) => {
          delete p.persona;
          delete p.cases;
          delete p.vault.note;
          p.kubernetes.podBoundToken = p.kubernetes.boundToken;
        }),
      ),
    ).toEqual([]);
    expect(
      validate(
        "audit",
        mutated(sampleAudit(), (a) => {
          a.mode = "static";
          delete a.probe;
          delete a.vault.version;
          delete a.mounts["k8s-audit"].roles.cidr.probe;
          delete a.mounts["k8s-audit"].roles.cidr.cidr;
        }),
      ),
    ).toEqual([]);
  });

  // Realistic mistakes: each must fail, with a line that says where and what.
  const MISTAKES: { what: string; kind: SchemaKind; edit: (d: any) => void; error: string }[] = [
    {
      what: "results without its version marker",
      kind: "results",
      edit: (d) => delete d.schema,
      error: "(root): must have required property 'schema'",
    },
    {
      what: "results marked with another version",
      kind: "results",
      edit: (d) => (d.schema = "vault-k8s-conformance/results/v2"),
      error: '/schema: must be equal to constant "vault-k8s-conformance/results/v1"',
    },
    {
      what: "a case without a status",
      kind: "results",
      edit: (d) => delete d.cases[0].status,
      error: "/cases/0: must have required property 'status'",
    },
    {
      what: "a case status outside the enum",
      kind: "results",
      edit: (d) => (d.cases[1].status = "error"),
      error: '/cases/1/status: must be equal to one of the allowed values ("passed", "failed", "skipped")',
    },
    {
      what: "an extra property on a case",
      kind: "results",
      edit: (d) => (d.cases[0].retries = 2),
      error: '/cases/0: must NOT have additional properties: "retries"',
    },
    { what: "totals as strings", kind: "results", edit: (d) => (d.totals.passed = "1"), error: "/totals/passed: must be integer" },
    {
      what: "an unknown target",
      kind: "results",
      edit: (d) => (d.target = "minikube"),
      error: "/target: must be equal to one of the allowed values",
    },
    {
      what: "startedAt not a timestamp",
      kind: "results",
      edit: (d) => (d.startedAt = "yesterday"),
      error: "/startedAt: must match pattern",
    },
    {
      what: "the embedded access report without its marker",
      kind: "results",
      edit: (d) => delete d.access.schema,
      error: "/access: must have required property 'schema'",
    },
    {
      what: "access.json without version",
      kind: "access",
      edit: (d) => delete d.version,
      error: "(root): must have required property 'version'",
    },
    { what: "access.json with version 2", kind: "access", edit: (d) => (d.version = 2), error: "/version: must be equal to constant 1" },
    {
      what: "an access entry outcome outside the enum",
      kind: "access",
      edit: (d) => (d.access[1].entries[0].outcome = "denied"),
      error: '/access/1/entries/0/outcome: must be equal to one of the allowed values ("accepted", "refused", "skipped")',
    },
    {
      what: "an unknown access source",
      kind: "access",
      edit: (d) => (d.access[1].entries[1].sources = ["cluster", "guess"]),
      error: "/access/1/entries/1/sources/1: must be equal to one of the allowed values",
    },
    {
      what: "an accepted identity without namespace",
      kind: "access",
      edit: (d) => (d.access[0].accepted = ["default"]),
      error: '/access/0/accepted/0: must match pattern "^[^/]+/[^/]+$"',
    },
    {
      what: "an extra property on an identity record",
      kind: "access",
      edit: (d) => (d.identity[0].entity = "x"),
      error: '/identity/0: must NOT have additional properties: "entity"',
    },
    {
      what: "capabilities as a string instead of a list",
      kind: "access",
      edit: (d) => (d.capabilities[0].granted["secret/demo/"] = "read"),
      error: "/capabilities/0/granted/secret~1demo~1: must be array",
    },
    {
      what: "a profile of another schema",
      kind: "profile",
      edit: (d) => (d.schema = "vault-k8s-conformance/profile/v0"),
      error: '/schema: must be equal to constant "vault-k8s-conformance/profile/v1"',
    },
    {
      what: "a profile without kubernetes",
      kind: "profile",
      edit: (d) => delete d.kubernetes,
      error: "(root): must have required property 'kubernetes'",
    },
    {
      what: "a fingerprint with colons",
      kind: "profile",
      edit: (d) => (d.kubernetes.caFingerprints = ["0E:10:78"]),
      error: "/kubernetes/caFingerprints/0: must match pattern",
    },
    {
      what: "a token leaking into the profile",
      kind: "profile",
      edit: (d) => (d.kubernetes.boundToken.token = "eyJhbGciOi..."),
      error: '/kubernetes/boundToken: must NOT have additional properties: "token"',
    },
    {
      what: "a mount source outside the enum",
      kind: "profile",
      edit: (d) => (d.vault.mounts[0].source = "user"),
      error: '/vault/mounts/0/source: must be equal to one of the allowed values ("harness", "read")',
    },
    {
      what: "a profile case status outside the enum",
      kind: "profile",
      edit: (d) => (d.cases.results[0].status = "ok"),
      error: "/cases/results/0/status: must be equal to one of the allowed values",
    },
    {
      what: "an audit mode outside the enum",
      kind: "audit",
      edit: (d) => (d.mode = "dynamic"),
      error: '/mode: must be equal to one of the allowed values ("static", "probe")',
    },
    {
      what: "an accepted audit identity without why",
      kind: "audit",
      edit: (d) => delete d.mounts["k8s-audit"].roles.cidr.accepted[0].why,
      error: "/mounts/k8s-audit/roles/cidr/accepted/0: must have required property 'why'",
    },
    {
      what: "an extra property on an accepted audit identity",
      kind: "audit",
      edit: (d) => (d.mounts["k8s-audit"].roles.cidr.accepted[0].uid = "x"),
      error: '/mounts/k8s-audit/roles/cidr/accepted/0: must NOT have unevaluated properties: "uid"',
    },
  ];

  it.each(MISTAKES)("fails: $what", ({ kind, edit, error }) => {
    const errors = validate(kind, mutated(SAMPLES[kind](), edit));
    expect(errors.length).toBeGreaterThan(0);
    expect(
      errors.some((e) => e.startsWith(error)),
      errors.join("\n"),
    ).toBe(true);
    for (const e of errors) expect(e).not.toContain("\n");
  });

  it("a profile's union fields take exactly one of their shapes", () => {
    const errors = validate(
      "profile",
      mutated(sampleProfile(), (p) => (p.kubernetes.longRequest = { requestedSeconds: 1, grantedSeconds: 1, error: "x" })),
    );
    expect(errors).toContain("/kubernetes/longRequest: must match exactly one schema in oneOf");
  });

  it("not an object at all", () => {
    expect(validate("results", null)).toEqual(["(root): must be object"]);
    expect(validate("access", [])).toEqual(["(root): must be object"]);
    expect(() => validate("nonsense" as SchemaKind, {})).toThrow(/unknown schema kind "nonsense"/);
  });
});
