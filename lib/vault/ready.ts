import { readFile } from "node:fs/promises";
import { vaultBinary, type Config, type Flavor } from "../config.ts";
import { HarnessError, UsageError, errorMessage } from "../errors.ts";
import { httpJson } from "../http.ts";
import { registerSecret } from "../redact.ts";
import { waitFor, type WaitOptions } from "../wait.ts";
import { VaultClient } from "./client.ts";

export interface VaultHealth {
  initialized?: boolean;
  sealed?: boolean;
  standby?: boolean;
  version?: string;
}

/**
 * A Vault the harness did not start (the existing target) must be reachable, initialized,
 * unsealed, and the token must be valid; each failure is one line naming what to do, exit code 2.
 *
 * sys/health answers 200 (active), 429 (standby), 472/473 (DR / performance standby),
 * 501 (not initialized) and 503 (sealed); VaultClient returns every status as data, so the
 * body's `initialized` / `sealed` decide, with the status as a fallback for bodies without them.
 * Only the address and the HTTP status are ever printed, never the token.
 */
export async function assertVaultReady(vault: VaultClient, o: { flavor: Flavor }): Promise<VaultHealth> {
  const address = vault.address;
  const cli = vaultBinary(o.flavor);
  const health = await vault.read<VaultHealth>("sys/health").catch((err) => {
    throw new HarnessError(`cannot reach Vault at ${address}: ${errorMessage(err)}`, { exitCode: 2, cause: err });
  });
  const body: VaultHealth = health.body && typeof health.body === "object" ? health.body : {};
  const initialized = typeof body.initialized === "boolean" ? body.initialized : health.status !== 501;
  const sealed = typeof body.sealed === "boolean" ? body.sealed : health.status === 503;
  if (!initialized)
    throw new HarnessError(
      `Vault at ${address} is not initialized: initialize and unseal it (${cli} operator init, then ${cli} operator unseal) and run again`,
      { exitCode: 2 },
    );
  if (sealed) throw new HarnessError(`Vault at ${address} is sealed: unseal it (${cli} operator unseal) and run again`, { exitCode: 2 });
  const self = await vault.read("auth/token/lookup-self").catch((err) => {
    throw new HarnessError(`cannot reach Vault at ${address}: ${errorMessage(err)}`, { exitCode: 2, cause: err });
  });
  if (self.status !== 200)
    throw new HarnessError(
      `VAULT_TOKEN is not valid for ${address} (lookup-self: HTTP ${self.status}): set it to a token of that Vault allowed to manage auth mounts and policies`,
      { exitCode: 2 },
    );
  return body;
}

/**
 * Preflight of the existing target's external Vault (VAULT_ADDR, VAULT_TOKEN, VAULT_CACERT),
 * independent of the cluster: a sealed Vault is reported as such even when Kubernetes is
 * unreachable too. Nothing to check when the variables are missing (the provider says so).
 */
export async function checkExternalVault(config: Pick<Config, "flavor" | "existing">): Promise<void> {
  const { vaultAddr, vaultToken, vaultCACert } = config.existing;
  if (!vaultAddr || !vaultToken) return;
  registerSecret(vaultToken);
  let caCert: string | undefined;
  if (vaultCACert) {
    try {
      caCert = await readFile(vaultCACert, "utf8");
    } catch (err) {
      throw new UsageError(
        `cannot read VAULT_CACERT ${vaultCACert}: ${errorMessage(err).split("\n")[0]}: point it at the PEM CA of Vault's TLS certificate`,
        { cause: err },
      );
    }
  }
  await assertVaultReady(new VaultClient({ address: vaultAddr, token: vaultToken, caCert, timeoutMs: 10_000 }), config);
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
