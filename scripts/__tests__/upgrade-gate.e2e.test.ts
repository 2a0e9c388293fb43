import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { MatrixReport } from "../../lib/gate/matrix.ts";
import type { Profile } from "../../lib/gate/types.ts";
import { liveProcesses, script } from "./helpers.ts";

// The upgrade gate on real targets: profiles of two personas, their diff, and a small matrix.
describe("upgrade gating: profile, profile:diff, matrix", () => {
  const dir = mkdtempSync(join(tmpdir(), "vkc-gate-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const run = async (name: string, args: string[], env: Record<string, string> = {}) => {
    const r = script(name, args, { VKC_REPORTS_DIR: join(dir, "reports"), ...env });
    const code = await r.exited;
    return { code, out: r.output() };
  };
  const profiles: Record<string, string> = {};
  const profile = async (persona: string) => {
    const out = join(dir, `${persona}.json`);
    const r = await run("profile.ts", ["--persona", persona, "--out", out]);
    expect(r.code, r.out).toBe(0);
    profiles[persona] = out;
    return JSON.parse(readFileSync(out, "utf8")) as Profile;
  };

  it("profiles record what the cluster hands out, never a token, key or certificate", async () => {
    const kind = await profile("kind-default");
    const eks = await profile("eks-like");
    expect(kind.persona).toBe("kind-default");
    expect(kind.kubernetes.issuer).toMatchObject({
      discovery: "https://kubernetes.default.svc.cluster.local",
      boundToken: "https://kubernetes.default.svc.cluster.local",
      legacyToken: "kubernetes/serviceaccount",
    });
    expect(eks.kubernetes.issuer.boundToken).toMatch(/^https:\/\/oidc\.eks\.[a-z0-9-]+\.amazonaws\.com\/id\//);
    expect(eks.kubernetes.defaultAudiences).toEqual([eks.kubernetes.issuer.boundToken]);
    expect(kind.kubernetes.jwks?.map((k) => k.kid)).toContain(kind.kubernetes.boundToken.kid);
    expect(kind.kubernetes.tokenSecretsAutoCreated).toBe(false); // 1.24+
    expect(kind.kubernetes.podBoundToken).toMatchObject({
      requestedSeconds: 3607,
      lifetimeSeconds: 365 * 24 * 3600,
      warnAfterSeconds: 3607,
    });
    expect(kind.vault.mounts).toHaveLength(1);
    expect(kind.vault.mounts[0]!.config).toMatchObject({
      issuer: "https://kubernetes.default.svc.cluster.local",
      disable_iss_validation: false,
      token_reviewer_jwt_set: true,
    });
    expect(kind.vault.mounts[0]!.roles[0]).toMatchObject({ name: "probe", bound_service_account_names: ["probe"] });
    for (const p of Object.values(profiles)) {
      const text = readFileSync(p, "utf8");
      expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./); // a JWT
      expect(text).not.toMatch(/-----BEGIN/); // a key or certificate
      expect(text).not.toMatch(/vkc-root-/); // the root token
    }
    // Nothing of either run is left running.
    expect(liveProcesses(kind.runId)).toEqual([]);
    expect(liveProcesses(eks.runId)).toEqual([]);
  });

  it("diffing two personas that differ in issuer names the change and the config it breaks, and exits 1", async () => {
    const md = join(dir, "diff.md");
    const r = await run("profile-diff.ts", [profiles["kind-default"]!, profiles["eks-like"]!, "--markdown", md]);
    expect(r.code, r.out).toBe(1);
    expect(r.out).toMatch(/^BREAKS: /m);
    expect(r.out).toContain(
      "issuer changed from https://kubernetes.default.svc.cluster.local to https://oidc.eks.eu-west-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF: " +
        "a Vault config with issuer=https://kubernetes.default.svc.cluster.local and validation on rejects every new token",
    );
    expect(r.out).toMatch(
      /^BREAK mount vkc-profile-\w+, role probe: new bound tokens are rejected \(403 invalid issuer \(iss\) claim\) with issuer validation on with issuer=https:\/\/kubernetes\.default\.svc\.cluster\.local$/m,
    );
    expect(readFileSync(md, "utf8")).toMatch(/^## Profile diff: BREAKS/m);
  });

  it("diffing a profile with itself exits 0", async () => {
    const r = await run("profile-diff.ts", [profiles["eks-like"]!, profiles["eks-like"]!]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/^OK: no change breaks the recorded Vault config/m);
  });

  it("short-lived tokens: the lifetimes are measured and the diff warns without breaking the issuer config", async () => {
    const short = await profile("short-lived-tokens");
    // Not extended, and capped by --service-account-max-token-expiration=1h.
    expect(short.kubernetes.podBoundToken).toMatchObject({ lifetimeSeconds: 3600, warnAfterSeconds: null });
    expect(short.kubernetes.longRequest).toEqual({ requestedSeconds: 48 * 3600, grantedSeconds: 3600 });
    const r = await run("profile-diff.ts", [profiles["kind-default"]!, profiles["short-lived-tokens"]!]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/^WARN {2}pod tokens \(requested for 3607 s\) now live 1 h, were 8760 h: no longer extended/m);
    expect(r.out).toMatch(/^WARN {2}a 48 h TokenRequest is now granted 1 h, was 48 h/m);
  });

  it("bad input is one line and exit 2", async () => {
    writeFileSync(join(dir, "not-a-profile.json"), JSON.stringify({ cases: [] }));
    const cases: [string, string[], RegExp][] = [
      ["profile.ts", [], /^error: profile needs --out FILE$/m],
      ["profile.ts", ["--out", join(dir, "x.json"), "--persona", "nope"], /^error: no persona "nope" \(have: .*kind-default.*\)$/m],
      ["profile.ts", ["--out", join(dir, "x.json"), "--vault-issuer", "sometimes"], /^error: --vault-issuer must be one of/m],
      ["profile-diff.ts", [profiles["kind-default"]!], /^error: profile:diff needs two profiles: BEFORE AFTER$/m],
      ["profile-diff.ts", [profiles["kind-default"]!, join(dir, "not-a-profile.json")], /is not a profile written by npm run profile/],
      ["profile-diff.ts", [profiles["kind-default"]!, join(dir, "missing.json")], /^error: cannot read profile .*missing\.json: ENOENT$/m],
      ["matrix.ts", ["--personas", "kind-default,nope"], /^error: no persona "nope"/m],
      ["matrix.ts", ["--target", "existing"], /^error: the matrix runs on the local target/m],
    ];
    for (const [name, args, want] of cases) {
      const r = await run(name, args);
      expect(r.code, `${name} ${args.join(" ")}: ${r.out}`).toBe(2);
      expect(r.out, `${name} ${args.join(" ")}`).toMatch(want);
      expect(r.out).not.toMatch(/^\s+at /m); // no stack trace
    }
  });

  it("the matrix (two personas) agrees with the suites: every cell as predicted, every suite passed", async () => {
    const reports = join(dir, "matrix-reports");
    const r = await run("matrix.ts", ["--personas", "kind-default,issuer-migration", "--reports", reports]);
    expect(r.code, r.out).toBe(0);
    const m = JSON.parse(readFileSync(join(reports, "matrix.json"), "utf8")) as MatrixReport;
    expect(m.consistent).toBe(true);
    expect(m.runs.map((x) => x.persona)).toEqual(["kind-default", "issuer-migration"]);
    for (const x of m.runs) {
      expect(x.totals?.failed).toBe(0);
      expect(x.totals?.passed).toBeGreaterThan(20);
    }
    const mig = m.runs[1]!.matrix!;
    const cell = (mode: string, token: string) => mig.cells.find((c) => c.mode === mode && c.token === token)?.status;
    // Mid-migration no single issuer value accepts both new and old tokens; only validation off does.
    expect([cell("off", "bound"), cell("off", "pre-migration"), cell("off", "legacy")]).toEqual([200, 200, 200]);
    expect([cell("discovered", "bound"), cell("discovered", "pre-migration")]).toEqual([200, 403]);
    expect([cell("pre-upgrade", "bound"), cell("pre-upgrade", "pre-migration")]).toEqual([403, 200]);
    expect(readFileSync(join(reports, "matrix.md"), "utf8")).toContain("| issuer-migration | https://oidc.example.com/clusters/blue |");
  });
});
