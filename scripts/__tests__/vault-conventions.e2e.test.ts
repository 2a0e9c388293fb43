import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { homedir, networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { createProxy } from "proxy";
import type { Dispatcher } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditReport } from "../../lib/access/audit.ts";
import { HarnessError } from "../../lib/errors.ts";
import type { TargetInfo } from "../../lib/lifecycle/info.ts";
import { freePort } from "../../lib/ports.ts";
import { StartedProcess } from "../../lib/process.ts";
import { generatePki } from "../../lib/providers/pki.ts";
import { VaultClient } from "../../lib/vault/client.ts";
import { vaultSettingsFromEnv, type VaultFlavor, type VaultSettings } from "../../lib/vault/env.ts";
import type { RunResults } from "../../lib/report/reporter.ts";
import { waitFor } from "../../lib/wait.ts";
import { script, waitForOutput } from "./helpers.ts";

/**
 * Vault's client conventions (lib/vault/env.ts, lib/vault/transport.ts) against real servers:
 * a HashiCorp Vault with a TLS listener that requires client certificates (not dev mode:
 * inmem storage, initialised and unsealed through the API with those same conventions), a real
 * CONNECT proxy (npm "proxy"), and an OpenBao dev server with namespaces.
 */

const CACHE = process.env.VKC_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "vault-k8s-conformance");

/** VAULT_BIN / BAO_BIN, else the newest cached version (no download, no build in this test). */
function cachedBinary(component: "vault" | "bao"): string | undefined {
  const override = process.env[component === "vault" ? "VAULT_BIN" : "BAO_BIN"];
  if (override) return override;
  const dir = join(CACHE, component);
  if (!existsSync(dir)) return undefined;
  const versions = readdirSync(dir)
    .filter((v) => /^\d+\.\d+\.\d+$/.test(v) && existsSync(join(dir, v, component)))
    .sort((a, b) => b.localeCompare(a, undefined, { numeric: true }));
  return versions[0] ? join(dir, versions[0], component) : undefined;
}

/** This machine's first non-loopback IPv4 (the proxy case needs one: loopback is never proxied). */
const externalIp = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === "IPv4" && !a.internal)?.address;

const work = mkdtempSync(join(tmpdir(), "vkc-vault-conv-"));
const processes: StartedProcess[] = [];
const dispatchers: Dispatcher[] = [];
const servers: Server[] = [];

afterAll(async () => {
  await Promise.allSettled(dispatchers.map((d) => d.destroy()));
  await Promise.allSettled(processes.map((p) => p.stop(3000)));
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  rmSync(work, { recursive: true, force: true });
});

/** A VaultClient exactly as a user's environment configures one. */
function clientFromEnv(env: Record<string, string | undefined>, flavor: VaultFlavor = "vault", warn?: (m: string) => void) {
  const settings = vaultSettingsFromEnv(env, flavor, { homeDir: join(work, "empty-home"), ...(warn ? { warn } : {}) });
  return { settings, vault: clientFor(settings) };
}

function clientFor(settings: VaultSettings): VaultClient {
  const vault = VaultClient.fromSettings(settings, { timeoutMs: 10_000 });
  dispatchers.push(vault.opts.dispatcher!);
  return vault;
}

const vaultBin = cachedBinary("vault");
const baoBin = cachedBinary("bao");
mkdirSync(join(work, "empty-home"));

const f = (name: string) => join(work, name);

/** The mutual-TLS HashiCorp Vault: its port, root token, and the full mutual-TLS environment for an address. */
interface TlsVault {
  port: number;
  rootToken: string;
  tlsEnv(host: string): Record<string, string>;
}
let tlsVault: Promise<TlsVault> | undefined;

/**
 * Started once for every describe that uses it: inmem storage, a TLS listener that requires
 * client certificates, initialised and unsealed through the conventions under test. The serving
 * certificate names localhost, vault.test and the external IP, never 127.0.0.1.
 */
function startTlsVault(): Promise<TlsVault> {
  return (tlsVault ??= (async () => {
    const pki = await generatePki({ ipAddresses: externalIp ? [externalIp] : [], dnsNames: ["localhost", "vault.test"] });
    writeFileSync(f("ca.pem"), pki.caCert);
    writeFileSync(f("server.pem"), pki.servingCert);
    writeFileSync(f("server-key.pem"), pki.servingKey, { mode: 0o600 });
    writeFileSync(f("client.pem"), pki.adminCert);
    writeFileSync(f("client-key.pem"), pki.adminKey, { mode: 0o600 });
    mkdirSync(f("capath"));
    writeFileSync(join(f("capath"), "other-ca.pem"), (await generatePki({ ipAddresses: [], dnsNames: ["x"] })).caCert);
    writeFileSync(join(f("capath"), "vault-ca.pem"), pki.caCert);

    const port = await freePort();
    writeFileSync(
      f("vault.hcl"),
      `storage "inmem" {}
listener "tcp" {
  address = "${externalIp ? "0.0.0.0" : "127.0.0.1"}:${port}"
  tls_cert_file = "${f("server.pem")}"
  tls_key_file = "${f("server-key.pem")}"
  tls_client_ca_file = "${f("ca.pem")}"
  tls_require_and_verify_client_cert = true
}
disable_mlock = true
api_addr = "https://localhost:${port}"
cluster_addr = "https://127.0.0.1:${await freePort()}"
`,
    );
    processes.push(
      await StartedProcess.start({
        name: "vault",
        command: vaultBin!,
        args: ["server", `-config=${f("vault.hcl")}`],
        env: { PATH: process.env.PATH, HOME: join(work, "empty-home"), VAULT_DISABLE_MLOCK: "true" },
        logFile: f("vault.log"),
      }),
    );
    const tlsEnv = (host: string) => ({
      VAULT_ADDR: `https://${host}:${port}`,
      VAULT_CACERT: f("ca.pem"),
      VAULT_CLIENT_CERT: f("client.pem"),
      VAULT_CLIENT_KEY: f("client-key.pem"),
    });

    // Initialise and unseal through the conventions under test.
    const { vault } = clientFromEnv(tlsEnv("localhost"));
    await waitFor(async () => (await vault.read("sys/health")).status === 501 || undefined, {
      what: "vault listens (sys/health 501, not initialised)",
      timeoutMs: 30_000,
    });
    const init = await vault.must<{ keys_base64: string[]; root_token: string }>("PUT", "sys/init", {
      secret_shares: 1,
      secret_threshold: 1,
    });
    await vault.must("PUT", "sys/unseal", { key: init.body.keys_base64[0] });
    await waitFor(async () => (await vault.read("sys/health")).status === 200 || undefined, {
      what: "vault active (sys/health 200)",
      timeoutMs: 30_000,
    });
    return { port, rootToken: init.body.root_token, tlsEnv };
  })());
}

/** The OpenBao dev server (it has namespaces; HashiCorp's are Enterprise-only), with namespace team-a. */
interface Bao {
  address: string;
  root: string;
}
let bao: Promise<Bao> | undefined;

function startBao(): Promise<Bao> {
  return (bao ??= (async () => {
    const root = "conv-root-token";
    const port = await freePort();
    const address = `http://127.0.0.1:${port}`;
    processes.push(
      await StartedProcess.start({
        name: "bao",
        command: baoBin!,
        args: ["server", "-dev", `-dev-root-token-id=${root}`, `-dev-listen-address=127.0.0.1:${port}`],
        env: { PATH: process.env.PATH, HOME: join(work, "empty-home"), BAO_DISABLE_MLOCK: "true", VAULT_DISABLE_MLOCK: "true" },
        logFile: join(work, "bao.log"),
      }),
    );
    const { vault } = clientFromEnv({ BAO_ADDR: address, BAO_TOKEN: root }, "openbao");
    await waitFor(async () => (await vault.read("sys/health")).status === 200 || undefined, {
      what: "bao dev server (sys/health 200)",
      timeoutMs: 30_000,
    });
    await vault.must("POST", "sys/namespaces/team-a", {});
    return { address, root };
  })());
}

describe.skipIf(!vaultBin)("HashiCorp Vault with TLS and required client certificates", () => {
  let port: number;
  let rootToken: string;
  let tlsEnv: TlsVault["tlsEnv"];

  beforeAll(async () => {
    ({ port, rootToken, tlsEnv } = await startTlsVault());
  }, 90_000);

  it("VAULT_ADDR, VAULT_CACERT, VAULT_CLIENT_CERT/KEY, VAULT_TOKEN: sys/health 200 and authenticated reads (LIST too)", async () => {
    const { vault, settings } = clientFromEnv({ ...tlsEnv("localhost"), VAULT_TOKEN: rootToken });
    expect(settings.from).toMatchObject({ ca: "VAULT_CACERT", cert: "VAULT_CLIENT_CERT", key: "VAULT_CLIENT_KEY" });
    expect((await vault.read("sys/health")).status).toBe(200);
    const self = await vault.must<{ data: { policies: string[] } }>("GET", "auth/token/lookup-self");
    expect(self.body.data.policies).toContain("root");
    await vault.must("PUT", "sys/policies/acl/conv-test", { policy: 'path "secret/*" { capabilities = ["read"] }' });
    const list = await vault.must<{ data: { keys: string[] } }>("LIST", "sys/policies/acl");
    expect(list.body.data.keys).toContain("conv-test");
  });

  it("the token from ~/.vault-token when VAULT_TOKEN is unset", async () => {
    const home = join(work, "home-with-token");
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, ".vault-token"), `${rootToken}\n`, { mode: 0o600 });
    const settings = vaultSettingsFromEnv(tlsEnv("localhost"), "vault", { homeDir: home });
    expect(settings.tokenFrom).toBe(join(home, ".vault-token"));
    expect((await clientFor(settings).read("auth/token/lookup-self")).status).toBe(200);
  });

  it("without the client certificate: a clear failure naming the request, no response", async () => {
    const { VAULT_CLIENT_CERT: _c, VAULT_CLIENT_KEY: _k, ...noClient } = tlsEnv("localhost");
    const { vault } = clientFromEnv({ ...noClient, VAULT_TOKEN: rootToken });
    const err = await vault.read("sys/health").catch((e) => e);
    expect(err).toBeInstanceOf(HarnessError);
    expect(err.message).toMatch(new RegExp(`^GET https://localhost:${port}/v1/sys/health: .*requires a client certificate`));
  });

  it("VAULT_TLS_SERVER_NAME when the address is an IP the certificate does not name", async () => {
    const byIp = { ...tlsEnv("127.0.0.1"), VAULT_TOKEN: rootToken };
    const err = await clientFromEnv(byIp)
      .vault.read("sys/health")
      .catch((e) => e);
    expect(err).toBeInstanceOf(HarnessError);
    expect(err.message).toMatch(/127\.0\.0\.1 is not in the cert's list/);
    const { vault } = clientFromEnv({ ...byIp, VAULT_TLS_SERVER_NAME: "vault.test" });
    expect((await vault.read("sys/health")).status).toBe(200);
    expect((await vault.read("auth/token/lookup-self")).status).toBe(200);
  });

  it("VAULT_CAPATH: a directory of PEM CAs", async () => {
    const { VAULT_CACERT: _ca, ...rest } = tlsEnv("localhost");
    const { vault, settings } = clientFromEnv({ ...rest, VAULT_CAPATH: f("capath"), VAULT_TOKEN: rootToken });
    expect(settings.tls.ca).toHaveLength(2);
    expect((await vault.read("auth/token/lookup-self")).status).toBe(200);
    // Without any CA (system roots only) the same server is untrusted.
    const err = await clientFromEnv({ ...rest, VAULT_TOKEN: rootToken })
      .vault.read("sys/health")
      .catch((e) => e);
    expect(err.message).toMatch(/certificate/);
  });

  it("VAULT_SKIP_VERIFY: connects without a CA, with a warning", async () => {
    const { VAULT_CACERT: _ca, ...rest } = tlsEnv("127.0.0.1"); // not even the right name
    const warnings: string[] = [];
    const { vault } = clientFromEnv({ ...rest, VAULT_SKIP_VERIFY: "true", VAULT_TOKEN: rootToken }, "vault", (m) => warnings.push(m));
    expect((await vault.read("auth/token/lookup-self")).status).toBe(200);
    expect(warnings).toEqual([
      `VAULT_SKIP_VERIFY is set: the TLS certificate of https://127.0.0.1:${port} is not verified, anyone on the network path can read the token`,
    ]);
  });

  describe.skipIf(!externalIp)("through a real CONNECT proxy", () => {
    let proxyUrl: string;
    const connects: string[] = [];

    beforeAll(async () => {
      const proxy = createProxy(createHttpServer());
      proxy.on("connect", (req) => connects.push(req.url ?? ""));
      servers.push(proxy);
      await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
      proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    });

    it("HTTPS_PROXY: the request tunnels through the proxy (mutual TLS inside the tunnel)", async () => {
      const before = connects.length;
      const { vault } = clientFromEnv({ ...tlsEnv(externalIp!), VAULT_TOKEN: rootToken, HTTPS_PROXY: proxyUrl });
      expect((await vault.read("auth/token/lookup-self")).status).toBe(200);
      expect(connects.slice(before)).toEqual([`${externalIp}:${port}`]);
    });

    it("NO_PROXY bypasses it; loopback addresses are never proxied (as Go's ProxyFromEnvironment)", async () => {
      const before = connects.length;
      const viaNoProxy = clientFromEnv({
        ...tlsEnv(externalIp!),
        VAULT_TOKEN: rootToken,
        HTTPS_PROXY: proxyUrl,
        NO_PROXY: `example.com,${externalIp}`,
      });
      expect((await viaNoProxy.vault.read("auth/token/lookup-self")).status).toBe(200);
      const cidr = clientFromEnv({
        ...tlsEnv(externalIp!),
        VAULT_TOKEN: rootToken,
        https_proxy: proxyUrl,
        no_proxy: `${externalIp!.split(".").slice(0, 2).join(".")}.0.0/16`,
      });
      expect((await cidr.vault.read("sys/health")).status).toBe(200);
      const loopback = clientFromEnv({ ...tlsEnv("localhost"), VAULT_TOKEN: rootToken, HTTPS_PROXY: proxyUrl });
      expect((await loopback.vault.read("sys/health")).status).toBe(200);
      expect(connects.slice(before)).toEqual([]);
      // HTTP_PROXY alone is not used for an https address (no fallback, as Go).
      const httpOnly = clientFromEnv({ ...tlsEnv(externalIp!), VAULT_TOKEN: rootToken, HTTP_PROXY: proxyUrl });
      expect((await httpOnly.vault.read("sys/health")).status).toBe(200);
      expect(connects.slice(before)).toEqual([]);
    });

    it("VAULT_PROXY_ADDR: every request through the proxy, NO_PROXY ignored", async () => {
      const before = connects.length;
      const { vault } = clientFromEnv({ ...tlsEnv("localhost"), VAULT_TOKEN: rootToken, VAULT_PROXY_ADDR: proxyUrl, NO_PROXY: "*" });
      expect((await vault.read("sys/health")).status).toBe(200);
      expect(connects.slice(before)).toEqual([`localhost:${port}`]);
    });
  });
});

describe.skipIf(!baoBin)("OpenBao dev server: BAO_NAMESPACE / VAULT_NAMESPACE", () => {
  let address: string;
  let root: string;

  beforeAll(async () => {
    ({ address, root } = await startBao());
  }, 60_000);

  it("with BAO_NAMESPACE=team-a, mounts, policies and logins live in the namespace and are absent at root", async () => {
    // BAO_NAMESPACE wins over VAULT_NAMESPACE for openbao.
    const { vault: ns, settings } = clientFromEnv(
      { BAO_ADDR: address, VAULT_ADDR: "http://127.0.0.1:1", BAO_TOKEN: root, BAO_NAMESPACE: "team-a", VAULT_NAMESPACE: "other" },
      "openbao",
    );
    expect(settings).toMatchObject({ namespace: "team-a", address });
    const { vault: rootNs } = clientFromEnv({ BAO_ADDR: address, BAO_TOKEN: root }, "openbao");

    await ns.must("POST", "sys/mounts/team-kv", { type: "kv", options: { version: "2" } });
    await ns.must("PUT", "sys/policies/acl/team-reader", { policy: 'path "team-kv/data/*" { capabilities = ["read"] }' });
    await ns.must("POST", "team-kv/data/app", { data: { color: "blue" } });
    await ns.must("POST", "sys/auth/userpass", { type: "userpass" });
    await ns.must("POST", "auth/userpass/users/dev", { password: "pw-123456", token_policies: "team-reader" });

    // Read back in the namespace.
    const mounts = await ns.must<{ data: Record<string, unknown> }>("GET", "sys/mounts");
    expect(Object.keys(mounts.body.data)).toContain("team-kv/");
    expect((await ns.must<{ data: { policy: string } }>("GET", "sys/policies/acl/team-reader")).body.data.policy).toContain(
      "team-kv/data/*",
    );
    // A login in the namespace, then the namespace's secret with that login's token.
    const login = await ns
      .withToken(undefined)
      .must<{ auth: { client_token: string; policies: string[] } }>("POST", "auth/userpass/login/dev", { password: "pw-123456" });
    expect(login.body.auth.policies).toContain("team-reader");
    const secret = await ns.withToken(login.body.auth.client_token).must<{ data: { data: { color: string } } }>("GET", "team-kv/data/app");
    expect(secret.body.data.data.color).toBe("blue");

    // Absent at root.
    const rootMounts = await rootNs.must<{ data: Record<string, unknown> }>("GET", "sys/mounts");
    expect(Object.keys(rootMounts.body.data)).not.toContain("team-kv/");
    expect((await rootNs.read("sys/policies/acl/team-reader")).status).toBe(404);
    expect((await rootNs.read("team-kv/data/app")).status).toBeGreaterThanOrEqual(400);
    expect((await rootNs.withToken(undefined).write("auth/userpass/login/dev", { password: "pw-123456" })).status).toBeGreaterThanOrEqual(
      400,
    );
  });

  it("VAULT_NAMESPACE is honoured by bao when BAO_NAMESPACE is unset", async () => {
    const { vault, settings } = clientFromEnv({ VAULT_ADDR: address, VAULT_TOKEN: root, VAULT_NAMESPACE: "team-a" }, "openbao");
    expect(settings.from.namespace).toBe("VAULT_NAMESPACE");
    expect((await vault.must<{ data: { policy: string } }>("GET", "sys/policies/acl/team-reader")).status).toBe(200);
    // An empty BAO_NAMESPACE hides it (bao's ReadBaoVariable): root again.
    const hidden = clientFromEnv({ VAULT_ADDR: address, VAULT_TOKEN: root, VAULT_NAMESPACE: "team-a", BAO_NAMESPACE: "" }, "openbao");
    expect(hidden.settings.namespace).toBeUndefined();
    expect((await hidden.vault.read("sys/policies/acl/team-reader")).status).toBe(404);
  });
});

// The runs use the conventions: --target existing (its preflight, attach, the suites in vitest's
// workers, the sweep), its --dry-run and npm run audit, each reaching an external Vault exactly as
// the vault/bao CLI would, with the Kubernetes side of a running local target (npm run env:up).
describe.skipIf(!vaultBin || !baoBin)("the runs use them: --target existing, --dry-run and npm run audit", () => {
  let up: ReturnType<typeof script> | undefined;
  let info: TargetInfo;
  let tls: TlsVault;
  let b: Bao;
  /** A run's environment: the local target's kubeconfig, nothing of the harness's own settings. */
  const kube = () => ({ KUBECONFIG: info.kube.kubeconfigPath, VKC_TARGET: "", VKC_FLAVOR: "" });
  /** The mutual-TLS Vault by IP, its certificate matched by VAULT_TLS_SERVER_NAME. */
  const tlsRunEnv = (): Record<string, string> => ({
    ...tls.tlsEnv("127.0.0.1"),
    VAULT_TLS_SERVER_NAME: "vault.test",
    VAULT_TOKEN: tls.rootToken,
  });
  const baoEnv = (namespace: string) => ({ BAO_ADDR: b.address, BAO_TOKEN: b.root, BAO_NAMESPACE: namespace });
  const tokens = () => [tls.rootToken, b.root];
  /** Nothing secret and no stack trace in a run's output. */
  const clean = (output: string) => {
    for (const t of tokens()) expect(output).not.toContain(t);
    expect(output).not.toMatch(/PRIVATE KEY/);
    expect(output).not.toMatch(/\n\s+at /);
  };
  const results = (dir: string) => JSON.parse(readFileSync(join(dir, "results.json"), "utf8")) as RunResults;
  const authMounts = async (v: VaultClient) =>
    Object.keys((await v.must<{ data: Record<string, unknown> }>("GET", "sys/auth")).body.data).sort();
  const policies = async (v: VaultClient) => (await v.must<{ data: { keys: string[] } }>("LIST", "sys/policies/acl")).body.data.keys.sort();

  beforeAll(async () => {
    [tls, b] = await Promise.all([startTlsVault(), startBao()]);
    const out = f("target.json");
    up = script("env-up.ts", ["--out", out, "--reports", f("up")], { VKC_TARGET: "" });
    await waitForOutput(up, /is up/);
    info = JSON.parse(readFileSync(out, "utf8")) as TargetInfo;
  }, 240_000);
  afterAll(async () => {
    up?.child.kill("SIGTERM");
    await up?.exited;
  });

  it("--target existing on a Vault with TLS and required client certificates (VAULT_CACERT, VAULT_CLIENT_CERT/KEY, VAULT_TLS_SERVER_NAME): the suites pass, Vault is as before", async () => {
    const { vault } = clientFromEnv({ ...tls.tlsEnv("localhost"), VAULT_TOKEN: tls.rootToken });
    const before = { auth: await authMounts(vault), policies: await policies(vault) };
    const reports = f("tls-run");
    const run = script("conformance.ts", ["--target", "existing", "--reports", reports, "smoke", "login-accepted"], {
      ...kube(),
      ...tlsRunEnv(),
    });
    expect(await run.exited, run.output().slice(-3000)).toBe(0);
    const r = results(reports);
    expect(r).toMatchObject({
      target: "existing",
      flavor: "vault",
      totals: { failed: 0 },
      versions: { vault: expect.stringMatching(/^\d+\.\d+\.\d+/) },
    });
    expect(r.totals.passed).toBeGreaterThanOrEqual(10);
    expect(run.output()).toMatch(
      new RegExp(`attached to \\S+ \\(context [^)]+\\) and vault \\S+ at https://127\\.0\\.0\\.1:${tls.port}\\n`),
    );
    clean(run.output());
    expect({ auth: await authMounts(vault), policies: await policies(vault) }).toEqual(before);
  });

  it("VAULT_SKIP_VERIFY: --dry-run reaches that Vault without a CA (client certificate still sent), with one warning line", async () => {
    const { VAULT_CACERT: _ca, ...noCa } = tlsRunEnv();
    const run = script("conformance.ts", ["--target", "existing", "--dry-run", "--reports", f("skip-dry")], {
      ...kube(),
      ...noCa,
      VAULT_TLS_SERVER_NAME: "",
      VAULT_SKIP_VERIFY: "true",
    });
    expect(await run.exited, run.output()).toBe(0);
    expect(run.output()).toContain("dry run: nothing created; the credentials allow all 18 operations the run needs");
    expect(
      run
        .output()
        .split("\n")
        .filter((l) => l.includes("VAULT_SKIP_VERIFY is set")),
    ).toEqual([
      `[vkc] WARN vault: VAULT_SKIP_VERIFY is set: the TLS certificate of https://127.0.0.1:${tls.port} is not verified, anyone on the network path can read the token`,
    ]);
    clean(run.output());
  });

  it("--target existing --flavor openbao with BAO_NAMESPACE: the run's auth mounts and policies are created in the namespace, never at root, and removed", async () => {
    const ns = "vkc-run";
    const { vault: root } = clientFromEnv({ BAO_ADDR: b.address, BAO_TOKEN: b.root }, "openbao");
    await root.must("POST", `sys/namespaces/${ns}`, {});
    const inNs = root.withNamespace(ns);
    const snapshot = async (v: VaultClient) => ({ auth: await authMounts(v), policies: await policies(v) });
    const before = { root: await snapshot(root), ns: await snapshot(inNs) };
    const reports = f("ns-run");
    const run = script("conformance.ts", ["--target", "existing", "--flavor", "openbao", "--reports", reports, "smoke", "login-accepted"], {
      ...kube(),
      ...baoEnv(ns),
    });
    // While it runs: what appears in the namespace, and at root.
    const seen = { root: new Set<string>(), ns: new Set<string>() };
    while (run.child.exitCode === null) {
      for (const [where, v] of [
        ["root", root],
        ["ns", inNs],
      ] as const) {
        const now = await snapshot(v);
        for (const m of now.auth.filter((m) => !before[where].auth.includes(m))) seen[where].add(`auth ${m}`);
        for (const p of now.policies.filter((p) => !before[where].policies.includes(p))) seen[where].add(`policy ${p}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await run.exited, run.output().slice(-3000)).toBe(0);
    expect(results(reports)).toMatchObject({ target: "existing", flavor: "openbao", totals: { failed: 0 } });
    expect(run.output()).toMatch(new RegExp(`and openbao \\S+ at ${b.address} \\(namespace ${ns}\\)`));
    expect([...seen.ns].filter((x) => x.startsWith("auth k8s-")).length, [...seen.ns].join(", ")).toBeGreaterThan(0);
    expect([...seen.ns].filter((x) => x.startsWith("policy ")).length, [...seen.ns].join(", ")).toBeGreaterThan(0);
    expect([...seen.root]).toEqual([]);
    // Removed again, in the namespace; root untouched.
    expect({ root: await snapshot(root), ns: await snapshot(inNs) }).toEqual(before);
    clean(run.output());
  });

  it("--dry-run with BAO_NAMESPACE plans and checks the token's capabilities in the namespace", async () => {
    const run = script("conformance.ts", ["--target", "existing", "--flavor", "openbao", "--dry-run", "--reports", f("ns-dry")], {
      ...kube(),
      ...baoEnv("vkc-run"),
    });
    expect(await run.exited, run.output()).toBe(0);
    expect(run.output()).toContain(`on Vault ${b.address} (namespace vkc-run), each removed afterwards:`);
    expect(run.output()).toContain(`capabilities of BAO_TOKEN at ${b.address} (namespace vkc-run):`);
    expect(run.output()).toContain("dry run: nothing created; the credentials allow all 18 operations the run needs");
    clean(run.output());
  });

  it.each([
    ["the mutual-TLS Vault (VAULT_CACERT, VAULT_CLIENT_CERT/KEY, VAULT_TLS_SERVER_NAME)", "tls"],
    ["an OpenBao namespace (BAO_NAMESPACE), with --flavor openbao", "ns"],
  ] as const)("npm run audit on %s reads that Vault's kubernetes mounts and roles only", async (_what, which) => {
    const mount = `k8s-audit-${which}`;
    const { vault: v } =
      which === "tls"
        ? clientFromEnv({ ...tls.tlsEnv("localhost"), VAULT_TOKEN: tls.rootToken })
        : clientFromEnv({ BAO_ADDR: b.address, BAO_TOKEN: b.root, BAO_NAMESPACE: "team-a" }, "openbao");
    await v.must("POST", `sys/auth/${mount}`, { type: "kubernetes" });
    try {
      await v.must("POST", `auth/${mount}/config`, { kubernetes_host: info.kube.server, kubernetes_ca_cert: info.kube.caCertForVault });
      await v.must("POST", `auth/${mount}/role/app`, {
        bound_service_account_names: ["default"],
        bound_service_account_namespaces: ["default"],
        token_policies: ["default"],
      });
      const out = f(`audit-${which}.json`);
      const env = which === "tls" ? tlsRunEnv() : baoEnv("team-a");
      const run = script("audit.ts", ["--out", out, ...(which === "ns" ? ["--flavor", "openbao"] : [])], { ...kube(), ...env });
      expect(await run.exited, run.output()).toBe(0);
      const address = which === "tls" ? `https://127.0.0.1:${tls.port}` : b.address;
      expect(run.output()).toContain(`on Vault ${address}${which === "ns" ? " (namespace team-a)" : ""}: reads auth mounts`);
      const report = JSON.parse(readFileSync(out, "utf8")) as AuditReport;
      expect(report).toMatchObject({ mode: "static", vault: { address, version: expect.any(String) } });
      expect(Object.keys(report.mounts)).toEqual([mount]);
      expect(report.mounts[mount]!.roles.app!.accepted).toContainEqual(
        expect.objectContaining({ namespace: "default", serviceAccount: "default" }),
      );
      clean(run.output());
    } finally {
      await v.must("DELETE", `sys/auth/${mount}`);
    }
  });

  // Bad input: one line, exit 2, never a token or a stack trace. Vault is checked before the cluster.
  const ERR_PREFIX = "error: ";
  it.each<[string, string, (t: TlsVault, b: Bao) => Record<string, string>, RegExp]>([
    [
      "conformance.ts",
      "VAULT_CACERT: a missing file",
      () => ({ VAULT_CACERT: "/nonexistent/ca.pem" }),
      /cannot read VAULT_CACERT \/nonexistent\/ca\.pem: ENOENT/,
    ],
    [
      "conformance.ts",
      "VAULT_CACERT: not PEM",
      () => ({ VAULT_CACERT: f("vault.hcl") }),
      /VAULT_CACERT \S+vault\.hcl holds no PEM certificate/,
    ],
    [
      "conformance.ts",
      "a client certificate without its key",
      () => ({ VAULT_CLIENT_KEY: "" }),
      /VAULT_CLIENT_CERT is set without VAULT_CLIENT_KEY/,
    ],
    [
      "conformance.ts",
      "an unparsable VAULT_ADDR",
      () => ({ VAULT_ADDR: "vault.example.com:8200" }),
      /VAULT_ADDR="vault\.example\.com:8200" is not a Vault address/,
    ],
    [
      "conformance.ts",
      "a TLS handshake with an unknown CA",
      () => ({ VAULT_CACERT: join(f("capath"), "other-ca.pem") }),
      /cannot reach Vault at https:\/\/127\.0\.0\.1:\d+: GET https:\/\/127\.0\.0\.1:\d+\/v1\/sys\/health: .*certificate/,
    ],
    [
      "conformance.ts",
      "VAULT_SKIP_VERIFY not a boolean",
      () => ({ VAULT_SKIP_VERIFY: "maybe" }),
      /VAULT_SKIP_VERIFY="maybe" is not a boolean/,
    ],
    [
      "conformance.ts",
      "a namespace that does not exist (BAO_NAMESPACE, --flavor openbao)",
      () => ({ ...baoEnv("no-such-ns"), VAULT_ADDR: "", VAULT_TOKEN: "", VKC_FLAVOR: "openbao" }),
      /BAO_TOKEN is valid at http:\/\/127\.0\.0\.1:\d+ but not in namespace no-such-ns/,
    ],
    [
      "audit.ts",
      "VAULT_CACERT: a missing file",
      () => ({ VAULT_CACERT: "/nonexistent/ca.pem" }),
      /cannot read VAULT_CACERT \/nonexistent\/ca\.pem: ENOENT/,
    ],
    [
      "audit.ts",
      "a TLS handshake with an unknown CA",
      () => ({ VAULT_CACERT: join(f("capath"), "other-ca.pem") }),
      /cannot reach Vault at https:\/\/127\.0\.0\.1:\d+: .*certificate/,
    ],
    [
      "--dry-run",
      "a client certificate without its key",
      () => ({ VAULT_CLIENT_KEY: "" }),
      /VAULT_CLIENT_CERT is set without VAULT_CLIENT_KEY/,
    ],
    [
      "--dry-run",
      "a TLS handshake with an unknown CA",
      () => ({ VAULT_CACERT: join(f("capath"), "other-ca.pem") }),
      /cannot check the token's capabilities at https:\/\/127\.0\.0\.1:\d+: .*certificate/,
    ],
  ])("%s, %s: one line, exit 2", async (which, _what, bad, line) => {
    const [name, args] =
      which === "--dry-run"
        ? ["conformance.ts", ["--target", "existing", "--dry-run"]]
        : which === "audit.ts"
          ? ["audit.ts", []]
          : ["conformance.ts", ["--target", "existing"]];
    const run = script(name, [...args, "--reports", f("bad")], { ...kube(), ...tlsRunEnv(), ...bad(tls, b) });
    expect(await run.exited, run.output()).toBe(2);
    const errors = run
      .output()
      .split("\n")
      .filter((l) => l.startsWith(ERR_PREFIX));
    expect(errors, run.output()).toHaveLength(1);
    expect(errors[0]).toMatch(line);
    clean(run.output());
  });
});
