import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { UsageError } from "./errors.ts";

/**
 * The one place that reads the environment. Scripts turn their flags into the same variables
 * (see `flagsToEnv`) so that vitest's globalSetup, a child process, sees one typed config.
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
 * | KUBECONFIG, VKC_CONTEXT | existing target: kubeconfig and context | unset |
 * | VAULT_ADDR, VAULT_TOKEN, VAULT_CACERT | existing target: a Vault to use | unset |
 * | VKC_KUBE_HOST_FOR_VAULT | existing target: kubernetes_host as Vault must reach it | the kubeconfig's server |
 * | VKC_VAULT | how Vault runs: process (local), container or in-cluster (kind), external or process (existing) | per target |
 * | VKC_VAULT_VERSION | local target (and existing with VKC_VAULT=process): the HashiCorp Vault version to provision (X.Y.Z; other versions run here: fixtures/versions.json vault.alsoTested) | the pin in fixtures/versions.json |
 * | VKC_VAULT_IMAGE | kind target: Vault/OpenBao container image | newest pinned in fixtures/kind.json |
 * | VKC_KUBE_VERSION | kind target: Kubernetes version of the node image (1.34 or 1.34.0) | newest pinned |
 * | VKC_NODE_IMAGE | kind target: an explicit kindest/node image | unset |
 * | VKC_DRY_RUN=1 | existing and kind targets: print what the run would create (and, on an existing cluster, check the credentials may), create nothing | unset |
 * | VKC_TRACE_FILE | npm run bench: append timing intervals (kind, start, end; nothing else) of calls to Vault and the API server to this file (0600) | unset |
 * | VKC_RUN_ID | internal: the run id a script announced in its plan, handed to the provider | generated |
 */
export type TargetName = "local" | "kind" | "existing";
export type Flavor = "vault" | "openbao";

export const TARGETS: readonly TargetName[] = ["local", "kind", "existing"];
export const FLAVORS: readonly Flavor[] = ["vault", "openbao"];

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

/** How Vault runs, per target: the first of each list is the default. */
export type VaultMode = "process" | "container" | "in-cluster" | "external";
export const VAULT_MODES: Record<TargetName, readonly VaultMode[]> = {
  local: ["process"],
  kind: ["container", "in-cluster"],
  existing: ["external", "process"],
};

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
    kubeconfig?: string;
    context?: string;
    vaultAddr?: string;
    vaultToken?: string;
    vaultCACert?: string;
    kubeHostForVault?: string;
  };
  vault: {
    mode: VaultMode;
    image?: string;
    /** HashiCorp Vault version to provision instead of the pin (--vault-version). */
    version?: string;
  };
  kind: { kubeVersion?: string; nodeImage?: string };
}

export const PACKAGE_ROOT = resolve(new URL("..", import.meta.url).pathname);
export const DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local";

type Env = Record<string, string | undefined>;

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

export function defaultCacheDir(env: Env): string {
  const xdg = env.XDG_CACHE_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(env.HOME ?? homedir(), ".cache"), "vault-k8s-conformance");
}

export function loadConfig(env: Env = process.env, cwd: string = process.cwd()): Config {
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
      kubeconfig: path("KUBECONFIG"),
      context: nonEmpty("VKC_CONTEXT"),
      vaultAddr: nonEmpty("VAULT_ADDR"),
      vaultToken: nonEmpty("VAULT_TOKEN"),
      vaultCACert: path("VAULT_CACERT"),
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
  };
}
