import { mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UsageError } from "../../errors.ts";
import { DEFAULT_VAULT_ADDR, describeVaultSettings, parseGoBool, vaultSettingsFromEnv, type VaultFlavor } from "../env.ts";

const CERT = (n: string) => `-----BEGIN CERTIFICATE-----\nMII${n}\n-----END CERTIFICATE-----\n`;
const KEY = "-----BEGIN PRIVATE KEY-----\nMIIkey\n-----END PRIVATE KEY-----\n";

let dir: string;
let home: string; // no token file
let homeWithToken: string;
const warnings: string[] = [];

function read(env: Record<string, string | undefined>, flavor: VaultFlavor = "vault", homeDir = home) {
  return vaultSettingsFromEnv(env, flavor, { homeDir, warn: (m) => warnings.push(m) });
}

function usageError(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).not.toContain("\n");
    return err as UsageError;
  }
  throw new Error("expected a UsageError");
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "vkc-vault-env-"));
  home = join(dir, "home");
  homeWithToken = join(dir, "home2");
  mkdirSync(home);
  mkdirSync(homeWithToken);
  writeFileSync(join(homeWithToken, ".vault-token"), "s.fromfile \n\n");
  writeFileSync(join(dir, "ca.pem"), CERT("a") + CERT("b"));
  writeFileSync(join(dir, "not-pem.txt"), "hello");
  writeFileSync(join(dir, "client.pem"), CERT("client"));
  writeFileSync(join(dir, "client-key.pem"), KEY);
  mkdirSync(join(dir, "capath", "sub"), { recursive: true });
  writeFileSync(join(dir, "capath", "one.pem"), CERT("one"));
  writeFileSync(join(dir, "capath", "sub", "two.crt"), CERT("two"));
  mkdirSync(join(dir, "badpath"));
  writeFileSync(join(dir, "badpath", "x.pem"), "junk");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("vaultSettingsFromEnv: address, token, namespace", () => {
  it("defaults as the CLI does and reads VAULT_*", () => {
    const d = read({});
    expect(d).toMatchObject({ address: DEFAULT_VAULT_ADDR, addressFrom: "default", tls: { rejectUnauthorized: true } });
    expect(d.token).toBeUndefined();
    const s = read({ VAULT_ADDR: "https://vault.example.com:8200/", VAULT_TOKEN: "s.env", VAULT_NAMESPACE: "team-a/" });
    expect(s).toMatchObject({
      address: "https://vault.example.com:8200",
      addressFrom: "VAULT_ADDR",
      token: "s.env",
      tokenFrom: "VAULT_TOKEN",
      namespace: "team-a",
    });
  });

  it("openbao: BAO_* take precedence over VAULT_*, even when empty; vault ignores BAO_*", () => {
    const env = {
      VAULT_ADDR: "http://v:8200",
      BAO_ADDR: "http://b:8200",
      VAULT_TOKEN: "vt",
      BAO_TOKEN: "bt",
      VAULT_NAMESPACE: "vns",
      BAO_NAMESPACE: "bns",
    };
    expect(read(env, "openbao")).toMatchObject({
      address: "http://b:8200",
      addressFrom: "BAO_ADDR",
      token: "bt",
      tokenFrom: "BAO_TOKEN",
      namespace: "bns",
    });
    expect(read(env, "vault")).toMatchObject({ address: "http://v:8200", token: "vt", namespace: "vns" });
    expect(read({ VAULT_ADDR: "http://v:8200", VAULT_AGENT_ADDR: "http://agent:8100" })).toMatchObject({
      address: "http://agent:8100",
      addressFrom: "VAULT_AGENT_ADDR",
    });
    // VAULT_* still work for bao when no BAO_* is present (ReadBaoVariable's fallback).
    expect(read({ VAULT_ADDR: "http://v:8200", VAULT_TOKEN: "vt" }, "openbao")).toMatchObject({
      address: "http://v:8200",
      addressFrom: "VAULT_ADDR",
      token: "vt",
    });
    // A present-but-empty BAO_ADDR hides VAULT_ADDR: the default address, as bao does.
    expect(read({ VAULT_ADDR: "http://v:8200", BAO_ADDR: "" }, "openbao").address).toBe(DEFAULT_VAULT_ADDR);
    // Only BAO_ (not VAULT_) for openbao when both skip-verify values are set.
    expect(read({ VAULT_SKIP_VERIFY: "true", BAO_SKIP_VERIFY: "false" }, "openbao").tls.rejectUnauthorized).toBe(true);
    expect(read({ VAULT_SKIP_VERIFY: "false", BAO_SKIP_VERIFY: "true" }, "vault").tls.rejectUnauthorized).toBe(true);
  });

  it("falls back to ~/.vault-token (trimmed) when VAULT_TOKEN is unset or empty; the variable wins", () => {
    expect(read({}, "vault", homeWithToken)).toMatchObject({ token: "s.fromfile", tokenFrom: join(homeWithToken, ".vault-token") });
    expect(read({ VAULT_TOKEN: "" }, "vault", homeWithToken).token).toBe("s.fromfile");
    expect(read({ VAULT_TOKEN: "s.env" }, "vault", homeWithToken).token).toBe("s.env");
    // bao reads the same ~/.vault-token (internal token helper), and BAO_TOKEN_PATH overrides it.
    expect(read({}, "openbao", homeWithToken).token).toBe("s.fromfile");
    writeFileSync(join(dir, "bao-token"), "s.baopath\n");
    expect(read({ BAO_TOKEN_PATH: join(dir, "bao-token") }, "openbao", homeWithToken)).toMatchObject({
      token: "s.baopath",
      tokenFrom: join(dir, "bao-token"),
    });
    expect(read({ BAO_TOKEN_PATH: join(dir, "bao-token") }, "vault", homeWithToken).token).toBe("s.fromfile");
    // No file: no token, no error.
    expect(read({ BAO_TOKEN_PATH: join(dir, "missing") }, "openbao").token).toBeUndefined();
  });

  it("never shows the token (or the client key) in JSON, inspect or the description", () => {
    const s = read({
      VAULT_TOKEN: "s.secret-token",
      VAULT_CLIENT_CERT: join(dir, "client.pem"),
      VAULT_CLIENT_KEY: join(dir, "client-key.pem"),
    });
    expect(s.token).toBe("s.secret-token");
    for (const text of [JSON.stringify(s), inspect(s, { depth: 5 }), describeVaultSettings(s)]) {
      expect(text).not.toContain("s.secret-token");
      expect(text).not.toContain("MIIkey");
    }
    expect(JSON.stringify(s)).toContain("<redacted>");
    expect(describeVaultSettings(s)).toContain("token from VAULT_TOKEN");
    // A spread is plain data (for VaultClient options) and still carries the token.
    expect({ ...s }.token).toBe("s.secret-token");
  });

  it("rejects a malformed address with one line naming the variable", () => {
    expect(usageError(() => read({ VAULT_ADDR: "vault:8200" })).message).toMatch(/^VAULT_ADDR="vault:8200" is not a Vault address/);
    expect(usageError(() => read({ VAULT_ADDR: "ftp://x" })).message).toMatch(/VAULT_ADDR/);
    expect(usageError(() => read({ BAO_ADDR: "nope" }, "openbao")).message).toMatch(/^BAO_ADDR="nope"/);
  });

  it("an unreadable token file is an error (a missing one is not)", () => {
    if (process.getuid?.() === 0) return; // root reads anything
    const h = join(dir, "home3");
    mkdirSync(h);
    writeFileSync(join(h, ".vault-token"), "x");
    chmodSync(join(h, ".vault-token"), 0);
    expect(usageError(() => read({}, "vault", h)).message).toMatch(/cannot read the token file/);
  });
});

describe("vaultSettingsFromEnv: TLS", () => {
  it("VAULT_CACERT: every certificate of the file; it wins over VAULT_CAPATH", () => {
    const s = read({ VAULT_CACERT: join(dir, "ca.pem"), VAULT_CAPATH: join(dir, "capath") });
    expect(s.tls.ca).toHaveLength(2);
    expect(s.from.ca).toBe("VAULT_CACERT");
  });

  it("VAULT_CAPATH: every PEM file below the directory", () => {
    const s = read({ VAULT_CAPATH: join(dir, "capath") });
    expect(s.tls.ca).toEqual([CERT("one").trim(), CERT("two").trim()]);
    expect(s.from.ca).toBe("VAULT_CAPATH");
  });

  it("VAULT_CACERT_BYTES: inline PEM", () => {
    expect(read({ VAULT_CACERT_BYTES: CERT("inline") }).tls.ca).toHaveLength(1);
  });

  it("client certificate and key, server name", () => {
    const s = read({
      VAULT_CLIENT_CERT: join(dir, "client.pem"),
      VAULT_CLIENT_KEY: join(dir, "client-key.pem"),
      VAULT_TLS_SERVER_NAME: "vault.internal",
    });
    expect(s.tls).toMatchObject({ cert: CERT("client"), key: KEY, servername: "vault.internal", rejectUnauthorized: true });
    const b = read({ BAO_CLIENT_CERT: join(dir, "client.pem"), BAO_CLIENT_KEY: join(dir, "client-key.pem") }, "openbao");
    expect(b.from).toMatchObject({ cert: "BAO_CLIENT_CERT", key: "BAO_CLIENT_KEY" });
  });

  it("bad TLS input: one clear line each", () => {
    expect(usageError(() => read({ VAULT_CACERT: join(dir, "missing.pem") })).message).toMatch(
      /^cannot read VAULT_CACERT .*missing\.pem: ENOENT/,
    );
    expect(usageError(() => read({ VAULT_CACERT: join(dir, "not-pem.txt") })).message).toMatch(/^VAULT_CACERT .* holds no PEM certificate/);
    expect(usageError(() => read({ VAULT_CAPATH: join(dir, "ca.pem") })).message).toMatch(/^cannot read VAULT_CAPATH .*not a directory/);
    expect(usageError(() => read({ VAULT_CAPATH: join(dir, "badpath") })).message).toMatch(
      /^VAULT_CAPATH .*x\.pem holds no PEM certificate/,
    );
    expect(usageError(() => read({ VAULT_CLIENT_CERT: join(dir, "client.pem") })).message).toMatch(
      /^VAULT_CLIENT_CERT is set without VAULT_CLIENT_KEY/,
    );
    expect(usageError(() => read({ BAO_CLIENT_KEY: join(dir, "client-key.pem") }, "openbao")).message).toMatch(
      /^BAO_CLIENT_KEY is set without BAO_CLIENT_CERT/,
    );
    expect(
      usageError(() => read({ VAULT_CLIENT_CERT: join(dir, "client-key.pem"), VAULT_CLIENT_KEY: join(dir, "client-key.pem") })).message,
    ).toMatch(/VAULT_CLIENT_CERT holds no PEM certificate/);
    expect(usageError(() => read({ VAULT_SKIP_VERIFY: "yes" })).message).toMatch(/^VAULT_SKIP_VERIFY="yes" is not a boolean/);
  });

  it("VAULT_SKIP_VERIFY: Go's ParseBool values; true turns verification off with a one-line warning", () => {
    for (const v of ["1", "t", "T", "TRUE", "true", "True"]) expect(parseGoBool(v)).toBe(true);
    for (const v of ["0", "f", "F", "FALSE", "false", "False"]) expect(parseGoBool(v)).toBe(false);
    for (const v of ["yes", "on", "tRuE", " 1"]) expect(parseGoBool(v)).toBeUndefined();
    warnings.length = 0;
    expect(read({ VAULT_SKIP_VERIFY: "false" }).tls.rejectUnauthorized).toBe(true);
    expect(read({ VAULT_SKIP_VERIFY: "" }).tls.rejectUnauthorized).toBe(true);
    expect(warnings).toEqual([]);
    const s = read({ VAULT_ADDR: "https://vault.example.com:8200", VAULT_SKIP_VERIFY: "1", VAULT_TOKEN: "s.tok" });
    expect(s.tls.rejectUnauthorized).toBe(false);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^VAULT_SKIP_VERIFY is set: the TLS certificate of https:\/\/vault\.example\.com:8200 is not verified/);
    expect(warnings[0]).not.toContain("\n");
    expect(warnings[0]).not.toContain("s.tok");
    expect(describeVaultSettings(s)).toContain("TLS verification OFF");
  });
});

describe("vaultSettingsFromEnv: proxies", () => {
  it("reads HTTP(S)_PROXY and NO_PROXY upper case first, and VAULT_PROXY_ADDR over VAULT_HTTP_PROXY", () => {
    expect(read({ HTTPS_PROXY: "http://up:1", https_proxy: "http://low:1", no_proxy: "a", http_proxy: "http://h:1" }).proxy).toEqual({
      httpProxy: "http://h:1",
      httpsProxy: "http://up:1",
      noProxy: "a",
      vaultProxy: undefined,
    });
    expect(read({ VAULT_HTTP_PROXY: "http://a:1", VAULT_PROXY_ADDR: "http://b:1" }).proxy.vaultProxy).toBe("http://b:1");
    expect(read({ VAULT_HTTP_PROXY: "http://a:1", BAO_HTTP_PROXY: "http://c:1" }, "openbao").proxy.vaultProxy).toBe("http://c:1");
    expect(usageError(() => read({ HTTPS_PROXY: "http://us:pw@[bad" })).message).not.toContain("pw");
  });
});
