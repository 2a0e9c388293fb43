import { homedir } from "node:os";
import { readFileSync } from "node:fs";
import { delimiter, dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError } from "./errors.ts";
import { TARGETS, VAULT_MODES, type TargetName, type VaultMode } from "./lifecycle/registry.ts";
import { vaultSettingsFromEnv, type VaultSettings } from "./vault/env.ts";

export { TARGETS, type TargetName, type VaultMode };

/**
 * The one place that reads the environment (`processEnv`, `loadConfig`) and builds a child
 * process's (`childEnv`). Scripts turn their flags into the same variables, in a copy of the
 * environment that Config keeps (`config.env`): a child process, and vitest's globalSetup and
 * workers (`withVitestEnv`), see the same settings.
 *
 * | variable | meaning | default |
 * |---|---|---|
 * | VKC_TARGET | local, kind or existing | local |
 * | VKC_FLAVOR | vault (HashiCorp) or openbao | vault |
 * | VKC_FIXTURES | a fixtures directory (policies, roles, manifests) | the package's fixtures/ |
 * | VKC_REPORTS_DIR | where junit.xml, results.json, summary.md and artifacts go | ./reports |
 * | VKC_CACHE_DIR | binary cache | $XDG_CACHE_HOME/vault-k8s-conformance or ~/.cache/vault-k8s-conformance |
 * | VKC_ISSUER | the apiserver's --service-account-issuer (local target) | https://kubernetes.default.svc.cluster.local |
 * | VKC_PERSONA | local target: a named apiserver setup from <fixtures>/personas/ (issuers, audiences, token lifetimes) | unset |
 * | VKC_OFFLINE=1 | never try release downloads | unset |
 * | VKC_NO_BUILD=1 | never build from Go modules | unset |
 * | VKC_KEEP=1 | keep the target after the run and print how to reach and remove it | unset |
 * | VKC_KEEP_ON_FAILURE=1 | local target: when the run fails, keep the target up (the script owns it until Ctrl-C or env:down) and print how to reach and remove it | unset |
 * | VKC_DEBUG=1 | stack traces and debug log lines | unset |
 * | VKC_SLOW=1 | include slow cases (token expiry, the apiserver's 10 s token cache) | unset |
 * | KUBEBUILDER_ASSETS | a directory holding etcd, kube-apiserver, kube-controller-manager (envtest) | unset |
 * | TEST_ASSET_ETCD, TEST_ASSET_KUBE_APISERVER, TEST_ASSET_KUBE_CONTROLLER_MANAGER, TEST_ASSET_KUBECTL | one binary each (envtest) | unset |
 * | VAULT_BIN, BAO_BIN | a vault / bao binary | unset |
 * | KUBECONFIG (--kubeconfig), VKC_CONTEXT | existing target: kubeconfig file(s), a list as kubectl merges it (":"-separated; first wins), and context | ~/.kube/config, or the pod's ServiceAccount in a pod (lib/kube/kubeconfig.ts `loadKubeconfig`) |
 * | KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT | existing target without KUBECONFIG: running in a pod, use its ServiceAccount (before ~/.kube/config) | unset (set by the kubelet) |
 * | VKC_SA_DIR | the pod's ServiceAccount directory (token, ca.crt, namespace) | /var/run/secrets/kubernetes.io/serviceaccount |
 * | VAULT_ADDR, VAULT_TOKEN, VAULT_CACERT, ... (BAO_* for openbao) | existing target and audit: your Vault, as the vault/bao CLI reads them (`externalVaultSettings`, lib/vault/env.ts) | unset |
 * | VKC_KUBE_HOST_FOR_VAULT | existing target: kubernetes_host as Vault must reach it | the kubeconfig's server |
 * | VKC_VAULT | how Vault runs: process (local), container or in-cluster (kind), external or process (existing) | per target |
 * | VKC_VAULT_VERSION | local target (and existing with VKC_VAULT=process): the HashiCorp Vault version to provision (X.Y.Z; other versions run here: fixtures/versions.json vault.alsoTested) | the pin in fixtures/versions.json |
 * | VKC_VAULT_IMAGE | kind target: Vault/OpenBao container image | newest pinned in fixtures/kind.json |
 * | VKC_KUBE_VERSION | kind target: Kubernetes version of the node image (1.34 or 1.34.0) | newest pinned |
 * | VKC_NODE_IMAGE | kind target: an explicit kindest/node image | unset |
 * | VKC_DRY_RUN=1 | existing and kind targets: print what the run would create (and, on an existing cluster, check the credentials may), create nothing | unset |
 * | VKC_TRACE_FILE | npm run bench: append timing intervals (kind, start, end; nothing else) of calls to Vault and the API server to this file (0600) | unset |
 * | VKC_TARGET_INFO | a running target's TargetInfo file (npm run env:up's): attach to it instead of starting one | unset |
 * | KIND_BIN | kind target: the kind CLI to use | the cache, PATH, or installed with Go |
 * | KIND_EXPERIMENTAL_PROVIDER=podman | kind target: Podman instead of Docker | docker |
 * | HOME, PATH, XDG_CACHE_HOME | the existing target's default kubeconfig (~/.kube/config), where tools are found, the cache's default | the process's |
 */
export type Flavor = "vault" | "openbao";

/** The flavor's binary (and binary-cache component): `vault` or `bao`. */
export function vaultBinary(flavor: Flavor): "vault" | "bao" {
  return flavor === "openbao" ? "bao" : "vault";
}

export type ContainerEngine = "docker" | "podman";

const FLAVORS: readonly Flavor[] = ["vault", "openbao"];

export interface BinaryOverrides {
  /** envtest's KUBEBUILDER_ASSETS directory. */
  assetsDir?: string;
  etcd?: string;
  "kube-apiserver"?: string;
  "kube-controller-manager"?: string;
  kubectl?: string;
  vault?: string;
  bao?: string;
}

export interface Config {
  target: TargetName;
  flavor: Flavor;
  fixturesDir: string;
  reportsDir: string;
  cacheDir: string;
  issuer: string;
  /** Local target: a persona name (fixtures/personas/<name>.json). */
  persona?: string;
  offline: boolean;
  noBuild: boolean;
  keep: boolean;
  keepOnFailure: boolean;
  dryRun: boolean;
  debug: boolean;
  slow: boolean;
  /** A running target's TargetInfo file (env:up, or the script that owns the target): attach, never start. */
  targetInfoFile?: string;
  overrides: BinaryOverrides;
  existing: {
    /** KUBECONFIG: its files, in order, absolute. */
    kubeconfig?: string[];
    context?: string;
    /** Running in a pod: KUBERNETES_SERVICE_HOST/PORT and the ServiceAccount directory (VKC_SA_DIR). */
    inCluster: { host?: string; port?: string; saDir: string };
    kubeHostForVault?: string;
  };
  vault: {
    mode: VaultMode;
    image?: string;
    /** HashiCorp Vault version to provision instead of the pin (--vault-version). */
    version?: string;
  };
  kind: { kubeVersion?: string; nodeImage?: string };
  /** KIND_BIN: the kind CLI to use. */
  kindBin?: string;
  /** KIND_EXPERIMENTAL_PROVIDER=podman: the container engine kind drives. */
  containerEngine: ContainerEngine;
  /** VKC_TRACE_FILE (npm run bench): where timing intervals go. */
  traceFile?: string;
  /** HOME: the existing target's default kubeconfig is ~/.kube/config. */
  home: string;
  /** The existing target: the run id announced in the plan (`announcePlan`), used by the provider. */
  runId?: string;
  /**
   * The environment this config was read from, flags applied: the base of every child process's
   * environment (`childEnv`); never read for settings (those are the fields above).
   */
  env: Env;
}

/**
 * Where the code runs from: the repository (sources under tsx) or the package's dist/ (compiled):
 * suites/, scripts/ and vitest.config.{ts,js} are here.
 */
export const CODE_ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
/** True when this is the compiled package (dist/), false when the sources run under tsx. */
export const COMPILED = import.meta.url.endsWith(".js");
/**
 * The package's folder: package.json, fixtures/ and schemas/. The nearest folder upward from the
 * code named vault-k8s-conformance (the repository, or the installed package above dist/).
 */
export const PACKAGE_ROOT = findPackageRoot(CODE_ROOT);

function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    try {
      if ((JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string }).name === "vault-k8s-conformance") return dir;
    } catch {
      // no package.json here, or not ours
    }
    if (dirname(dir) === dir) return from;
  }
}
export const DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local";
/** Where the kubelet mounts a pod's ServiceAccount token, CA and namespace. */
export const DEFAULT_SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * A copy of this process's environment: the input of `loadConfig` (scripts turn their flags into
 * variables of this copy, never of process.env).
 */
/** VKC_TRACE_FILE for the tracing module, which every process of a run (vitest workers too) loads without a Config. */
export function traceFileFromEnv(): string | undefined {
  return processEnv().VKC_TRACE_FILE || undefined;
}

export function processEnv(): Record<string, string | undefined> {
  return { ...process.env };
}

/**
 * A child process's environment. By default the config's environment (the user's, with the
 * script's flags as VKC_* variables, so a child script sees the same settings) plus `extra`;
 * `clean: true` gives only PATH plus `extra`, for the processes a target runs and the tools it
 * runs once (nothing of the user's, such as VAULT_ADDR, KUBECONFIG or proxies, leaks in). An
 * `extra` value of undefined removes the variable.
 */
export function childEnv(config: Pick<Config, "env">, extra: Env = {}, o: { clean?: boolean } = {}): Record<string, string> {
  const base: Env = o.clean ? { PATH: config.env.PATH } : config.env;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...base, ...extra })) if (v !== undefined) out[k] = v;
  return out;
}

/**
 * Runs `fn` (a vitest run in this process) with this process's environment set to `env`, then
 * restores it. vitest's globalSetup (its own copy of this module, which reads `VKC_TARGET_INFO`
 * through `loadConfig`) and its worker processes learn the run's settings from there.
 */
export async function withVitestEnv<T>(env: Env, fn: () => Promise<T>): Promise<T> {
  const before = { ...process.env };
  const apply = (to: Env) => {
    for (const k of Object.keys(process.env)) if (to[k] === undefined) delete process.env[k];
    for (const [k, v] of Object.entries(to)) if (v !== undefined) process.env[k] = v;
  };
  apply(env);
  try {
    return await fn();
  } finally {
    apply(before);
  }
}

const vaultSettingsOf = new WeakMap<Env, Partial<Record<Flavor, VaultSettings>>>();

/**
 * Vault's client conventions for a Vault the harness did not start (the existing target's, the
 * audit's, the dry run's): VAULT_* and BAO_* as the flavor's CLI reads them (lib/vault/env.ts),
 * from the config's environment, built once per config and only when asked, so that a local or
 * kind run never reads them (a stray VAULT_CACERT cannot fail it). Bad values: one line, exit 2.
 */
export function externalVaultSettings(config: Pick<Config, "env" | "flavor" | "home">): VaultSettings {
  const byFlavor = vaultSettingsOf.get(config.env) ?? {};
  vaultSettingsOf.set(config.env, byFlavor);
  return (byFlavor[config.flavor] ??= vaultSettingsFromEnv(config.env, config.flavor, { homeDir: config.home }));
}

function flag(env: Env, name: string): boolean {
  const v = env[name];
  return v !== undefined && v !== "" && v !== "0" && v.toLowerCase() !== "false";
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`${name} must be one of ${allowed.join(", ")} (got "${value}")`);
}

function absolute(p: string, cwd: string): string {
  return isAbsolute(p) ? p : resolve(cwd, p);
}

function defaultCacheDir(env: Env): string {
  const xdg = env.XDG_CACHE_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(env.HOME ?? homedir(), ".cache"), "vault-k8s-conformance");
}

export function loadConfig(env: Env = processEnv(), cwd: string = process.cwd()): Config {
  const nonEmpty = (k: string) => (env[k] && env[k] !== "" ? env[k] : undefined);
  const path = (k: string) => {
    const v = nonEmpty(k);
    return v === undefined ? undefined : absolute(v, cwd);
  };
  const issuer = nonEmpty("VKC_ISSUER") ?? DEFAULT_ISSUER;
  const overrides: BinaryOverrides = {};
  const set = (key: keyof BinaryOverrides, v: string | undefined) => {
    if (v !== undefined) overrides[key] = v;
  };
  set("assetsDir", path("KUBEBUILDER_ASSETS"));
  set("etcd", path("TEST_ASSET_ETCD"));
  set("kube-apiserver", path("TEST_ASSET_KUBE_APISERVER"));
  set("kube-controller-manager", path("TEST_ASSET_KUBE_CONTROLLER_MANAGER"));
  set("kubectl", path("TEST_ASSET_KUBECTL"));
  set("vault", path("VAULT_BIN"));
  set("bao", path("BAO_BIN"));
  const target = oneOf("target (VKC_TARGET / --target)", nonEmpty("VKC_TARGET") ?? "local", TARGETS);
  const modes = VAULT_MODES[target];
  const mode = oneOf(`--vault (VKC_VAULT) for the ${target} target`, nonEmpty("VKC_VAULT") ?? modes[0]!, modes);
  if (flag(env, "VKC_DRY_RUN") && target === "local")
    throw new UsageError("--dry-run applies to the existing and kind targets (the local target creates only throwaway local processes)");
  // KUBECONFIG is a list, as kubectl reads it (":"-separated, ";" on Windows; empty entries ignored).
  const kubeconfig = nonEmpty("KUBECONFIG")
    ?.split(delimiter)
    .filter(Boolean)
    .map((p) => absolute(p, cwd));
  const persona = nonEmpty("VKC_PERSONA");
  if (persona && target !== "local") throw new UsageError(`--persona (VKC_PERSONA) applies to the local target, not ${target}`);
  if (persona && nonEmpty("VKC_ISSUER")) throw new UsageError("--persona and --issuer both set the issuer: use one");
  const vaultVersion = nonEmpty("VKC_VAULT_VERSION");
  if (vaultVersion !== undefined) {
    if (!/^\d+\.\d+\.\d+$/.test(vaultVersion))
      throw new UsageError(`--vault-version (VKC_VAULT_VERSION) must be X.Y.Z, e.g. 1.20.4 (got "${vaultVersion}")`);
    if ((nonEmpty("VKC_FLAVOR") ?? "vault") !== "vault")
      throw new UsageError("--vault-version (VKC_VAULT_VERSION) applies to --flavor vault (HashiCorp Vault)");
    if (target === "kind")
      throw new UsageError("--vault-version (VKC_VAULT_VERSION) applies to the local target; for kind choose the image with --vault-image");
    if (mode === "external")
      throw new UsageError(
        "--vault-version (VKC_VAULT_VERSION) chooses the Vault to start: on an existing target it needs --vault process",
      );
  }
  if (flag(env, "VKC_KEEP") && target !== "kind")
    throw new UsageError(`--keep (VKC_KEEP) applies to the kind target; for a ${target} target that stays up, use npm run env:up`);
  if (flag(env, "VKC_KEEP_ON_FAILURE") && target !== "local")
    throw new UsageError(
      `--keep-on-failure (VKC_KEEP_ON_FAILURE) applies to the local target; for kind use --keep, an existing target is yours and stays anyway`,
    );
  return {
    target,
    flavor: oneOf("flavor (VKC_FLAVOR / --flavor)", nonEmpty("VKC_FLAVOR") ?? "vault", FLAVORS),
    fixturesDir: path("VKC_FIXTURES") ?? join(PACKAGE_ROOT, "fixtures"),
    reportsDir: path("VKC_REPORTS_DIR") ?? resolve(cwd, "reports"),
    cacheDir: path("VKC_CACHE_DIR") ?? defaultCacheDir(env),
    issuer,
    ...(persona ? { persona } : {}),
    offline: flag(env, "VKC_OFFLINE"),
    noBuild: flag(env, "VKC_NO_BUILD"),
    keep: flag(env, "VKC_KEEP"),
    keepOnFailure: flag(env, "VKC_KEEP_ON_FAILURE"),
    dryRun: flag(env, "VKC_DRY_RUN"),
    debug: flag(env, "VKC_DEBUG"),
    slow: flag(env, "VKC_SLOW"),
    ...(path("VKC_TARGET_INFO") ? { targetInfoFile: path("VKC_TARGET_INFO") } : {}),
    overrides,
    existing: {
      ...(kubeconfig?.length ? { kubeconfig } : {}),
      inCluster: {
        host: nonEmpty("KUBERNETES_SERVICE_HOST"),
        port: nonEmpty("KUBERNETES_SERVICE_PORT"),
        saDir: path("VKC_SA_DIR") ?? DEFAULT_SA_DIR,
      },
      context: nonEmpty("VKC_CONTEXT"),
      kubeHostForVault: nonEmpty("VKC_KUBE_HOST_FOR_VAULT"),
    },
    vault: {
      mode,
      ...(nonEmpty("VKC_VAULT_IMAGE") ? { image: nonEmpty("VKC_VAULT_IMAGE") } : {}),
      ...(vaultVersion ? { version: vaultVersion } : {}),
    },
    kind: {
      ...(nonEmpty("VKC_KUBE_VERSION") ? { kubeVersion: nonEmpty("VKC_KUBE_VERSION") } : {}),
      ...(nonEmpty("VKC_NODE_IMAGE") ? { nodeImage: nonEmpty("VKC_NODE_IMAGE") } : {}),
    },
    ...(nonEmpty("KIND_BIN") ? { kindBin: nonEmpty("KIND_BIN") } : {}),
    containerEngine: env.KIND_EXPERIMENTAL_PROVIDER === "podman" ? "podman" : "docker",
    ...(nonEmpty("VKC_TRACE_FILE") ? { traceFile: nonEmpty("VKC_TRACE_FILE") } : {}),
    home: nonEmpty("HOME") ?? homedir(),
    env: { ...env },
  };
}
