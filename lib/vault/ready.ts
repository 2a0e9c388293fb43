import { externalVaultSettings, vaultBinary, type Config, type Flavor } from "../config.ts";
import { HarnessError, errorMessage } from "../errors.ts";
import { httpJson } from "../http.ts";
import { redact } from "../redact.ts";
import { waitFor, type WaitOptions } from "../wait.ts";
import type { VaultClient } from "./client.ts";
import { closeVaultClient, externalVaultClient } from "./external.ts";

export interface VaultHealth {
  initialized?: boolean;
  sealed?: boolean;
  standby?: boolean;
  version?: string;
}

/**
 * A Vault the harness did not start (the existing target, the audit) must be reachable,
 * initialized, unsealed, and the token must be valid; each failure is one line naming what to do,
 * exit code 2.
 *
 * sys/health answers 200 (active), 429 (standby), 472/473 (DR / performance standby),
 * 501 (not initialized) and 503 (sealed); VaultClient returns every status as data, so the
 * body's `initialized` / `sealed` decide, with the status as a fallback for bodies without them.
 * sys/health is asked in the root namespace (where it lives), lookup-self in the client's own
 * (VAULT_NAMESPACE), as the CLI does. Only the address, namespace and HTTP status are ever
 * printed, never the token.
 */
export async function assertVaultReady(
  vault: VaultClient,
  o: {
    flavor: Flavor;
    /** Where the token came from: a variable name or a file (VaultSettings.tokenFrom); default VAULT_TOKEN. */
    tokenFrom?: string;
    /** What the token must be allowed to do, for the message of an invalid one. */
    may?: string;
  },
): Promise<VaultHealth> {
  const address = vault.address;
  const cli = vaultBinary(o.flavor);
  const unreachable = (err: unknown) => {
    throw new HarnessError(`cannot reach Vault at ${address}: ${errorMessage(err)}`, { exitCode: 2, cause: err });
  };
  const health = await vault.withNamespace(undefined).read<VaultHealth>("sys/health").catch(unreachable);
  const body: VaultHealth = health.body && typeof health.body === "object" ? health.body : {};
  const initialized = typeof body.initialized === "boolean" ? body.initialized : health.status !== 501;
  const sealed = typeof body.sealed === "boolean" ? body.sealed : health.status === 503;
  if (!initialized)
    throw new HarnessError(
      `Vault at ${address} is not initialized: initialize and unseal it (${cli} operator init, then ${cli} operator unseal) and run again`,
      { exitCode: 2 },
    );
  if (sealed) throw new HarnessError(`Vault at ${address} is sealed: unseal it (${cli} operator unseal) and run again`, { exitCode: 2 });
  const self = await vault.read("auth/token/lookup-self").catch(unreachable);
  if (self.status !== 200) {
    const from = o.tokenFrom ?? "VAULT_TOKEN";
    const token = /^[A-Z_]+$/.test(from) ? from : `the token in ${from}`;
    const ns = vault.opts.namespace;
    // Valid at root but not in the namespace: the namespace is wrong (or missing), not the token.
    if (ns && (await vault.withNamespace(undefined).read("auth/token/lookup-self").catch(unreachable)).status === 200)
      throw new HarnessError(
        `${token} is valid at ${address} but not in namespace ${ns} (lookup-self: HTTP ${self.status}${vaultErrors(self)}): check that the namespace exists (${cli} namespace list) and the token may use it`,
        { exitCode: 2 },
      );
    throw new HarnessError(
      `${token} is not valid for ${address}${ns ? ` in namespace ${ns}` : ""} (lookup-self: HTTP ${self.status}): set it to a token of that Vault ${o.may ?? "allowed to manage auth mounts and policies"}`,
      { exitCode: 2 },
    );
  }
  return body;
}

function vaultErrors(res: { body?: unknown }): string {
  const errors = res.body && typeof res.body === "object" && "errors" in res.body ? (res.body as { errors?: unknown }).errors : undefined;
  return Array.isArray(errors) && errors.length ? `: ${redact(errors.map(String).join("; "))}` : "";
}

/**
 * Preflight of the existing target's external Vault (its client conventions: address, token,
 * CA, client certificate, namespace, proxy), independent of the cluster: a sealed Vault is
 * reported as such even when Kubernetes is unreachable too. Bad settings (an unreadable
 * VAULT_CACERT, a client certificate without its key, ...) are one line and exit 2 here; missing
 * address or token are left to the provider's own message.
 */
export async function checkExternalVault(config: Pick<Config, "flavor" | "env" | "home">): Promise<void> {
  const settings = externalVaultSettings(config);
  if (settings.addressFrom === "default" || !settings.token) return;
  const vault = externalVaultClient(settings);
  try {
    await assertVaultReady(vault, { flavor: config.flavor, ...(settings.tokenFrom ? { tokenFrom: settings.tokenFrom } : {}) });
  } finally {
    await closeVaultClient(vault);
  }
}

/**
 * The one wait for a Vault the harness started (the local and existing targets' dev server, kind's
 * container or Deployment): polls sys/health, unauthenticated, until it answers 200 initialized
 * and unsealed; returns the version it reports. `what` names the wait in its error; `failFast`
 * and `evidence` come from whoever runs the server (a process that exited, its log tail).
 */
export function waitForVaultUnsealed(
  address: string,
  o: Pick<WaitOptions, "what" | "timeoutMs" | "failFast" | "evidence" | "signal">,
): Promise<string> {
  return waitFor(async () => {
    const res = await httpJson<VaultHealth>({ url: `${address}/v1/sys/health`, timeoutMs: 2000 });
    return res.status === 200 && res.body?.initialized && !res.body.sealed ? (res.body.version ?? "unknown") : undefined;
  }, o);
}
