import { describe, expect, it } from "vitest";
import { diffProfiles } from "../diff.ts";
import { claimRulesFor, LEGACY_ISSUER, predictLogin } from "../predict.ts";
import { PROFILE_SCHEMA, type Profile } from "../types.ts";

// The plugin's claim checks changed twice (BEHAVIOR.md, issuer history): before 0.13 (Vault <= 1.10)
// an empty issuer was enforced as kubernetes/serviceaccount with `claim "iss" is invalid` (500);
// 0.13-0.14 (Vault 1.11-1.12) answered a wrong issuer with 500; 403 since 0.15 (Vault 1.13).
const KIND = "https://kubernetes.default.svc.cluster.local";
const bound = { iss: KIND, aud: [KIND] };
const legacy = { iss: LEGACY_ISSUER, aud: [] };
const on = (issuer: string) => ({ disable_iss_validation: false, issuer });

describe("prediction rules by Vault version", () => {
  it("maps Vault versions to the plugin generation they bundle; OpenBao and unknown versions get the current rules", () => {
    expect(claimRulesFor({ flavor: "vault", version: "1.9.10" })).toBe("jose");
    expect(claimRulesFor({ flavor: "vault", version: "v1.10.3" })).toBe("jose");
    expect(claimRulesFor({ flavor: "vault", version: "1.11.0" })).toBe("cap-500");
    expect(claimRulesFor({ flavor: "vault", version: "1.12.7+ent" })).toBe("cap-500");
    expect(claimRulesFor({ flavor: "vault", version: "1.13.0" })).toBe("cap-403");
    expect(claimRulesFor({ flavor: "vault", version: "1.21.1" })).toBe("cap-403");
    expect(claimRulesFor({ flavor: "openbao", version: "2.7.2" })).toBe("cap-403");
    expect(claimRulesFor({ flavor: "vault", version: "unknown" })).toBe("cap-403");
    expect(claimRulesFor(undefined)).toBe("cap-403");
  });

  it('Vault <= 1.10: validation on with an empty issuer enforces kubernetes/serviceaccount (500 claim "iss" is invalid)', () => {
    const v110 = { flavor: "vault", version: "1.10.3" };
    expect(predictLogin(on(""), {}, bound, v110)).toEqual({ ok: false, status: 500, error: 'claim "iss" is invalid' });
    expect(predictLogin(on(""), {}, legacy, v110)).toEqual({ ok: true, status: 200 });
    expect(predictLogin(on("https://other"), {}, bound, v110)).toEqual({ ok: false, status: 500, error: 'claim "iss" is invalid' });
    expect(predictLogin(on(""), { audience: "vault" }, legacy, v110)).toEqual({ ok: false, status: 500, error: 'claim "aud" is invalid' });
    // The same settings on a current Vault: the empty issuer is not checked.
    expect(predictLogin(on(""), {}, bound, { flavor: "vault", version: "1.21.1" })).toEqual({ ok: true, status: 200 });
  });

  it("Vault 1.11-1.12: an empty issuer is not checked, a wrong one is a 500; 1.13+ and OpenBao: 403", () => {
    expect(predictLogin(on(""), {}, bound, { flavor: "vault", version: "1.12.0" })).toEqual({ ok: true, status: 200 });
    expect(predictLogin(on("https://other"), {}, bound, { flavor: "vault", version: "1.12.0" })).toEqual({
      ok: false,
      status: 500,
      error: "invalid issuer (iss) claim",
    });
    expect(predictLogin(on("https://other"), {}, bound, { flavor: "vault", version: "1.13.0" }).status).toBe(403);
    expect(predictLogin(on("https://other"), {}, bound, { flavor: "openbao", version: "2.7.2" }).status).toBe(403);
    expect(predictLogin(on("https://other"), {}, bound)).toEqual({ ok: false, status: 403, error: "invalid issuer (iss) claim" });
  });
});

function profile(vaultVersion: string, issuer: string): Profile {
  return {
    schema: PROFILE_SCHEMA,
    createdAt: "2026-11-23T00:00:00Z",
    runId: "r",
    target: "existing",
    kubernetes: {
      version: "v1.20.15",
      server: "https://api.example:6443",
      hostForVault: "https://api.example:6443",
      caFingerprints: ["ca1"],
      issuer: { discovery: issuer, jwksUri: null, boundToken: issuer, legacyToken: LEGACY_ISSUER, configured: [] },
      jwks: [{ kid: "kid-1", alg: "RS256", kty: "RSA" }],
      defaultAudiences: [issuer],
      boundToken: {
        kid: "kid-1",
        alg: "RS256",
        iss: issuer,
        aud: [issuer],
        requestedSeconds: 3600,
        lifetimeSeconds: 3600,
        warnAfterSeconds: null,
        kubernetesClaims: ["namespace", "serviceaccount"],
      },
      podBoundToken: {
        kid: "kid-1",
        alg: "RS256",
        iss: issuer,
        aud: [issuer],
        requestedSeconds: 3607,
        lifetimeSeconds: 3607,
        warnAfterSeconds: null,
        kubernetesClaims: ["namespace", "pod", "serviceaccount"],
      },
      longRequest: { requestedSeconds: 172800, grantedSeconds: 172800 },
      tokenSecretsAutoCreated: true,
      anonymousDiscoveryStatus: 403,
    },
    vault: {
      flavor: "vault",
      version: vaultVersion,
      mounts: [
        {
          path: "kubernetes",
          source: "read",
          config: {
            kubernetes_host: "https://api.example:6443",
            issuer: "",
            disable_iss_validation: false,
            disable_local_ca_jwt: true,
            token_reviewer_jwt_set: true,
            caFingerprints: ["ca1"],
            pemKeyIds: [],
          },
          roles: [],
        },
      ],
    },
  } as unknown as Profile;
}

describe("profile:diff judges a recorded config by the Vault it was recorded on", () => {
  it("Vault 1.10, validation on without issuer: the move to bound tokens (iss != kubernetes/serviceaccount) breaks; on Vault 1.21 it does not", () => {
    const before = profile("1.10.3", LEGACY_ISSUER);
    const after = profile("1.10.3", KIND);
    const d = diffProfiles(before, after);
    expect(d.verdict).toBe("breaks");
    expect(d.findings.some((f) => f.severity === "break" && f.message.includes("mount kubernetes"))).toBe(true);
    const row = d.settings.find((r) => r.settings === "issuer validation on, no issuer set");
    expect(row?.boundAfter).toEqual({ ok: false, status: 500, error: 'claim "iss" is invalid' });
    const modern = diffProfiles(profile("1.21.1", LEGACY_ISSUER), profile("1.21.1", KIND));
    expect(modern.verdict).toBe("ok");
  });
});
