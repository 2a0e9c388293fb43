import { readFile } from "node:fs/promises";
import type { Config } from "../config.ts";
import { HarnessError, UsageError } from "../errors.ts";
import type { Component } from "../binaries/index.ts";
import { attachExistingTarget } from "../providers/existing.ts";
import { startLocalTarget, type LocalTargetOptions } from "../providers/local.ts";
import { loadPersona } from "../gate/persona.ts";
import { checkExternalVault } from "../vault/ready.ts";
import { checkFixtureFiles, checkPolicies, policyParser } from "../fixtures/check.ts";
import type { TargetInfo } from "./info.ts";
import type { ComponentDeath } from "./watch.ts";

export interface StartedTarget extends AsyncDisposable {
  info: TargetInfo;
  startupMs: number;
  stop(): Promise<void>;
  /** Reports components that die while the target is in use (local target's processes). */
  watch?(fn: (d: ComponentDeath) => void): void;
  /** Called once after a run with failed cases, before stop (kind: export the cluster's logs). */
  onFailure?(): Promise<void>;
}

export function componentsFor(config: Pick<Config, "flavor">): Component[] {
  return ["etcd", "kube-apiserver", "kube-controller-manager", config.flavor === "openbao" ? "bao" : "vault"];
}

/** The versions chosen instead of the pins: --vault-version (HashiCorp Vault only). */
export function versionChoice(config: Pick<Config, "flavor" | "vault">): { vault?: string } {
  return config.flavor === "vault" && config.vault.version ? { vault: config.vault.version } : {};
}

/** Binaries for the local target, from the user's paths, the cache, downloads or Go builds. */
export async function provisionLocal(config: Config, signal?: AbortSignal) {
  // Loaded on demand: attaching to a running target never needs the provisioning code.
  const { provision } = await import("../binaries/index.ts");
  const bins = await provision(componentsFor(config), {
    cacheDir: config.cacheDir,
    overrides: config.overrides,
    offline: config.offline,
    noBuild: config.noBuild,
    versions: versionChoice(config),
    signal,
  });
  const path = (c: Component) => {
    const b = bins[c];
    if (!b) throw new HarnessError(`provisioning returned no ${c}`);
    return b.path;
  };
  return {
    etcd: path("etcd"),
    kubeApiserver: path("kube-apiserver"),
    kubeControllerManager: path("kube-controller-manager"),
    vault: path(config.flavor === "openbao" ? "bao" : "vault"),
  };
}

/** Only the Vault (or OpenBao) binary: the existing target with `--vault process`. */
export async function provisionVault(config: Config): Promise<string> {
  const { provision } = await import("../binaries/index.ts");
  const c: Component = config.flavor === "openbao" ? "bao" : "vault";
  const bins = await provision([c], {
    cacheDir: config.cacheDir,
    overrides: config.overrides,
    offline: config.offline,
    noBuild: config.noBuild,
    versions: versionChoice(config),
  });
  const b = bins[c];
  if (!b) throw new HarnessError(`provisioning returned no ${c}`);
  return b.path;
}

/**
 * Before vitest starts: provision the local target's binaries (with progress), or check that an
 * existing cluster and Vault are reachable and usable, so that bad input is one clear line and
 * exit code 2 from the script instead of a failed test run.
 */
export async function preflight(config: Config): Promise<void> {
  // Fixtures first (cases, reviewer manifest, policy files): bad input whatever the target.
  const policies = checkFixtureFiles(config.fixturesDir);
  if (process.env.VKC_TARGET_INFO) return checkPolicies(policies, await policyParser(config));
  if (config.target === "local") {
    if (config.persona) loadPersona(config.fixturesDir, config.persona); // bad persona: one line, before any build
    // The policies' HCL, parsed by the very binary the target will run.
    await checkPolicies(policies, (await provisionLocal(config)).vault);
  } else {
    await checkPolicies(policies, await policyParser(config)); // only a binary at hand: provisions nothing
  }
  if (config.target === "existing") {
    if (config.vault.mode === "external") await checkExternalVault(config); // before (and without) the cluster
    await (await attachExistingTarget(config, { preflight: true })).stop();
  }
  if (config.target === "kind") {
    const { requireKindTools } = await import("../providers/kind.ts");
    const { nodeImageFor, vaultImageFor } = await import("../providers/kind-plan.ts");
    // Flags first: a bad --kube-version is bad input whatever the machine has.
    nodeImageFor({ kubeVersion: config.kind.kubeVersion, image: config.kind.nodeImage });
    vaultImageFor(config.flavor, config.vault.image);
    await requireKindTools(await kindDeps(config));
  }
}

/**
 * config -> provider -> started target. `VKC_TARGET_INFO` (an env:up file) attaches to a target
 * that is already running instead of starting one; its owner tears it down.
 */
export async function startTarget(config: Config, extra: Partial<LocalTargetOptions> = {}): Promise<StartedTarget> {
  switch (config.target) {
    case "local": {
      const binaries = await provisionLocal(config);
      const persona = config.persona ? loadPersona(config.fixturesDir, config.persona) : undefined;
      return startLocalTarget({
        config,
        binaries,
        ...(persona ? { issuers: persona.issuers, apiAudiences: persona.apiAudiences, apiserverArgs: persona.apiserverArgs, persona } : {}),
        ...(persona?.retiredSigningKey ? { retiredSigningKey: true } : {}),
        ...extra,
      });
    }
    case "kind": {
      const { startKindTarget } = await import("../providers/kind.ts");
      return startKindTarget(config, await kindDeps(config));
    }
    case "existing":
      return attachExistingTarget(config);
  }
}

/** The kind CLI the node image was built for: KIND_BIN, the cache, PATH, or installed with Go into the cache. */
async function kindDeps(config: Config) {
  const { defaultKindDeps, requireContainerEngine } = await import("../providers/kind.ts");
  // No Docker: say so before spending a minute installing kind.
  await requireContainerEngine(defaultKindDeps());
  const { loadKindPins, nodeImageFor } = await import("../providers/kind-plan.ts");
  const { resolveKind } = await import("../binaries/kindcli.ts");
  const node = nodeImageFor({ kubeVersion: config.kind.kubeVersion, image: config.kind.nodeImage });
  const version = node.kind ?? loadKindPins().kind;
  const kind = await resolveKind({ cacheDir: config.cacheDir, version, install: !config.noBuild }).catch((err) => {
    if (err instanceof HarnessError) throw err;
    throw new HarnessError(`cannot install kind ${version}: ${(err as Error).message}`, { exitCode: 2 });
  });
  return defaultKindDeps(kind?.path ?? "kind");
}

export { readTargetInfo } from "./info.ts";
