import { readFileSync } from "node:fs";
import { join } from "node:path";
import { dumpYaml, KubeConfig, type KubernetesObject } from "@kubernetes/client-node";
import { DEFAULT_ISSUER, PACKAGE_ROOT, vaultBinary, type Config, type Flavor } from "../config.ts";
import { UsageError } from "../errors.ts";

/**
 * The kind target's plan as data: which node image, which cluster config, which kind commands,
 * which Vault container or in-cluster manifests. Everything here is pure, so it is unit-tested
 * without Docker; lib/providers/kind.ts carries the plan out.
 */

export interface KindPins {
  /** The kind release the node images were built for (what CI installs). */
  kind: string;
  /** Kubernetes minor ("1.35") -> node image pinned by digest, newest first. */
  nodeImages: Record<string, string>;
  /** Older node images that need an older kind release, e.g. a pre-1.24 cluster that still auto-creates token Secrets. */
  legacyNodeImages: Record<string, { image: string; kind: string }>;
  /** Vault container images per flavor, newest first. */
  vaultImages: Record<Flavor, string[]>;
  /**
   * The images `npm run kit` builds on a machine without a registry, by tag: a node image per
   * Kubernetes minor (newest first) and a Vault image per flavor. The defaults when the engine
   * lacks the pinned image and has the kit's.
   */
  kitImages?: { nodeImages: Record<string, string>; vaultImages: Partial<Record<Flavor, string>> };
}

let pinsCache: KindPins | undefined;
export function loadKindPins(file = join(PACKAGE_ROOT, "fixtures", "kind.json")): KindPins {
  if (pinsCache && file === join(PACKAGE_ROOT, "fixtures", "kind.json")) return pinsCache;
  const raw = JSON.parse(readFileSync(file, "utf8")) as KindPins & { $comment?: string };
  delete raw.$comment;
  pinsCache = raw;
  return raw;
}

/**
 * A Kubernetes version -> kindest/node image. "1.34" picks the pinned image of that minor; a full
 * "1.34.2" picks the pinned image if it is that patch, else the unpinned tag (a warning is the
 * caller's business). An explicit image wins.
 */
export function nodeImageFor(
  o: { kubeVersion?: string; image?: string },
  pins: KindPins = loadKindPins(),
): { image: string; kubeVersion: string; pinned: boolean; kind?: string } {
  if (o.image) {
    const tag = /:v(\d+\.\d+(?:\.\d+)?)/.exec(o.image)?.[1] ?? "unknown";
    return { image: o.image, kubeVersion: tag, pinned: o.image.includes("@sha256:") };
  }
  const all: Record<string, { image: string; kind?: string }> = {
    ...Object.fromEntries(Object.entries(pins.nodeImages).map(([k, v]) => [k, { image: v }])),
    ...pins.legacyNodeImages,
  };
  const want = (o.kubeVersion ?? Object.keys(pins.nodeImages)[0]!).replace(/^v/, "");
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?$/.exec(want);
  if (!m) throw new UsageError(`Kubernetes version for kind must look like 1.34 or 1.34.1 (got "${o.kubeVersion}")`);
  const minor = `${m[1]}.${m[2]}`;
  const pinned = all[minor];
  if (pinned) {
    const pinnedVersion = /:v([\d.]+)/.exec(pinned.image)?.[1] ?? minor;
    if (!m[3] || pinnedVersion === want)
      return { image: pinned.image, kubeVersion: pinnedVersion, pinned: true, ...(pinned.kind ? { kind: pinned.kind } : {}) };
  } else if (!m[3]) {
    throw new UsageError(
      `no kind node image is pinned for Kubernetes ${minor} (pinned: ${Object.keys(all).join(", ")}); pass a full version such as ${minor}.0 or --node-image`,
    );
  }
  return { image: `kindest/node:v${want}`, kubeVersion: want, pinned: false };
}

/**
 * The kit's node image for a requested Kubernetes version: the one of its minor (a full version
 * must match the image's tag), or without a version the newest; undefined when the kit has none.
 */
export function kitNodeImageFor(kubeVersion: string | undefined, pins: KindPins = loadKindPins()): string | undefined {
  const kit = pins.kitImages?.nodeImages ?? {};
  if (!kubeVersion) return Object.values(kit)[0];
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?$/.exec(kubeVersion);
  const image = m ? kit[`${m[1]}.${m[2]}`] : undefined;
  if (!image || (m?.[3] && /:v([\d.]+)$/.exec(image)?.[1] !== kubeVersion.replace(/^v/, ""))) return undefined;
  return image;
}

/** "hashicorp/vault:1.21.1" for a flavor (newest pinned), or the user's image. */
export function vaultImageFor(flavor: Flavor, image: string | undefined, pins: KindPins = loadKindPins()): string {
  if (image) return image;
  const first = pins.vaultImages[flavor]?.[0];
  if (!first) throw new UsageError(`no container image pinned for ${flavor}: pass --vault-image`);
  return first;
}

export interface KindClusterOptions {
  name: string;
  image: string;
  /** --service-account-issuer of the API server; kind's default when absent. */
  issuer?: string;
  apiAudiences?: string[];
  /** Host port on 127.0.0.1 mapped to the node's port `nodePort` (an in-cluster Vault's NodePort). */
  portMapping?: { hostPort: number; nodePort: number };
  /** The host is cgroup v1 and the kubelet refuses that by default (>= 1.35): patch `failCgroupV1: false` in. */
  allowCgroupV1?: boolean;
}

/**
 * Kubelet 1.35+ refuses to start on a cgroup v1 host unless its configuration sets
 * `failCgroupV1: false` (KEP-5573). True for a node image's Kubernetes version at or above 1.35;
 * false when the version is unknown (an image tag without vX.Y).
 */
export function kubeletRefusesCgroupV1(kubeVersion: string): boolean {
  const m = /^v?(\d+)\.(\d+)/.exec(kubeVersion);
  return !!m && (Number(m[1]) > 1 || Number(m[2]) >= 35);
}

/** The default issuer kind clusters have; the local target uses the same by default. */

/**
 * kind's v1alpha4 cluster config. API server flags go through a kubeadm ClusterConfiguration
 * patch without an apiVersion and with extraArgs as a map: kind (0.32+) generates kubeadm
 * v1beta4 for Kubernetes 1.36+ and v1beta3 below, and converts an unversioned map patch to
 * v1beta4's name/value list itself; a patch naming one apiVersion is silently ignored by the other.
 */
export function kindClusterConfig(o: KindClusterOptions): string {
  const args: Record<string, string> = {};
  if (o.issuer && o.issuer !== DEFAULT_ISSUER) args["service-account-issuer"] = o.issuer;
  if (o.apiAudiences?.length) args["api-audiences"] = o.apiAudiences.join(",");
  const patches = Object.keys(args).length ? [dumpYaml({ kind: "ClusterConfiguration", apiServer: { extraArgs: args } })] : [];
  // KubeletConfiguration has one version (kubelet.config.k8s.io/v1beta1); kind matches the patch by
  // kind. kind 0.33 skips kubeadm's preflight itself, so SystemVerification needs no patch.
  if (o.allowCgroupV1) patches.push(dumpYaml({ kind: "KubeletConfiguration", failCgroupV1: false }));
  const node: Record<string, unknown> = { role: "control-plane", image: o.image };
  if (o.portMapping) {
    node.extraPortMappings = [
      { containerPort: o.portMapping.nodePort, hostPort: o.portMapping.hostPort, listenAddress: "127.0.0.1", protocol: "TCP" },
    ];
  }
  return dumpYaml({
    kind: "Cluster",
    apiVersion: "kind.x-k8s.io/v1alpha4",
    name: o.name,
    nodes: [node],
    ...(patches.length ? { kubeadmConfigPatches: patches } : {}),
  });
}

/** The kind command lines, one place, so tests can read them. */
export const kindArgs = {
  create: (o: { name: string; image: string; configFile: string; kubeconfig: string; waitSeconds?: number }) => [
    "create",
    "cluster",
    "--name",
    o.name,
    "--image",
    o.image,
    "--config",
    o.configFile,
    "--kubeconfig",
    o.kubeconfig,
    "--wait",
    `${o.waitSeconds ?? 180}s`,
  ],
  /** Copies an image from the host's engine into the node, so the kubelet never pulls it. */
  loadImage: (name: string, image: string) => ["load", "docker-image", image, "--name", name],
  internalKubeconfig: (name: string) => ["get", "kubeconfig", "--internal", "--name", name],
  exportLogs: (name: string, dir: string) => ["export", "logs", dir, "--name", name],
  delete: (name: string, kubeconfig: string) => ["delete", "cluster", "--name", name, "--kubeconfig", kubeconfig],
};

/** What Vault (on kind's docker network) must use to reach the API server, from `kind get kubeconfig --internal`. */
export function parseInternalKubeconfig(text: string): { server: string; caPem: string } {
  const kc = new KubeConfig();
  try {
    kc.loadFromString(text);
  } catch (err) {
    throw new UsageError(`kind printed a kubeconfig that cannot be read: ${(err as Error).message.split("\n")[0]}`, { cause: err });
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server) throw new UsageError("kind's internal kubeconfig has no current cluster");
  if (!cluster.caData) throw new UsageError("kind's internal kubeconfig has no certificate-authority-data");
  return { server: cluster.server, caPem: Buffer.from(cluster.caData, "base64").toString("utf8") };
}

export interface VaultContainerSpec {
  image: string;
  flavor: Flavor;
  /** Docker network to join (kind's is "kind"). */
  network: string;
  entrypoint: string[];
  command: string[];
  env: Record<string, string>;
  port: number;
  labels: Record<string, string>;
}

/**
 * A dev-mode Vault (or OpenBao) container. The root token goes in on the command line of a
 * throwaway dev server; it never reaches a log (it is registered as a secret by the caller).
 */
export function vaultContainerSpec(o: {
  image: string;
  flavor: Flavor;
  token: string;
  runId: string;
  network?: string;
}): VaultContainerSpec {
  const bin = vaultBinary(o.flavor);
  return {
    image: o.image,
    flavor: o.flavor,
    network: o.network ?? "kind",
    entrypoint: [bin],
    // Debug: the plugin says why it refused a login (the TokenReview's error) only at debug level;
    // a 403 "permission denied" is otherwise the same for a denial and for an unreachable API server.
    command: [
      "server",
      "-dev",
      `-dev-root-token-id=${o.token}`,
      "-dev-listen-address=0.0.0.0:8200",
      "-dev-no-store-token",
      "-log-level=debug",
    ],
    env: { VAULT_DISABLE_MLOCK: "true", BAO_DISABLE_MLOCK: "true", SKIP_SETCAP: "true" },
    port: 8200,
    labels: { "vault-k8s-conformance/run": o.runId },
  };
}

/** NodePort an in-cluster Vault is published on (inside kind's node; the host port is free-picked). */
export const IN_CLUSTER_VAULT_NODE_PORT = 30820;

/**
 * Vault inside the cluster: a namespace, a ServiceAccount bound to system:auth-delegator (so
 * Vault may review tokens with its own pod token), a dev-mode Deployment and a NodePort Service.
 * This is the topology where Vault falls back to its pod's CA and JWT.
 */
export function inClusterVaultManifests(o: {
  namespace: string;
  image: string;
  flavor: Flavor;
  token: string;
  runId: string;
  nodePort?: number;
}): KubernetesObject[] {
  const labels = { "vault-k8s-conformance/run": o.runId, app: "vkc-vault" };
  const spec = vaultContainerSpec({ image: o.image, flavor: o.flavor, token: o.token, runId: o.runId });
  return [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: o.namespace, labels } },
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "vault", namespace: o.namespace, labels } },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: `${o.namespace}-vault-tokenreview`, labels },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "system:auth-delegator" },
      subjects: [{ kind: "ServiceAccount", name: "vault", namespace: o.namespace }],
    } as KubernetesObject,
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "vault", namespace: o.namespace, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: "vkc-vault" } },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: "vault",
            containers: [
              {
                name: "vault",
                image: o.image,
                // Loaded into the node with `kind load docker-image` when the host has it: no pull.
                imagePullPolicy: "IfNotPresent",
                command: spec.entrypoint,
                args: spec.command,
                env: Object.entries(spec.env).map(([name, value]) => ({ name, value })),
                ports: [{ containerPort: 8200, name: "http" }],
                readinessProbe: { httpGet: { path: "/v1/sys/health", port: 8200 }, periodSeconds: 2 },
              },
            ],
          },
        },
      },
    } as KubernetesObject,
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "vault", namespace: o.namespace, labels },
      spec: {
        type: "NodePort",
        selector: { app: "vkc-vault" },
        ports: [{ name: "http", port: 8200, targetPort: 8200, nodePort: o.nodePort ?? IN_CLUSTER_VAULT_NODE_PORT }],
      },
    } as KubernetesObject,
  ];
}

/** A word for a POSIX shell: as is when it is plain, else single-quoted. */
const sh = (word: string) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`);

/**
 * Lines that tell the user how to reach and remove what `--keep` kept. The removal line is one
 * shell command (the Vault container first: it is attached to kind's network), with the kind CLI
 * this run used; kind's network is a line of its own, as another kind cluster may use it.
 */
export function keepInstructions(o: {
  clusterName: string;
  kubeconfig: string;
  containerId?: string;
  workDir: string;
  vaultAddress: string;
  tokenFile: string;
  /** The kind CLI the run used (a path, or "kind"). */
  kind?: string;
  engine?: "docker" | "podman";
}): string[] {
  const engine = o.engine ?? "docker";
  const remove = [
    ...(o.containerId ? [`${engine} rm -f -v ${o.containerId.slice(0, 12)}`] : []),
    `${sh(o.kind ?? "kind")} delete cluster --name ${o.clusterName} --kubeconfig ${sh(o.kubeconfig)}`,
    `rm -rf ${sh(o.workDir)}`,
  ];
  return [
    `kept kind cluster ${o.clusterName} and its Vault at ${o.vaultAddress}`,
    `  use them:   export KUBECONFIG=${sh(o.kubeconfig)} VAULT_ADDR=${o.vaultAddress} VAULT_TOKEN="$(cat ${sh(o.tokenFile)})"`,
    `  remove it:  ${remove.join(" && ")}`,
    `  then kind's network, unless another kind cluster uses it:  ${engine} network rm kind`,
  ];
}

/** Capability names by number (linux/capability.h), 0..40. */
const CAPABILITIES = `CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE
NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT
SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP
MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE`.split(/\s+/);

/**
 * The capabilities a bounding set lacks (`CapBnd:` of /proc/<pid>/status, hex), up to the
 * kernel's last capability (/proc/sys/kernel/cap_last_cap): what a privileged container cannot
 * get, so runc fails with "unable to apply caps" (kit/docker/runc-wrapper drops them).
 */
export function missingCapabilities(capBndHex: string, lastCap = 40): string[] {
  if (!/^[0-9a-f]+$/i.test(capBndHex)) return [];
  const bnd = BigInt(`0x${capBndHex}`);
  const out: string[] = [];
  for (let i = 0; i <= lastCap; i++) if (((bnd >> BigInt(i)) & 1n) === 0n) out.push(`CAP_${CAPABILITIES[i] ?? String(i)}`);
  return out;
}

/** The plan's note on the kit's images, for the images the user did not name. */
function kitLine(config: Pick<Config, "kind" | "flavor" | "vault">): string[] {
  const kit = [
    config.kind.nodeImage ? undefined : kitNodeImageFor(config.kind.kubeVersion),
    config.vault.image ? undefined : loadKindPins().kitImages?.vaultImages[config.flavor],
  ].filter(Boolean);
  return kit.length
    ? [`  images: the kit's (npm run kit) instead when the engine has them and not the pinned ones: ${kit.join(", ")}`]
    : [];
}

/** `--dry-run` of the kind target: what a run would create, as printed. */
export function kindPlanText(config: Pick<Config, "kind" | "flavor" | "vault" | "keep" | "issuer">, runId: string): string {
  const node = nodeImageFor({ kubeVersion: config.kind.kubeVersion, image: config.kind.nodeImage });
  const image = vaultImageFor(config.flavor, config.vault.image);
  return (
    [
      `plan of run ${runId} (kind ${node.kind ?? loadKindPins().kind}):`,
      `  kind ${kindArgs.create({ name: runId, image: node.image, configFile: "<run dir>/kind-config.yaml", kubeconfig: "<run dir>/kubeconfig" }).join(" ")}`,
      `  Vault: ${image} ${config.vault.mode === "in-cluster" ? "as a Deployment in the cluster" : "as a container on kind's network"}`,
      `  afterwards: ${config.keep ? "kept (--keep)" : `kind delete cluster --name ${runId}${config.vault.mode === "in-cluster" ? " (Vault goes with it)" : ", the Vault container removed"}`}`,
      ...kitLine(config),
      `  kind-config.yaml:`,
      kindClusterConfig({ name: runId, image: node.image, issuer: config.issuer }).replace(/^/gm, "    "),
    ].join("\n") + "\n"
  );
}
