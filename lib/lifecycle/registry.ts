import type { TargetProvider } from "./provider.ts";

/** How Vault runs on a target: as a local process, a container, inside the cluster, or the user's own. */
export type VaultMode = "process" | "container" | "in-cluster" | "external";

/**
 * Target name -> provider, and the Vault modes it offers (the first is the default). A provider
 * is one file under lib/providers/ exporting a `TargetProvider` plus one entry here: the
 * configuration takes its target names and modes from this table. Modules load on demand (kind's
 * need Docker's libraries, the existing target's the Kubernetes client), so a run loads only its
 * own provider.
 */
const REGISTRY = {
  local: { vaultModes: ["process"], load: async () => (await import("../providers/local.ts")).localProvider },
  kind: { vaultModes: ["container", "in-cluster"], load: async () => (await import("../providers/kind.ts")).kindProvider },
  existing: { vaultModes: ["external", "process"], load: async () => (await import("../providers/existing.ts")).existingProvider },
} satisfies Record<string, { vaultModes: readonly VaultMode[]; load: () => Promise<TargetProvider> }>;

export type TargetName = keyof typeof REGISTRY;
export const TARGETS = Object.keys(REGISTRY) as TargetName[];
export const VAULT_MODES = Object.fromEntries(TARGETS.map((name) => [name, REGISTRY[name].vaultModes])) as unknown as Record<
  TargetName,
  readonly VaultMode[]
>;

export function providerFor(target: TargetName): Promise<TargetProvider> {
  return REGISTRY[target].load();
}
