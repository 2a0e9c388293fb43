import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { externalVaultSettings, loadConfig } from "../../config.ts";
import { UsageError } from "../../errors.ts";
import type { TargetInfo } from "../../lifecycle/info.ts";
import { redact } from "../../redact.ts";
import { vaultSettingsFromEnv } from "../env.ts";
import { requireAddressAndToken, vaultClientForTarget, vaultConnection, vaultSettingsFromTarget, vaultWhere } from "../external.ts";

// How an external Vault's client conventions travel from the script (lib/config.ts, env.ts) to
// vitest's workers through TargetInfo: files of the run (0600), never key material or tokens inline.

const CERT = (n: string) => `-----BEGIN CERTIFICATE-----\nMII${n}\n-----END CERTIFICATE-----`;
const KEY = "-----BEGIN PRIVATE KEY-----\nMIIkey\n-----END PRIVATE KEY-----\n";
const TOKEN = "hvs.external-test-token-0123456789";

let dir: string;
let home: string;
let run: string;
const ws = {
  writeSecret: (name: string, content: string) => writeFile(join(run, name), content, { mode: 0o600 }).then(() => join(run, name)),
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "vkc-vault-external-"));
  home = join(dir, "home");
  run = join(dir, "run");
  mkdirSync(home);
  mkdirSync(run);
  writeFileSync(join(dir, "ca.pem"), `${CERT("a")}\n${CERT("b")}\n`);
  writeFileSync(join(dir, "client.pem"), CERT("client"));
  writeFileSync(join(dir, "client-key.pem"), KEY, { mode: 0o600 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tlsEnv = () => ({
  VAULT_ADDR: "https://vault.example.com:8200",
  VAULT_TOKEN: TOKEN,
  VAULT_CACERT: join(dir, "ca.pem"),
  VAULT_CLIENT_CERT: join(dir, "client.pem"),
  VAULT_CLIENT_KEY: join(dir, "client-key.pem"),
  VAULT_TLS_SERVER_NAME: "vault.internal",
  VAULT_NAMESPACE: "team-a/",
  HTTPS_PROXY: "http://user:proxy-secret-pw@proxy.example.com:3128",
});

function infoWith(vault: Partial<TargetInfo["vault"]>, tokenFile: string): TargetInfo {
  return {
    vault: { address: "https://vault.example.com:8200", tokenFile, flavor: "vault", version: "1.21.1", ...vault },
  } as TargetInfo;
}

describe("TargetInfo carries an external Vault's conventions as 0600 files and plain settings", () => {
  it("writes CA, client certificate and key, and the proxy (it may hold credentials) as 0600 files; name, namespace as they are", async () => {
    const settings = vaultSettingsFromEnv(tlsEnv(), "vault", { homeDir: home, warn: () => undefined });
    const c = await vaultConnection(ws, settings);
    expect(c).toEqual({
      caCertFile: join(run, "vault-ca.crt"),
      clientCertFile: join(run, "vault-client.crt"),
      clientKeyFile: join(run, "vault-client.key"),
      tlsServerName: "vault.internal",
      namespace: "team-a",
      proxyFile: join(run, "vault-proxy"),
    });
    for (const f of [c.caCertFile!, c.clientCertFile!, c.clientKeyFile!, c.proxyFile!]) expect(statSync(f).mode & 0o777).toBe(0o600);
    expect(readFileSync(c.clientKeyFile!, "utf8")).toBe(KEY);
    expect(readFileSync(c.proxyFile!, "utf8")).toBe("http://user:proxy-secret-pw@proxy.example.com:3128");
    // Nothing secret in the plain part.
    expect(JSON.stringify(c)).not.toMatch(/PRIVATE KEY|proxy-secret-pw|hvs\./);
  });

  it("no proxy file when the address is exempt (NO_PROXY, loopback), none of the optional fields without their variables", async () => {
    const exempt = vaultSettingsFromEnv(
      { VAULT_ADDR: "https://vault.example.com:8200", VAULT_TOKEN: TOKEN, HTTPS_PROXY: "http://proxy:3128", NO_PROXY: ".example.com" },
      "vault",
      { homeDir: home },
    );
    expect(await vaultConnection(ws, exempt)).toEqual({});
    const loopback = vaultSettingsFromEnv(
      { VAULT_ADDR: "http://127.0.0.1:8200", VAULT_TOKEN: TOKEN, HTTP_PROXY: "http://proxy:3128" },
      "vault",
      {
        homeDir: home,
      },
    );
    expect(await vaultConnection(ws, loopback)).toEqual({});
    const skip = vaultSettingsFromEnv({ VAULT_ADDR: "https://v:8200", VAULT_TOKEN: TOKEN, VAULT_SKIP_VERIFY: "1" }, "vault", {
      homeDir: home,
      warn: () => undefined,
    });
    expect(await vaultConnection(ws, skip)).toEqual({ tlsSkipVerify: true });
  });

  it("a worker rebuilds the same settings from TargetInfo: token from its file, CA certificates, client pair, name, namespace, the chosen proxy", async () => {
    const settings = vaultSettingsFromEnv(tlsEnv(), "vault", { homeDir: home });
    const tokenFile = await ws.writeSecret("vault-token", TOKEN);
    const info = infoWith(await vaultConnection(ws, settings), tokenFile);
    const back = await vaultSettingsFromTarget(info);
    expect(back).toMatchObject({
      address: settings.address,
      token: TOKEN,
      namespace: "team-a",
      tls: { ca: settings.tls.ca, cert: settings.tls.cert, key: settings.tls.key, servername: "vault.internal", rejectUnauthorized: true },
      proxy: { vaultProxy: "http://user:proxy-secret-pw@proxy.example.com:3128" },
    });
    // Printing the rebuilt settings shows neither the token nor the key; the proxy's credentials are registered for redaction.
    expect(inspect(back) + JSON.stringify(back)).not.toMatch(/external-test-token|MIIkey/);
    expect(redact("via http://user:proxy-secret-pw@proxy.example.com:3128")).not.toContain("proxy-secret-pw");
    const client = await vaultClientForTarget(info);
    expect(client.opts).toMatchObject({ address: "https://vault.example.com:8200", token: TOKEN, namespace: "team-a" });
    expect(client.opts.dispatcher?.constructor.name).toBe("ProxyAgent");
    await client.opts.dispatcher!.close();
  });

  it("a target without any of them (local, kind) gets a plain client with the system roots", async () => {
    const tokenFile = await ws.writeSecret("vault-token-2", `${TOKEN}\n`);
    const back = await vaultSettingsFromTarget({
      ...infoWith({}, tokenFile),
      vault: { ...infoWith({}, tokenFile).vault, address: "http://127.0.0.1:8200" },
    });
    expect(back).toMatchObject({ address: "http://127.0.0.1:8200", token: TOKEN, tls: { rejectUnauthorized: true }, proxy: {} });
    expect(back.tls.ca).toBeUndefined();
    expect(back.namespace).toBeUndefined();
  });

  it("a missing file of the target is one line, exit 2", async () => {
    const err = await vaultSettingsFromTarget(infoWith({ clientCertFile: join(run, "gone.crt") }, join(run, "vault-token"))).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toMatch(/^cannot read the target's Vault client certificate .*gone\.crt: ENOENT/);
  });
});

describe("the existing target and the audit need an address and a token", () => {
  const need = (env: Record<string, string>, flavor: "vault" | "openbao" = "vault") => {
    try {
      requireAddressAndToken(vaultSettingsFromEnv(env, flavor, { homeDir: home }), "the audit", { token: "a token that may read" });
    } catch (err) {
      expect(err).toBeInstanceOf(UsageError);
      return (err as Error).message;
    }
    return "ok";
  };

  it.each([
    [{}, "vault", "the audit needs VAULT_ADDR and VAULT_TOKEN (a token that may read; the token may also come from ~/.vault-token)"],
    [{ VAULT_TOKEN: TOKEN }, "vault", "the audit needs VAULT_ADDR and VAULT_TOKEN"],
    [{ VAULT_ADDR: "https://v:8200" }, "vault", "the audit needs VAULT_ADDR and VAULT_TOKEN"],
    [
      { BAO_ADDR: "https://v:8200" },
      "openbao",
      "the audit needs BAO_ADDR and BAO_TOKEN (or VAULT_ADDR and VAULT_TOKEN) (a token that may read; the token may also come from ~/.vault-token or BAO_TOKEN_PATH)",
    ],
    [{ VAULT_ADDR: "https://v:8200", VAULT_TOKEN: TOKEN }, "vault", "ok"],
    [{ VAULT_AGENT_ADDR: "http://127.0.0.1:8100", VAULT_TOKEN: TOKEN }, "vault", "ok"],
    [{ BAO_ADDR: "https://v:8200", VAULT_TOKEN: TOKEN }, "openbao", "ok"],
  ])("%j (%s): %s", (env, flavor, message) => {
    expect(need(env, flavor as "vault" | "openbao")).toContain(message);
  });

  it("the token file counts as a token (as for the CLI)", () => {
    const withToken = join(dir, "home-token");
    mkdirSync(withToken, { recursive: true });
    writeFileSync(join(withToken, ".vault-token"), `${TOKEN}\n`);
    const s = vaultSettingsFromEnv({ VAULT_ADDR: "https://v:8200" }, "vault", { homeDir: withToken });
    expect(() => requireAddressAndToken(s, "x", { token: "y" })).not.toThrow();
  });

  it("vaultWhere names the namespace", () => {
    expect(vaultWhere({ address: "https://v:8200", namespace: "team-a" })).toBe("https://v:8200 (namespace team-a)");
    expect(vaultWhere({ address: "https://v:8200" })).toBe("https://v:8200");
  });
});

describe("lib/config.ts builds the settings once per config, with the flavor's precedence", () => {
  it("BAO_* win for openbao, VAULT_* for vault; built once (one VAULT_SKIP_VERIFY warning per config)", () => {
    const env = {
      HOME: home,
      VKC_TARGET: "existing",
      VAULT_ADDR: "https://vault.example.com",
      BAO_ADDR: "https://bao.example.com",
      VAULT_TOKEN: TOKEN,
      BAO_NAMESPACE: "bao-ns",
      VAULT_NAMESPACE: "vault-ns",
    };
    const vault = loadConfig(env, dir);
    expect(externalVaultSettings(vault)).toMatchObject({ address: "https://vault.example.com", namespace: "vault-ns" });
    expect(externalVaultSettings(vault)).toBe(externalVaultSettings(vault));
    const bao = loadConfig({ ...env, VKC_FLAVOR: "openbao" }, dir);
    expect(externalVaultSettings(bao)).toMatchObject({ address: "https://bao.example.com", namespace: "bao-ns", tokenFrom: "VAULT_TOKEN" });
  });

  it("a config that never asks (local, kind) never reads them: a broken VAULT_CACERT does not matter", () => {
    const config = loadConfig({ HOME: home, VAULT_CACERT: join(dir, "missing.pem") }, dir);
    expect(config.target).toBe("local");
    expect(() => externalVaultSettings(config)).toThrow(/^cannot read VAULT_CACERT .*missing\.pem: ENOENT/);
  });
});
