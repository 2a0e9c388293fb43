import { readFileSync, readdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { UsageError, errorMessage } from "../errors.ts";
import { log } from "../log.ts";

/**
 * Vault's client conventions, read from the environment the way the `vault` and `bao` CLIs (and
 * their Go api package) read them, so that a shell or CI job already set up for the CLI works here
 * unchanged:
 *
 * | variable (vault / openbao) | meaning |
 * |---|---|
 * | VAULT_ADDR / BAO_ADDR | Vault's address (default https://127.0.0.1:8200, as the CLI); VAULT_AGENT_ADDR wins over it |
 * | VAULT_TOKEN / BAO_TOKEN | token; when unset, the token helper file (below) |
 * | ~/.vault-token (both CLIs; bao: BAO_TOKEN_PATH overrides) | token file, whitespace trimmed |
 * | VAULT_CACERT, VAULT_CACERT_BYTES, VAULT_CAPATH | CAs to trust instead of the system roots (first set wins, in that order) |
 * | VAULT_CLIENT_CERT + VAULT_CLIENT_KEY (or *_BYTES) | client certificate for mutual TLS: both or neither |
 * | VAULT_TLS_SERVER_NAME | SNI and the name the server certificate must match |
 * | VAULT_SKIP_VERIFY | Go strconv.ParseBool (1/t/true/TRUE/0/f/false...); true disables verification, with a warning |
 * | VAULT_NAMESPACE | X-Vault-Namespace on every request (Enterprise, HCP, OpenBao) |
 * | VAULT_PROXY_ADDR (supersedes VAULT_HTTP_PROXY) | a proxy for every Vault request, ignoring NO_PROXY |
 * | HTTPS_PROXY, HTTP_PROXY, NO_PROXY (or lower case) | Go's ProxyFromEnvironment: see transport.ts |
 *
 * For flavor "openbao", each BAO_X takes precedence over VAULT_X whenever BAO_X is present, even
 * empty (openbao api/env.go ReadBaoVariable); for "vault" BAO_* are ignored.
 */
export type VaultFlavor = "vault" | "openbao";

/** TLS options in the shape of Node's tls.connect (and undici's `connect`/`requestTls`). */
export interface VaultTls {
  /** PEM CA certificates to trust instead of the system roots; undefined: the system roots. */
  ca?: string[];
  /** PEM client certificate and key (mutual TLS). */
  cert?: string;
  key?: string;
  /** SNI and the name the server certificate must match (VAULT_TLS_SERVER_NAME). */
  servername?: string;
  /** False only with VAULT_SKIP_VERIFY. */
  rejectUnauthorized: boolean;
}

/** Proxy variables as Go's http.ProxyFromEnvironment reads them (upper case first). */
export interface ProxyEnv {
  httpProxy?: string;
  httpsProxy?: string;
  noProxy?: string;
  /** VAULT_PROXY_ADDR or VAULT_HTTP_PROXY: every Vault request through this proxy, NO_PROXY ignored. */
  vaultProxy?: string;
}

export interface VaultSettings {
  flavor: VaultFlavor;
  /** Vault's address, without a trailing slash. */
  address: string;
  /** The variable the address came from, or "default". */
  addressFrom: string;
  /** Never logged: toJSON and util.inspect show it redacted. */
  token?: string;
  /** The variable or file the token came from (a name, never the value). */
  tokenFrom?: string;
  namespace?: string;
  tls: VaultTls;
  proxy: ProxyEnv;
  /** Variable names that set each TLS option (for messages), e.g. { ca: "VAULT_CACERT" }. */
  from: Partial<Record<"ca" | "cert" | "key" | "servername" | "skipVerify" | "namespace", string>>;
}

export interface VaultEnvOptions {
  /** Home directory of the token file (default: os.homedir()). */
  homeDir?: string;
  /** Where the VAULT_SKIP_VERIFY warning goes (default: the harness log, on stderr). */
  warn?: (msg: string) => void;
}

export const DEFAULT_VAULT_ADDR = "https://127.0.0.1:8200";

/** Go's strconv.ParseBool. */
export function parseGoBool(v: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(v)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(v)) return false;
  return undefined;
}

export function vaultSettingsFromEnv(env: Record<string, string | undefined>, flavor: VaultFlavor, o: VaultEnvOptions = {}): VaultSettings {
  /** A Vault variable by its suffix ("ADDR"): [name it came from, value], as the flavor's CLI reads it. */
  const read = (suffix: string): [string, string] | undefined => {
    if (flavor === "openbao" && env[`BAO_${suffix}`] !== undefined) return [`BAO_${suffix}`, env[`BAO_${suffix}`]!];
    const v = env[`VAULT_${suffix}`];
    return v === undefined ? undefined : [`VAULT_${suffix}`, v];
  };
  /** Like read, but an empty value counts as unset (the CLI's `if v := ...; v != ""`). */
  const get = (suffix: string): [string, string] | undefined => {
    const r = read(suffix);
    return r && r[1] !== "" ? r : undefined;
  };
  const name = (suffix: string) => (flavor === "openbao" ? `BAO_${suffix}` : `VAULT_${suffix}`);

  // Address: VAULT_AGENT_ADDR wins over VAULT_ADDR (api.NewClient prefers the agent's address).
  const addr = get("AGENT_ADDR") ?? get("ADDR");
  const address = (addr?.[1] ?? DEFAULT_VAULT_ADDR).replace(/\/+$/, "");
  let url: URL | undefined;
  try {
    url = new URL(address);
  } catch {
    // below
  }
  if (!url || !["http:", "https:"].includes(url.protocol) || !url.hostname)
    throw new UsageError(`${addr?.[0] ?? name("ADDR")}="${address}" is not a Vault address: use a URL like https://vault.example.com:8200`);

  // Token: the variable, else the token helper file (both CLIs: ~/.vault-token; bao: BAO_TOKEN_PATH).
  const from: VaultSettings["from"] = {};
  let token: string | undefined;
  let tokenFrom: string | undefined;
  const tok = get("TOKEN");
  if (tok) [tokenFrom, token] = tok;
  else {
    const pathVar = flavor === "openbao" ? get("TOKEN_PATH") : undefined;
    const file = pathVar?.[1] ?? join(o.homeDir ?? homedir(), ".vault-token");
    let text: string | undefined;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT")
        throw new UsageError(`cannot read the token file ${file}${pathVar ? ` (${pathVar[0]})` : ""}: ${firstLine(err)}`, { cause: err });
    }
    if (text !== undefined && text.trim() !== "") {
      token = text.trim();
      tokenFrom = file;
    }
  }

  // TLS: CA (file, bytes, directory: first set wins, as go-rootcerts), client pair, name, verify.
  const tls: VaultTls = { rejectUnauthorized: true };
  const caCert = get("CACERT");
  const caBytes = get("CACERT_BYTES");
  const caPath = get("CAPATH");
  if (caCert) {
    tls.ca = pemCertificates(readText(caCert), caCert);
    from.ca = caCert[0];
  } else if (caBytes) {
    tls.ca = pemCertificates(caBytes[1], [caBytes[0], "(inline)"]);
    from.ca = caBytes[0];
  } else if (caPath) {
    tls.ca = caDirectory(caPath);
    from.ca = caPath[0];
  }

  const certFile = get("CLIENT_CERT");
  const keyFile = get("CLIENT_KEY");
  const certBytes = get("CLIENT_CERT_BYTES");
  const keyBytes = get("CLIENT_KEY_BYTES");
  if (certFile && keyFile) {
    tls.cert = readText(certFile);
    tls.key = readText(keyFile);
    [from.cert, from.key] = [certFile[0], keyFile[0]];
  } else if (certBytes && keyBytes) {
    [tls.cert, tls.key] = [certBytes[1], keyBytes[1]];
    [from.cert, from.key] = [certBytes[0], keyBytes[0]];
  } else if (certFile || keyFile || certBytes || keyBytes) {
    const set = (certFile ?? keyFile ?? certBytes ?? keyBytes)![0];
    const other = set.endsWith("CERT") || set.endsWith("CERT_BYTES") ? set.replace("CERT", "KEY") : set.replace("KEY", "CERT");
    throw new UsageError(`${set} is set without ${other}: mutual TLS needs both the PEM client certificate and its key (or neither)`);
  }
  if (tls.cert !== undefined && !/-----BEGIN [A-Z ]*CERTIFICATE-----/.test(tls.cert))
    throw new UsageError(`${from.cert} holds no PEM certificate: point it at the PEM client certificate`);
  if (tls.key !== undefined && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(tls.key))
    throw new UsageError(`${from.key} holds no PEM private key: point it at the client certificate's PEM key`);

  const serverName = get("TLS_SERVER_NAME");
  if (serverName) [from.servername, tls.servername] = serverName;

  const skip = get("SKIP_VERIFY");
  if (skip) {
    const b = parseGoBool(skip[1]);
    if (b === undefined)
      throw new UsageError(`${skip[0]}="${skip[1]}" is not a boolean: use true or false (1/t/TRUE/0/f/FALSE also work, as for the CLI)`);
    if (b) {
      tls.rejectUnauthorized = false;
      from.skipVerify = skip[0];
      if (url.protocol === "https:")
        (o.warn ?? ((m: string) => log.warn("vault", m)))(
          `${skip[0]} is set: the TLS certificate of ${url.origin} is not verified, anyone on the network path can read the token`,
        );
    }
  }

  const ns = get("NAMESPACE");
  if (ns) [from.namespace] = ns;

  // Proxies: Go reads upper case first; Vault's own proxy variable supersedes them all.
  const any = (...names: string[]) => names.map((n) => env[n]).find((v) => v !== undefined && v !== "");
  const proxy: ProxyEnv = {
    httpProxy: any("HTTP_PROXY", "http_proxy"),
    httpsProxy: any("HTTPS_PROXY", "https_proxy"),
    noProxy: any("NO_PROXY", "no_proxy"),
    vaultProxy: get("PROXY_ADDR")?.[1] ?? get("HTTP_PROXY")?.[1],
  };
  for (const [k, v] of Object.entries(proxy)) {
    if (k === "noProxy" || v === undefined) continue;
    if (!URL.canParse(v.includes("://") ? v : `http://${v}`))
      throw new UsageError(`the proxy "${redactUserinfo(v)}" (${k}) is not a URL: use http://host:port`);
  }

  const settings: VaultSettings = {
    flavor,
    address,
    addressFrom: addr?.[0] ?? "default",
    ...(token !== undefined ? { token, tokenFrom } : {}),
    ...(ns ? { namespace: ns[1].replace(/^\/+|\/+$/g, "") } : {}),
    tls,
    proxy,
    from,
  };
  return protectToken(settings);
}

/** One line for logs and plans: where each setting came from, never the token or a key. */
export function describeVaultSettings(s: VaultSettings): string {
  const parts = [`${s.flavor} at ${s.address} (${s.addressFrom})`];
  parts.push(s.token ? `token from ${s.tokenFrom}` : "no token");
  if (s.namespace) parts.push(`namespace ${s.namespace}`);
  if (s.from.ca) parts.push(`CA from ${s.from.ca} (${s.tls.ca?.length ?? 0} certificates)`);
  if (s.from.cert) parts.push(`client certificate from ${s.from.cert}`);
  if (s.tls.servername) parts.push(`server name ${s.tls.servername}`);
  if (!s.tls.rejectUnauthorized) parts.push("TLS verification OFF");
  if (s.proxy.vaultProxy) parts.push(`proxy ${redactUserinfo(s.proxy.vaultProxy)}`);
  return parts.join(", ");
}

/** toJSON and util.inspect of the settings show the token and client key redacted (non-enumerable, so spreads stay plain data). */
export function protectToken(s: VaultSettings): VaultSettings {
  const safe = () => ({
    ...s,
    ...(s.token !== undefined ? { token: "<redacted>" } : {}),
    tls: { ...s.tls, ...(s.tls.key !== undefined ? { key: "<redacted>" } : {}) },
  });
  Object.defineProperty(s, "toJSON", { value: safe, enumerable: false });
  Object.defineProperty(s, inspect.custom, { value: () => safe(), enumerable: false });
  return s;
}

function redactUserinfo(u: string): string {
  return u.replace(/\/\/[^/@]*@/, "//<redacted>@");
}

function firstLine(err: unknown): string {
  return errorMessage(err).split("\n")[0] ?? "";
}

function readText([variable, file]: [string, string]): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${variable} ${file}: ${firstLine(err)}`, { cause: err });
  }
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function pemCertificates(text: string, [variable, file]: [string, string]): string[] {
  const certs = text.match(PEM_CERT) ?? [];
  if (certs.length === 0)
    throw new UsageError(`${variable} ${file} holds no PEM certificate: point it at the PEM CA of Vault's TLS certificate`);
  return certs;
}

/** Every file below the directory must be PEM certificates (go-rootcerts LoadCAPath walks it recursively). */
function caDirectory([variable, dir]: [string, string]): string[] {
  let entries: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new Error("not a directory");
    entries = readdirSync(dir, { recursive: true, encoding: "utf8" }).sort();
  } catch (err) {
    throw new UsageError(`cannot read ${variable} ${dir}: ${firstLine(err)}: point it at a directory of PEM CA certificates`, {
      cause: err,
    });
  }
  const certs: string[] = [];
  for (const rel of entries) {
    const file = join(dir, rel);
    if (statSync(file, { throwIfNoEntry: false })?.isFile() !== true) continue;
    certs.push(...pemCertificates(readText([variable, file]), [variable, file]));
  }
  if (certs.length === 0)
    throw new UsageError(`${variable} ${dir} holds no PEM certificate: point it at a directory of PEM CA certificates`);
  return certs;
}
