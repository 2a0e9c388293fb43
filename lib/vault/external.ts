import { readFile } from "node:fs/promises";
import type { TargetInfo } from "../lifecycle/info.ts";
import { UsageError } from "../errors.ts";
import { registerSecret } from "../redact.ts";
import { VaultClient } from "./client.ts";
import { protectToken, type VaultSettings } from "./env.ts";
import { proxyFor } from "./transport.ts";

/**
 * A Vault the harness did not start (the existing target's, the audit's), reached with Vault's
 * client conventions (lib/vault/env.ts), and how those conventions travel to vitest's workers:
 * TargetInfo carries paths of 0600 files and plain settings, never a token or key material.
 */

/** The part of TargetInfo.vault that says how to reach an external Vault besides its address and token. */
export type VaultConnection = Pick<
  TargetInfo["vault"],
  "caCertFile" | "clientCertFile" | "clientKeyFile" | "tlsServerName" | "tlsSkipVerify" | "namespace" | "proxyFile"
>;

/**
 * The address and token must be given: the address by a variable (unlike the CLI, which falls
 * back to https://127.0.0.1:8200: a run on your infrastructure does not guess which Vault), the
 * token by a variable or the token file. One line, exit 2, naming the flavor's variables.
 */
export function requireAddressAndToken(s: VaultSettings, who: string, o: { token: string; otherwise?: string }): void {
  registerSecret(s.token);
  if (s.addressFrom !== "default" && s.token) return;
  const [addr, tok, file] =
    s.flavor === "openbao"
      ? ["BAO_ADDR", "BAO_TOKEN", "~/.vault-token or BAO_TOKEN_PATH"]
      : ["VAULT_ADDR", "VAULT_TOKEN", "~/.vault-token"];
  const alt = s.flavor === "openbao" ? " (or VAULT_ADDR and VAULT_TOKEN)" : "";
  throw new UsageError(
    `${who} needs ${addr} and ${tok}${alt} (${o.token}; the token may also come from ${file})${o.otherwise ? `, ${o.otherwise}` : ""}`,
  );
}

/** A client for the external Vault; close its connections with `closeVaultClient` when done. */
export function externalVaultClient(s: VaultSettings, o: { timeoutMs?: number } = {}): VaultClient {
  registerSecret(s.token);
  return VaultClient.fromSettings(s, { timeoutMs: o.timeoutMs ?? 10_000 });
}

/** Closes the client's connections (its dispatcher), if it has its own. */
export async function closeVaultClient(vault: VaultClient): Promise<void> {
  await vault.opts.dispatcher?.close();
}

/** Where the settings came from, for the plan and the attach line: the address, and the namespace if any. */
export function vaultWhere(s: Pick<VaultSettings, "address" | "namespace">): string {
  return s.namespace ? `${s.address} (namespace ${s.namespace})` : s.address;
}

/**
 * The settings as TargetInfo carries them: CA, client certificate and key, and the proxy (whose URL
 * may hold credentials) written as 0600 files of the run; server name, skip-verify and namespace
 * as they are. The proxy is the one chosen for Vault's address (Go's ProxyFromEnvironment rules,
 * lib/vault/transport.ts), so workers use it without re-reading any environment.
 */
export async function vaultConnection(
  ws: { writeSecret(name: string, content: string): Promise<string> },
  s: VaultSettings,
): Promise<VaultConnection> {
  const proxy = proxyFor(s.address, s.proxy);
  const out: VaultConnection = {};
  if (s.tls.ca) out.caCertFile = await ws.writeSecret("vault-ca.crt", s.tls.ca.join("\n") + "\n");
  if (s.tls.cert !== undefined && s.tls.key !== undefined) {
    out.clientCertFile = await ws.writeSecret("vault-client.crt", s.tls.cert);
    out.clientKeyFile = await ws.writeSecret("vault-client.key", s.tls.key);
  }
  if (s.tls.servername) out.tlsServerName = s.tls.servername;
  if (!s.tls.rejectUnauthorized) out.tlsSkipVerify = true;
  if (s.namespace) out.namespace = s.namespace;
  if (proxy) out.proxyFile = await ws.writeSecret("vault-proxy", proxy);
  return out;
}

/** The run's Vault settings rebuilt from TargetInfo (in a worker, a globalSetup, a script attached to env:up). */
export async function vaultSettingsFromTarget(info: TargetInfo): Promise<VaultSettings> {
  const v = info.vault;
  const read = async (what: string, file: string) => {
    try {
      return await readFile(file, "utf8");
    } catch (err) {
      throw new UsageError(`cannot read the target's ${what} ${file}: ${(err as Error).message.split("\n")[0]}`, { cause: err });
    }
  };
  const token = registerSecret((await read("Vault token", v.tokenFile)).trim());
  const ca = v.caCertFile
    ? (await read("Vault CA", v.caCertFile)).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)
    : null;
  const cert = v.clientCertFile ? await read("Vault client certificate", v.clientCertFile) : undefined;
  const key = v.clientKeyFile ? await read("Vault client key", v.clientKeyFile) : undefined;
  const proxy = v.proxyFile ? registerSecret((await read("Vault proxy", v.proxyFile)).trim()) : undefined;
  return protectToken({
    flavor: v.flavor,
    address: v.address,
    addressFrom: "target info",
    token,
    tokenFrom: v.tokenFile,
    ...(v.namespace ? { namespace: v.namespace } : {}),
    tls: {
      ...(ca ? { ca } : {}),
      ...(cert !== undefined && key !== undefined ? { cert, key } : {}),
      ...(v.tlsServerName ? { servername: v.tlsServerName } : {}),
      rejectUnauthorized: v.tlsSkipVerify !== true,
    },
    proxy: proxy ? { vaultProxy: proxy } : {},
    from: {
      ...(v.caCertFile ? { ca: v.caCertFile } : {}),
      ...(v.clientCertFile ? { cert: v.clientCertFile, key: v.clientKeyFile } : {}),
      ...(v.tlsSkipVerify ? { skipVerify: "target info" } : {}),
    },
  });
}

/** The target's Vault client with its root token, as the run reaches it (TLS, client certificate, namespace, proxy). */
export async function vaultClientForTarget(info: TargetInfo): Promise<VaultClient> {
  return VaultClient.fromSettings(await vaultSettingsFromTarget(info));
}
