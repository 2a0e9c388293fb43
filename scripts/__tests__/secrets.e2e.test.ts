import { generateKeyPairSync, randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunResults } from "../../lib/report/reporter.ts";
import { fixturesWithCase, script } from "./helpers.ts";

// The whole flow, with failures on purpose (they are what put error bodies, diagnostics bundles
// and JUnit failure text on disk), then every artifact is scanned for the secrets of the run.

// Secrets as they look: the run's root token (the harness names it vkc-root-...), any JWT
// (reviewer, minted ServiceAccount tokens, projected tokens), Vault client tokens (hvs./hvb.,
// OpenBao's s./b.) and PEM private keys.
const SECRETS: [string, RegExp][] = [
  ["root token", /vkc-root-[A-Za-z0-9_-]{8,}/],
  ["JWT", /eyJ[A-Za-z0-9_-]{6,}\.eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*/],
  ["Vault token", /\b(?:hv[sbr]|s|b)\.[A-Za-z0-9_-]{20,}/],
  ["private key", /-----BEGIN [A-Z ]*PRIVATE KEY-----/],
];

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

function leaks(text: string): string[] {
  return SECRETS.filter(([, re]) => re.test(text)).map(([what]) => what);
}

describe("secrets never reach an artifact", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "vkc-secrets-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("a full --debug run with failing cases: output, logs, JUnit, results, summary and diagnostics hold no token, JWT or key", async () => {
    // Your fixtures plus a case that fails twice: a login that succeeds where a 403 was expected
    // (Vault answered with a client token) and a read that returns data other than expected.
    const fixtures = fixturesWithCase(dir, "zz-fails-on-purpose.yaml", [
      "name: fails on purpose",
      "mounts: { secret: { type: kv, version: 1 } }",
      "seed: [{ path: secret/demo/foo, body: { value: bar } }]",
      "policies: { demo-policy: demo-policy.hcl }",
      "serviceAccounts: [default]",
      'roles: { demo-role: { bound_service_account_names: [default], bound_service_account_namespaces: ["${namespace}"], token_policies: [demo-policy] } }',
      "logins:",
      "  - { role: demo-role, serviceAccount: default, expect: { status: 200 } }",
      "  - { role: demo-role, serviceAccount: default, expect: { status: 403, error: permission denied } }",
      "requests: [{ as: demo-role, method: GET, path: secret/demo/foo, expect: { status: 200, data: { value: other } } }]",
    ]);
    const reports = join(dir, "reports");
    const run = script("conformance.ts", ["--reports", reports, "--fixtures", fixtures, "--debug"]);
    expect(await run.exited).toBe(1);

    // The failures happened, so there was something to leak.
    const results = JSON.parse(readFileSync(join(reports, "results.json"), "utf8")) as RunResults;
    const failed = results.cases.filter((c) => c.status === "failed").map((c) => c.name);
    expect(failed).toEqual(["login default as role demo-role -> 403", "GET secret/demo/foo as demo-role -> 200"]);
    expect(results.totals.passed).toBeGreaterThanOrEqual(80);
    const artifacts = join(reports, "artifacts", results.runId!);
    const diagnostics = readdirSync(join(artifacts, "diagnostics"));
    expect(diagnostics.length).toBeGreaterThanOrEqual(1);
    expect(readFileSync(join(reports, "junit.xml"), "utf8")).toContain("<failure");
    // The dev server prints its root token at start: the log has the line, redacted.
    const vaultLog = readFileSync(join(artifacts, "logs", `${results.flavor === "openbao" ? "openbao" : "vault"}.log`), "utf8");
    expect(vaultLog).toMatch(/Root Token: \[REDACTED\]/);

    const scanned: string[] = [];
    const found: string[] = [];
    for (const [name, text] of [
      ["output", run.output()],
      ...filesUnder(reports).map((f) => [relative(reports, f), readFileSync(f, "utf8")] as const),
    ] as const) {
      scanned.push(name);
      for (const what of leaks(text)) found.push(`${what} in ${name}`);
    }
    expect(scanned).toEqual(
      expect.arrayContaining(["output", "junit.xml", "results.json", "summary.md", expect.stringMatching(/^artifacts\/.*\/diagnostics\//)]),
    );
    expect(scanned.filter((n) => n.includes("/logs/")).length).toBeGreaterThanOrEqual(4);
    expect(found).toEqual([]);
  });

  it("the scan finds what it looks for (a token, JWT and key minted here are reported)", async () => {
    const root = `vkc-root-${randomBytes(18).toString("base64url")}`;
    const jwt = await new SignJWT({ sub: "system:serviceaccount:x:y" }).setProtectedHeader({ alg: "HS256" }).sign(randomBytes(32));
    const vaultToken = `hvs.${randomBytes(24).toString("base64url")}`;
    const key = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    expect(leaks(`x ${root} x`)).toEqual(["root token"]);
    expect(leaks(`Authorization: Bearer ${jwt}`)).toEqual(["JWT"]);
    expect(leaks(`token ${vaultToken}`)).toEqual(["Vault token"]);
    expect(leaks(key)).toEqual(["private key"]);
    expect(leaks("[REDACTED] [REDACTED-JWT] [REDACTED-TOKEN]")).toEqual([]);
  });
});
