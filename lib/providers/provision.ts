import type { Component, ResolvedBinary } from "../binaries/index.ts";
import { childEnv, vaultBinary, type Config } from "../config.ts";
import { HarnessError } from "../errors.ts";
import type { LocalBinaries } from "./local.ts";

export function componentsFor(config: Pick<Config, "flavor">): Component[] {
  return ["etcd", "kube-apiserver", "kube-controller-manager", vaultBinary(config.flavor)];
}

/** The versions chosen instead of the pins: --vault-version (HashiCorp Vault only). */
export function versionChoice(config: Pick<Config, "flavor" | "vault">): { vault?: string } {
  return config.flavor === "vault" && config.vault.version ? { vault: config.vault.version } : {};
}

/**
 * `components`, from the user's paths, the cache, downloads or Go builds, as the config says
 * (cache dir, overrides, --offline, --no-build; `versions` default: versionChoice). npm run setup
 * provisions through here too.
 */
export async function provisionComponents(
  config: Config,
  components: Component[],
  o: { versions?: { vault?: string }; signal?: AbortSignal } = {},
): Promise<Record<string, ResolvedBinary>> {
  // Loaded on demand: attaching to a running target never needs the provisioning code.
  const { provision } = await import("../binaries/index.ts");
  return provision(components, {
    cacheDir: config.cacheDir,
    overrides: config.overrides,
    offline: config.offline,
    noBuild: config.noBuild,
    env: childEnv(config),
    versions: o.versions ?? versionChoice(config),
    ...(o.signal ? { signal: o.signal } : {}),
  });
}

/**
 * The kind CLI the configured node image was built for: its version, and `resolve()` finds it
 * (KIND_BIN, the cache, PATH) or, with `install`, builds it with Go into the cache.
 */
export async function kindCliFor(config: Config, o: { install: boolean }) {
  const { loadKindPins, nodeImageFor } = await import("./kind-plan.ts");
  const { resolveKind } = await import("../binaries/kindcli.ts");
  const node = nodeImageFor({ kubeVersion: config.kind.kubeVersion, image: config.kind.nodeImage });
  const version = node.kind ?? loadKindPins().kind;
  return {
    node,
    version,
    resolve: () =>
      resolveKind({
        cacheDir: config.cacheDir,
        version,
        env: childEnv(config),
        install: o.install,
        ...(config.kindBin ? { kindBin: config.kindBin } : {}),
      }),
  };
}

/** Binaries for the local target, from the user's paths, the cache, downloads or Go builds. */
export async function provisionLocal(config: Config, signal?: AbortSignal): Promise<LocalBinaries> {
  const bins = await provisionComponents(config, componentsFor(config), signal ? { signal } : {});
  const path = (c: Component) => {
    const b = bins[c];
    if (!b) throw new HarnessError(`provisioning returned no ${c}`);
    return b.path;
  };
  return {
    etcd: path("etcd"),
    kubeApiserver: path("kube-apiserver"),
    kubeControllerManager: path("kube-controller-manager"),
    vault: path(vaultBinary(config.flavor)),
  };
}

/** Only the Vault (or OpenBao) binary: the existing target with `--vault process`. */
export async function provisionVault(config: Config): Promise<string> {
  const c: Component = vaultBinary(config.flavor);
  const bins = await provisionComponents(config, [c]);
  const b = bins[c];
  if (!b) throw new HarnessError(`provisioning returned no ${c}`);
  return b.path;
}
