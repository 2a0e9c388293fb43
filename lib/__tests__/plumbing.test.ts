import { X509Certificate, createPublicKey } from "node:crypto";
import { describe, expect, it } from "vitest";
import { COMMON_FLAGS, parseArgs } from "../cli.ts";
import { childEnv, DEFAULT_ISSUER, loadConfig, withVitestEnv } from "../config.ts";
import { UsageError, describeError, HarnessError } from "../errors.ts";
import { adminKubeconfig } from "../kube/kubeconfig.ts";
import { generatePki } from "../providers/pki.ts";
import { redact, redactValue, registerSecret } from "../redact.ts";
import { summaryMarkdown } from "../report/reporter.ts";
import { rebasePolicy, authConfigFor } from "../auth-setup/steps.ts";
import { describeResponse } from "../vault/client.ts";
import { waitFor } from "../wait.ts";

describe("config", () => {
  it("defaults to the local target, the vault flavor and kind's issuer", () => {
    const c = loadConfig({ HOME: "/home/u" }, "/work");
    expect(c).toMatchObject({
      target: "local",
      flavor: "vault",
      issuer: DEFAULT_ISSUER,
      reportsDir: "/work/reports",
      cacheDir: "/home/u/.cache/vault-k8s-conformance",
      offline: false,
    });
  });
  it("reads envtest's variables and resolves relative paths against the working directory", () => {
    const c = loadConfig(
      { HOME: "/h", KUBEBUILDER_ASSETS: "assets", TEST_ASSET_ETCD: "/bin/etcd", VAULT_BIN: "v/vault", VKC_OFFLINE: "1" },
      "/w",
    );
    expect(c.overrides).toEqual({ assetsDir: "/w/assets", etcd: "/bin/etcd", vault: "/w/v/vault" });
    expect(c.offline).toBe(true);
  });
  it("honours XDG_CACHE_HOME", () => {
    expect(loadConfig({ HOME: "/h", XDG_CACHE_HOME: "/x" }, "/").cacheDir).toBe("/x/vault-k8s-conformance");
  });
  it.each([
    [{ VKC_TARGET: "minikube" }, "target (VKC_TARGET / --target) must be one of local, kind, existing"],
    [{ VKC_FLAVOR: "consul" }, "flavor (VKC_FLAVOR / --flavor) must be one of vault, openbao"],
  ])("refuses %j with a UsageError naming the choices", (env, msg) => {
    expect(() => loadConfig(env, "/")).toThrowError(UsageError);
    expect(() => loadConfig(env, "/")).toThrowError(msg);
  });
});

describe("child environment", () => {
  const config = loadConfig({ HOME: "/h", PATH: "/bin", VAULT_ADDR: "https://v", KIND_BIN: "/k/kind", VKC_FLAVOR: "openbao" }, "/");
  it("keeps every input of the config in Config, and the environment it came from for children", () => {
    expect(config).toMatchObject({ flavor: "openbao", kindBin: "/k/kind", containerEngine: "docker", home: "/h" });
    expect(loadConfig({ KIND_EXPERIMENTAL_PROVIDER: "podman" }, "/").containerEngine).toBe("podman");
  });
  it("inherits the config's environment (flags included), with extra variables; undefined removes one", () => {
    expect(childEnv(config, { VKC_TARGET_INFO: "/t.json", VAULT_ADDR: undefined })).toEqual({
      HOME: "/h",
      PATH: "/bin",
      KIND_BIN: "/k/kind",
      VKC_FLAVOR: "openbao",
      VKC_TARGET_INFO: "/t.json",
    });
  });
  it("clean: PATH and the extra variables only (nothing of the user's leaks into a target's processes)", () => {
    expect(childEnv(config, { HOME: "/work" }, { clean: true })).toEqual({ PATH: "/bin", HOME: "/work" });
  });
  it("withVitestEnv sets the process environment for the run and restores it afterwards", async () => {
    const before = { ...process.env };
    const seen = await withVitestEnv({ ...before, VKC_TEST_ONLY: "1", HOME: undefined }, async () => ({ ...process.env }));
    expect(seen.VKC_TEST_ONLY).toBe("1");
    expect(seen.HOME).toBeUndefined();
    expect({ ...process.env }).toEqual(before);
  });
});

describe("flags", () => {
  it("maps flags to the config's environment variables", () => {
    const env: Record<string, string | undefined> = {};
    const p = parseArgs(["--flavor", "openbao", "--offline", "--reports=out", "login"], COMMON_FLAGS, env);
    expect(env).toEqual({ VKC_FLAVOR: "openbao", VKC_OFFLINE: "1", VKC_REPORTS_DIR: "out" });
    expect(p.positionals).toEqual(["login"]);
  });
  it.each([
    [["--bogus"], "unknown flag --bogus (see --help)"],
    [["--flavor"], "--flavor needs a value (vault|openbao)"],
    [["--flavor", "--offline"], "--flavor needs a value"],
    [["--offline=yes"], "--offline takes no value"],
  ])("refuses %j with one clear line", (argv, msg) => {
    expect(() => parseArgs(argv, COMMON_FLAGS, {})).toThrowError(msg);
  });
});

describe("redaction", () => {
  it("removes registered secrets, JWT-shaped strings, Vault tokens, unseal keys and private keys", () => {
    const secret = registerSecret("my-root-token-value-123");
    const jwt = ["eyJhbGciOiJSUzI1NiJ9", "eyJpc3MiOiJ4In0abc", "c2lnbmF0dXJl"].join(".");
    const text = `root=${secret} jwt=${jwt} t=hvs.${"A".repeat(24)} Unseal Key: abc+def= -----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----`;
    const out = redact(text);
    expect(out).not.toContain(secret);
    expect(out).not.toContain(jwt);
    expect(out).not.toContain("hvs.AAAA");
    expect(out).not.toContain("abc+def=");
    expect(out).not.toContain("MIIE");
    expect(redactValue({ a: [secret] })).toEqual({ a: ["[REDACTED]"] });
  });
  it("describes a login response without its client token", () => {
    const token = registerSecret(`s.${"x".repeat(24)}`);
    const d = describeResponse({ status: 200, body: { auth: { client_token: token } } });
    expect(d).toBe("HTTP 200");
    expect(describeResponse({ status: 403, body: { errors: ["permission denied"] } })).toBe('HTTP 403 errors=["permission denied"]');
  });
});

describe("errors and waits", () => {
  it("describes an error with its causes on one line", () => {
    const e = new HarnessError("configure kubernetes auth", { cause: new Error("HTTP 400: no host provided") });
    expect(describeError(e)).toBe("configure kubernetes auth: HTTP 400: no host provided");
  });
  it("a wait that times out says what it waited for, how long, the last error and the evidence", async () => {
    const err = await waitFor(
      async () => {
        throw new Error("connection refused");
      },
      { what: "thing is ready", timeoutMs: 120, intervalMs: 20, evidence: () => "log tail" },
    ).catch((e) => e);
    expect(err).toBeInstanceOf(HarnessError);
    expect(err.message).toBe("thing is ready: not ready after 120ms (last error: connection refused)");
    expect(err.details).toBe("log tail");
  });
  it("a wait stops early when its failFast says the process died", async () => {
    const err = await waitFor(async () => false, {
      what: "x",
      timeoutMs: 10_000,
      failFast: () => new HarnessError("etcd exited with code 1"),
    }).catch((e) => e);
    expect(err.message).toBe("etcd exited with code 1");
  });
});

describe("PKI", () => {
  it("issues a CA, a serving cert for 127.0.0.1 and localhost signed by it, a system:masters client cert and an RSA SA key", async () => {
    const pki = await generatePki({ ipAddresses: ["127.0.0.1"], dnsNames: ["localhost"] });
    const ca = new X509Certificate(pki.caCert);
    const serving = new X509Certificate(pki.servingCert);
    const admin = new X509Certificate(pki.adminCert);
    expect(ca.ca).toBe(true);
    expect(serving.verify(ca.publicKey)).toBe(true);
    expect(serving.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(serving.checkHost("localhost")).toBe("localhost");
    expect(admin.verify(ca.publicKey)).toBe(true);
    expect(admin.subject).toContain("O=system:masters");
    expect(createPublicKey(pki.saPublicKey).asymmetricKeyType).toBe("rsa");
  });
});

describe("setup data", () => {
  it("moves a guide's policy paths onto this run's mounts and leaves other paths alone", () => {
    const hcl = 'path "secret/demo/*" { capabilities = ["read"] }\npath "my-app/*" {}\npath "sys/mounts" {}';
    expect(rebasePolicy(hcl, { secret: "kv-1", "my-app": "app-2" })).toBe(
      'path "kv-1/demo/*" { capabilities = ["read"] }\npath "app-2/*" {}\npath "sys/mounts" {}',
    );
  });
  it("writes a config for Vault outside the cluster: host, CA, reviewer JWT, no local CA/JWT fallback", () => {
    const info = { kube: { hostForVault: "https://127.0.0.1:6443", caCertForVault: "PEM" } } as never;
    expect(authConfigFor(info, "jwt", { issuer: "x" })).toEqual({
      kubernetes_host: "https://127.0.0.1:6443",
      kubernetes_ca_cert: "PEM",
      token_reviewer_jwt: "jwt",
      disable_local_ca_jwt: true,
      issuer: "x",
    });
    expect(authConfigFor(info, undefined)).not.toHaveProperty("token_reviewer_jwt");
  });
  it("builds a kubeconfig with one cluster, user and context", () => {
    const kc = JSON.parse(adminKubeconfig({ name: "r", server: "https://s", caCert: "CA", token: "t" }));
    expect(kc["current-context"]).toBe("r");
    expect(kc.clusters[0].cluster).toEqual({ server: "https://s", "certificate-authority-data": Buffer.from("CA").toString("base64") });
    expect(kc.users[0].user).toEqual({ token: "t" });
  });
});

describe("summary", () => {
  it("says FAIL and lists failed cases; PASS only when cases ran and none failed", () => {
    const base = {
      startedAt: "",
      durationMs: 1000,
      unhandledErrors: [],
      target: "local",
      flavor: "vault",
      versions: { vault: "1.21.1" },
      runId: "r",
    };
    const failed = summaryMarkdown({
      ...base,
      totals: { passed: 1, failed: 1, skipped: 0 },
      cases: [{ id: "a.ts::x", project: "conformance", suite: "s", name: "x", status: "failed", durationMs: 1, error: "boom | bang" }],
    });
    expect(failed).toContain("FAIL");
    expect(failed).toContain("| a.ts::x | boom \\| bang |");
    expect(summaryMarkdown({ ...base, totals: { passed: 0, failed: 0, skipped: 0 }, cases: [] })).toContain("FAIL");
    expect(summaryMarkdown({ ...base, totals: { passed: 2, failed: 0, skipped: 0 }, cases: [] })).toContain("PASS");
  });

  it("lists skipped cases with the reason their suite declared, and only those", () => {
    const md = summaryMarkdown({
      startedAt: "",
      durationMs: 1000,
      unhandledErrors: [],
      totals: { passed: 1, failed: 0, skipped: 2 },
      cases: [
        {
          id: "p.ts::pods > a",
          project: "conformance",
          suite: "pods",
          name: "a",
          status: "skipped",
          durationMs: 0,
          skipNote: "needs a kubelet: --target kind",
        },
        { id: "s.ts::slow > b", project: "conformance", suite: "slow", name: "b", status: "skipped", durationMs: 0 },
        { id: "x.ts::x > c", project: "conformance", suite: "x", name: "c", status: "passed", durationMs: 1 },
      ],
    });
    expect(md).toContain("### Skipped, with the suite's reason");
    expect(md).toContain("| p.ts::pods > a | needs a kubelet: --target kind |");
    expect(md).not.toContain("s.ts::slow > b |");
  });
});

describe("user-defined cases", () => {
  it("loads the shipped guide cases and validates references", async () => {
    const { loadCases, mapPath, substitute } = await import("../fixtures/cases.ts");
    const { PACKAGE_ROOT } = await import("../config.ts");
    const { join } = await import("node:path");
    const cases = loadCases(join(PACKAGE_ROOT, "fixtures"));
    expect(cases.map((c) => c.name)).toEqual([
      "CoreOS Tectonic guide (vault CLI)",
      "hardened payments service",
      "Vultr VKE guide (per-service role)",
    ]);
    expect(mapPath("secret/demo/foo", { secret: "secret-ab12" })).toBe("secret-ab12/demo/foo");
    expect(mapPath("sys/mounts", { secret: "x" })).toBe("sys/mounts");
    expect(substitute({ ns: ["${namespace}"] }, { namespace: "n1" })).toEqual({ ns: ["n1"] });
  });
  it("a case file with a broken reference or bad YAML is a UsageError naming the file", async () => {
    const { loadCases } = await import("../fixtures/cases.ts");
    const { mkdtemp, mkdir, writeFile } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = await mkdtemp(join(tmpdir(), "vkc-cases-"));
    await mkdir(join(dir, "cases"));
    await writeFile(
      join(dir, "cases", "a.yaml"),
      "name: x\nroles: {}\nlogins:\n  - { role: nope, serviceAccount: a, expect: { status: 200 } }\n",
    );
    expect(() => loadCases(dir)).toThrowError(UsageError);
    expect(() => loadCases(dir)).toThrowError(/a\.yaml: login uses unknown role "nope"/);
    await writeFile(join(dir, "cases", "a.yaml"), "name: [unclosed\n");
    expect(() => loadCases(dir)).toThrowError(/invalid YAML in .*a\.yaml/);
    await (await import("node:fs/promises")).rm(dir, { recursive: true, force: true });
  });
});
