import { generateKeyPairSync } from "node:crypto";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { UsageError } from "../../errors.ts";
import { diffExitCode, diffProfiles, formatDiff, parseProfile } from "../diff.ts";
import { buildMatrix, cellText, formatMatrixMarkdown, issuerMatrixPath, type PersonaCells } from "../matrix.ts";
import { listPersonas, loadPersona, parsePersona } from "../persona.ts";
import { issuerSettingsFor, LEGACY_ISSUER, predictLogin } from "../predict.ts";
import { kubernetesKeyId, pemKeyIds, tokenFacts } from "../profile.ts";
import { PACKAGE_ROOT } from "../../config.ts";
import { join } from "node:path";
import { PROFILE_SCHEMA, type AuthMountProfile, type Profile } from "../types.ts";

const KIND = "https://kubernetes.default.svc.cluster.local";
const EKS = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC";

function token(o: { iss?: string; aud?: string[]; life?: number; warnafter?: number | null; kid?: string } = {}) {
  return {
    kid: o.kid ?? "kid-1",
    alg: "RS256",
    iss: o.iss ?? KIND,
    aud: o.aud ?? [o.iss ?? KIND],
    requestedSeconds: 3607,
    lifetimeSeconds: o.life ?? 365 * 24 * 3600,
    warnAfterSeconds: o.warnafter === undefined ? 3607 : o.warnafter,
    kubernetesClaims: ["namespace", "pod", "serviceaccount", "warnafter"],
  };
}

function mount(o: Partial<AuthMountProfile["config"]> = {}, roles: AuthMountProfile["roles"] = []): AuthMountProfile {
  return {
    path: "kubernetes",
    source: "read",
    config: {
      kubernetes_host: "https://api.example:6443",
      issuer: "",
      disable_iss_validation: true,
      disable_local_ca_jwt: true,
      token_reviewer_jwt_set: true,
      caFingerprints: ["ca1"],
      pemKeyIds: [],
      ...o,
    },
    roles,
  };
}

function profile(
  o: { iss?: string; aud?: string[]; mounts?: AuthMountProfile[]; target?: string; version?: string; ca?: string; kid?: string } = {},
): Profile {
  const iss = o.iss ?? KIND;
  return {
    schema: PROFILE_SCHEMA,
    createdAt: "2026-11-23T00:00:00Z",
    runId: "r",
    target: o.target ?? "existing",
    kubernetes: {
      version: o.version ?? "v1.35.8",
      server: "https://api.example:6443",
      hostForVault: "https://api.example:6443",
      caFingerprints: [o.ca ?? "ca1"],
      issuer: { discovery: iss, jwksUri: null, boundToken: iss, legacyToken: LEGACY_ISSUER, configured: [] },
      jwks: [{ kid: o.kid ?? "kid-1", alg: "RS256", kty: "RSA" }],
      defaultAudiences: o.aud ?? [iss],
      boundToken: {
        ...token({ iss, aud: o.aud ?? [iss], kid: o.kid }),
        requestedSeconds: 3600,
        lifetimeSeconds: 3600,
        warnAfterSeconds: null,
      },
      podBoundToken: token({ iss, aud: o.aud ?? [iss], kid: o.kid }),
      longRequest: { requestedSeconds: 172800, grantedSeconds: 172800 },
      tokenSecretsAutoCreated: false,
      anonymousDiscoveryStatus: 403,
    },
    vault: { flavor: "vault", version: "1.21.1", mounts: o.mounts ?? [] },
  };
}

describe("prediction rules", () => {
  it("issuer modes write the settings users write", () => {
    expect(issuerSettingsFor("off", { discovered: EKS })).toEqual({ disable_iss_validation: true, issuer: "" });
    expect(issuerSettingsFor("discovered", { discovered: EKS })).toEqual({ disable_iss_validation: false, issuer: EKS });
    expect(issuerSettingsFor("legacy", { discovered: EKS })).toEqual({ disable_iss_validation: false, issuer: LEGACY_ISSUER });
    expect(issuerSettingsFor("pre-upgrade", { discovered: EKS })).toEqual({ disable_iss_validation: false, issuer: KIND });
    expect(issuerSettingsFor("pre-upgrade", { discovered: EKS, preUpgrade: "https://old" }).issuer).toBe("https://old");
  });
  it("issuer checked only with validation on and an issuer set; then the role's audience", () => {
    const t = { iss: EKS, aud: [EKS] };
    expect(predictLogin({ disable_iss_validation: true, issuer: KIND }, {}, t)).toEqual({ ok: true, status: 200 });
    expect(predictLogin({ disable_iss_validation: false, issuer: "" }, {}, t).ok).toBe(true);
    expect(predictLogin({ disable_iss_validation: false, issuer: KIND }, {}, t)).toEqual({
      ok: false,
      status: 403,
      error: "invalid issuer (iss) claim",
    });
    expect(predictLogin({ disable_iss_validation: true, issuer: "" }, { audience: KIND }, t)).toEqual({
      ok: false,
      status: 403,
      error: "invalid audience (aud) claim",
    });
    expect(predictLogin({ disable_iss_validation: true, issuer: "" }, { audience: EKS }, t).ok).toBe(true);
  });
});

describe("profile:diff", () => {
  it("a profile against itself: OK, exit 0", () => {
    const p = profile({ mounts: [mount({ disable_iss_validation: false, issuer: KIND })] });
    const d = diffProfiles(p, p);
    expect(d.findings).toEqual([]);
    expect(diffExitCode(d)).toBe(0);
    expect(formatDiff(d, "text")).toMatch(/^OK: /);
  });

  it("an issuer change breaks a config that validates the old issuer, not one with validation off", () => {
    const strict = { ...mount({ disable_iss_validation: false, issuer: KIND }), path: "k8s-strict" };
    const lax = { ...mount(), path: "k8s-lax" };
    const d = diffProfiles(profile({ mounts: [strict, lax] }), profile({ iss: EKS }));
    expect(diffExitCode(d)).toBe(1);
    const breaks = d.findings.filter((f) => f.severity === "break").map((f) => f.message);
    expect(breaks).toEqual([
      `mount k8s-strict, role (any role without audience): new bound tokens are rejected (403 invalid issuer (iss) claim) with issuer validation on with issuer=${KIND}`,
    ]);
    expect(d.findings.map((f) => f.message)).toContain(
      `issuer changed from ${KIND} to ${EKS}: a Vault config with issuer=${KIND} and validation on rejects every new token (403 invalid issuer (iss) claim)`,
    );
    const md = formatDiff(d, "markdown");
    expect(md).toMatch(/^## Profile diff: BREAKS/);
    expect(md).toContain(
      `| issuer validation on with issuer=${KIND} | accepted | 403 invalid issuer (iss) claim | 403 invalid issuer (iss) claim |`,
    );
  });

  it("a role pinned to the old default audience breaks when the audience follows the new issuer", () => {
    const m = mount({}, [
      {
        name: "app",
        audience: KIND,
        bound_service_account_names: ["app"],
        bound_service_account_namespaces: ["a"],
        alias_name_source: "serviceaccount_uid",
      },
    ]);
    const d = diffProfiles(profile({ mounts: [m] }), profile({ iss: EKS }));
    expect(d.findings.filter((f) => f.severity === "break").map((f) => f.message)).toEqual([
      `mount kubernetes, role app: new bound tokens are rejected (403 invalid audience (aud) claim) with issuer validation off and audience=${KIND}`,
    ]);
    // The same issuer change with --api-audiences kept: nothing breaks.
    expect(diffExitCode(diffProfiles(profile({ mounts: [m] }), profile({ iss: EKS, aud: [KIND] })))).toBe(0);
  });

  it("a new CA or signing key breaks configs that pin them, on real clusters; local runs only note it", () => {
    const m = mount({ pemKeyIds: ["kid-1"] });
    const d = diffProfiles(profile({ mounts: [m] }), profile({ ca: "ca2", kid: "kid-2" }));
    expect(d.findings.filter((f) => f.severity === "break").map((f) => f.message.split(":")[1]!.trim())).toEqual([
      "kubernetes_ca_cert does not hold the API server's CA any more",
      "pem_keys do not hold the key new tokens are signed with (kid kid-2)",
    ]);
    const local = diffProfiles(profile({ mounts: [m], target: "local" }), profile({ ca: "ca2", kid: "kid-2", target: "local" }));
    expect(diffExitCode(local)).toBe(0);
    expect(local.findings.every((f) => f.severity !== "break")).toBe(true);
  });

  it("token lifetimes and token Secrets: warnings, not breaks", () => {
    const before = profile({ mounts: [mount()] });
    before.kubernetes.tokenSecretsAutoCreated = true;
    const after = profile({ version: "v1.24.0" });
    after.kubernetes.podBoundToken = token({ life: 3600, warnafter: null });
    after.kubernetes.longRequest = { requestedSeconds: 172800, grantedSeconds: 3600 };
    const d = diffProfiles(before, after);
    expect(diffExitCode(d)).toBe(0);
    const warns = d.findings.filter((f) => f.severity === "warn").map((f) => f.message);
    expect(warns).toEqual([
      "pod tokens (requested for 3607 s) now live 1 h, were 8760 h: no longer extended, so a reviewer JWT copied from a pod stops working within the hour",
      "a 48 h TokenRequest is now granted 1 h, was 48 h (--service-account-max-token-expiration): a TokenRequest reviewer JWT must be renewed sooner",
      "new ServiceAccounts no longer get a token Secret (Kubernetes 1.24+): a reviewer JWT read from `.secrets[0]` finds nothing; create a kubernetes.io/service-account-token Secret",
    ]);
    expect(d.findings).toContainEqual({ severity: "info", message: "Kubernetes v1.35.8 -> v1.24.0" });
  });

  it("no recorded Vault config: nothing to judge, exit 2", () => {
    const d = diffProfiles(profile(), profile({ iss: EKS }));
    expect(d.verdict).toBe("nothing-to-judge");
    expect(diffExitCode(d)).toBe(2);
  });

  it("cases that passed before and fail after break the gate", () => {
    const before = profile({ mounts: [mount()] });
    const after = profile();
    before.cases = { totals: { passed: 1, failed: 0, skipped: 0 }, results: [{ id: "a::x", status: "passed" }] };
    after.cases = { totals: { passed: 0, failed: 1, skipped: 0 }, results: [{ id: "a::x", status: "failed" }] };
    expect(diffProfiles(before, after).findings).toContainEqual({ severity: "break", message: "case now fails: a::x" });
  });

  it("rejects what is not a profile with one line", () => {
    expect(() => parseProfile("{", "a.json")).toThrow(UsageError);
    expect(() => parseProfile(JSON.stringify({ cases: [] }), "b.json")).toThrow(/b\.json is not a profile written by npm run profile/);
    expect(parseProfile(JSON.stringify(profile()), "c.json").schema).toBe(PROFILE_SCHEMA);
  });
});

describe("token facts and key ids", () => {
  it("decodes claims and lifetimes, never keeping the token", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const kid = kubernetesKeyId(publicKey.export({ type: "spki", format: "pem" }).toString());
    expect(kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(pemKeyIds([publicKey.export({ type: "spki", format: "pem" }).toString(), "junk"])).toEqual([kid, "unparsable"]);
    const jwt = await new SignJWT({ "kubernetes.io": { namespace: "a", serviceaccount: { name: "s", uid: "u" }, warnafter: 1000 + 3607 } })
      .setProtectedHeader({ alg: "RS256", kid })
      .setIssuer(KIND)
      .setAudience([KIND])
      .setIssuedAt(1000)
      .setExpirationTime(1000 + 31536000)
      .sign(privateKey);
    const f = tokenFacts(jwt, 3607);
    expect(f).toEqual({
      kid,
      alg: "RS256",
      iss: KIND,
      aud: [KIND],
      requestedSeconds: 3607,
      lifetimeSeconds: 31536000,
      warnAfterSeconds: 3607,
      kubernetesClaims: ["namespace", "serviceaccount", "warnafter"],
    });
    expect(JSON.stringify(f)).not.toContain(jwt.split(".")[1]);
  });
});

describe("personas", () => {
  it("the shipped personas load, each with a distinct setup", () => {
    const names = listPersonas(join(PACKAGE_ROOT, "fixtures"));
    expect(names).toEqual(
      expect.arrayContaining([
        "kind-default",
        "eks-like",
        "gke-like",
        "api-endpoint-issuer",
        "issuer-migration",
        "short-lived-tokens",
        "extended-expiration",
      ]),
    );
    const setups = names.map((n) => JSON.stringify(loadPersona(join(PACKAGE_ROOT, "fixtures"), n)).replace(/"name":"[^"]+",/, ""));
    expect(new Set(setups).size).toBe(names.length);
    const mig = loadPersona(join(PACKAGE_ROOT, "fixtures"), "issuer-migration");
    expect(mig.issuers).toHaveLength(2);
    expect(mig.issuers).toContain(mig.previousIssuer);
  });
  it("rejects unknown keys, empty issuers and flags the target owns", () => {
    expect(() => parsePersona("x", { issuers: [KIND], color: "red" }, "x.json")).toThrow(/unknown key "color"/);
    expect(() => parsePersona("x", { issuers: [] }, "x.json")).toThrow(/"issuers" must be a non-empty list/);
    expect(() => parsePersona("x", { issuers: [KIND], apiserverArgs: ["--secure-port=1"] }, "x.json")).toThrow(
      /is set by the local target/,
    );
    expect(() => parsePersona("x", { issuers: [KIND], apiserverArgs: ["-v"] }, "x.json")).toThrow(/must look like --name=value/);
    expect(() => loadPersona(join(PACKAGE_ROOT, "fixtures"), "../etc")).toThrow(/lower-case words/);
    expect(parsePersona("x", { issuers: [KIND] }, "x.json")).toEqual({
      name: "x",
      description: "",
      issuers: [KIND],
      apiAudiences: [],
      apiserverArgs: [],
    });
  });
});

describe("matrix table", () => {
  it("reads the issuer-matrix suite's cells where the suite writes them: <reports>/artifacts/<run>/issuer-matrix.json", () => {
    expect(issuerMatrixPath("/r/matrix/p", "run1")).toBe(join("/r/matrix/p", "artifacts", "run1", "issuer-matrix.json"));
  });
  const cells: PersonaCells = {
    persona: "p",
    flavor: "vault",
    versions: {},
    issuers: [EKS],
    discovered: EKS,
    cells: [
      { mode: "off", token: "bound", iss: EKS, status: 200, predicted: { status: 200 } },
      { mode: "off", token: "legacy", iss: LEGACY_ISSUER, status: 200, predicted: { status: 200 } },
      { mode: "legacy", token: "bound", iss: EKS, status: 403, error: "invalid issuer (iss) claim", predicted: { status: 403 } },
    ],
  };
  it("cells show each token's outcome; a disagreement with the prediction is marked and makes the table inconsistent", () => {
    expect(cellText(cells, "off")).toBe("bound ✓, legacy ✓");
    expect(cellText(cells, "legacy")).toBe("bound ✗403");
    expect(cellText(null, "off")).toBe("no result");
    const ok = buildMatrix("vault", [
      { persona: "p", description: "", totals: { passed: 5, failed: 0, skipped: 0 }, durationMs: 1000, matrix: cells },
    ]);
    expect(ok.consistent).toBe(true);
    expect(formatMatrixMarkdown(ok)).toContain(`| p | ${EKS} | bound ✓, legacy ✓ |`);
    const wrong = structuredClone(cells);
    wrong.cells[0]!.status = 403;
    const bad = buildMatrix("vault", [
      { persona: "p", description: "", totals: { passed: 5, failed: 0, skipped: 0 }, durationMs: 1, matrix: wrong },
    ]);
    expect(bad.consistent).toBe(false);
    expect(cellText(wrong, "off")).toBe("bound ✗403 (!), legacy ✓");
    expect(formatMatrixMarkdown(bad)).toContain("**Not consistent**");
    expect(
      buildMatrix("vault", [{ persona: "p", description: "", totals: null, durationMs: 1, matrix: null, problem: "x" }]).consistent,
    ).toBe(false);
  });
});
