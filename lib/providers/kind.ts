import { execFileSync } from "node:child_process";
import { createWriteStream, existsSync, readFileSync } from "node:fs";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig, KubernetesObjectApi, type KubernetesObject } from "@kubernetes/client-node";
import { execa } from "execa";
import { onExitSync } from "../cleanup.ts";
import { childEnv, type Config, type ContainerEngine } from "../config.ts";
import { HarnessError, KindError, UsageError, errorMessage } from "../errors.ts";
import { checkPolicies, policyParser } from "../fixtures/check.ts";
import type { RunWorkspace, StartedTarget, TargetInfo, TargetProvider } from "../lifecycle/provider.ts";
import { formatDuration, log } from "../log.ts";
import { freePort } from "../ports.ts";
import { redact } from "../redact.ts";
import { waitForVaultUnsealed } from "../vault/ready.ts";
import { clusterFacts, waitForClusterDns } from "./cluster.ts";
import {
  inClusterVaultManifests,
  IN_CLUSTER_VAULT_NODE_PORT,
  keepInstructions,
  kindArgs,
  kindClusterConfig,
  kindPlanText,
  kitNodeImageFor,
  kubeletRefusesCgroupV1,
  loadKindPins,
  missingCapabilities,
  nodeImageFor,
  parseInternalKubeconfig,
  vaultContainerSpec,
  vaultImageFor,
  type VaultContainerSpec,
} from "./kind-plan.ts";
import { kindCliFor } from "./provision.ts";

/** A started container, as far as the harness cares. */
export interface RunningContainer {
  id: string;
  /** How the harness reaches it from the host, e.g. http://localhost:49153. */
  address: string;
  /** Its IP address on the network it joined (kind's): how the cluster's pods reach it. */
  networkIp?: string;
  stop(): Promise<void>;
}

/**
 * Everything the kind provider does to the outside world. The defaults drive the real kind and
 * docker CLIs and testcontainers; unit tests pass fakes and read the recorded calls.
 */
export interface KindDeps {
  /** The kind CLI to run (a path, or "kind" from PATH). */
  kind: string;
  /** Runs a tool and returns its stdout; rejects with a KindError (`failure: "not-found"` when it is not installed). */
  exec(cmd: string, args: string[], o?: { timeoutMs?: number; logFile?: string }): Promise<string>;
  /** Synchronous, for the last-resort cleanup while the process exits. */
  execSync(cmd: string, args: string[]): void;
  /** `keep`: it outlives the process (--keep), so no last-resort removal at exit. */
  startContainer(spec: VaultContainerSpec, o: { logFile: string; timeoutMs: number; keep?: boolean }): Promise<RunningContainer>;
  applyObjects(kubeconfig: string, objects: KubernetesObject[]): Promise<void>;
  /** The cluster's version and the issuer its discovery document names ("" if not served). */
  clusterFacts(kubeconfig: string): Promise<{ version: string; issuer: string }>;
  /** Waits until Vault reports initialized and unsealed; returns its version. */
  vaultReady(address: string, timeoutMs: number): Promise<string>;
  /** Waits until the cluster's DNS answers for Services (CoreDNS available): pods resolve kubernetes.default.svc. */
  clusterDnsReady(kubeconfig: string, timeoutMs: number, signal?: AbortSignal): Promise<void>;
}

export const kindProvider: TargetProvider = {
  name: "kind",
  async preflight(config, { policies }) {
    await checkPolicies(policies, await policyParser(config), config); // only a binary at hand: provisions nothing
    // Flags first: a bad --kube-version is bad input whatever the machine has.
    nodeImageFor({ kubeVersion: config.kind.kubeVersion, image: config.kind.nodeImage });
    vaultImageFor(config.flavor, config.vault.image);
    await requireKindTools(await kindDeps(config), config.containerEngine);
  },
  async plan(config, runId) {
    process.stdout.write(kindPlanText(config, runId));
    return 0;
  },
  async start(config, ws) {
    // kind's own temp files (kind load's image tars) in the run's work dir: a Ctrl-C that stops kind
    // half-way leaves them there, and the work dir goes with the teardown.
    return startKindTarget(config, ws, await kindDeps(config, ws.workDir));
  },
};

/** The kind CLI the node image was built for: KIND_BIN, the cache, PATH, or installed with Go into the cache. */
async function kindDeps(config: Config, tmp?: string): Promise<KindDeps> {
  // No Docker: say so before spending a minute installing kind.
  await requireContainerEngine(defaultKindDeps("kind", childEnv(config)), config.containerEngine);
  const cli = await kindCliFor(config, { install: !config.noBuild });
  const kind = await cli.resolve().catch((err) => {
    if (err instanceof HarnessError) throw err;
    throw new HarnessError(`cannot install kind ${cli.version}: ${(err as Error).message}`, { exitCode: 2, cause: err });
  });
  return defaultKindDeps(kind?.path ?? "kind", { ...childEnv(config), ...(tmp ? { TMPDIR: tmp } : {}) });
}

const INSTALL_KIND = "https://kind.sigs.k8s.io/docs/user/quick-start/#installation";

const notInstalled = (err: unknown) => err instanceof KindError && err.failure === "not-found";

const firstLine = (text: string) =>
  text
    .split("\n")
    .find((l) => l.trim())
    ?.trim() ?? "failed";

/** docker (or podman) must be installed and running: checked first, it is the cheapest check. */
export async function requireContainerEngine(deps: KindDeps, engine: ContainerEngine = "docker"): Promise<void> {
  try {
    await deps.exec(engine, ["info", "--format", "{{.ServerVersion}}"], { timeoutMs: 20_000 });
  } catch (err) {
    if (notInstalled(err))
      throw new UsageError(
        `the kind target needs ${engine}, which is not on PATH: install Docker (or Podman with KIND_EXPERIMENTAL_PROVIDER=podman), or use --target local (no Docker needed)`,
        { cause: err },
      );
    throw new UsageError(
      `${engine} is installed but not usable (${engine} info: ${firstLine((err as HarnessError).details ?? errorMessage(err))}): start it, or use --target local`,
      { cause: err },
    );
  }
}

/** A container engine and the kind CLI; returns `kind version`. */
export async function requireKindTools(deps: KindDeps, engine: ContainerEngine = "docker"): Promise<string> {
  await requireContainerEngine(deps, engine);
  try {
    return (await deps.exec(deps.kind, ["version"], { timeoutMs: 15_000 })).trim();
  } catch (err) {
    if (notInstalled(err))
      throw new UsageError(
        `the kind target needs the kind CLI, which is not on PATH: install kind ${loadKindPins().kind} (${INSTALL_KIND}), set KIND_BIN, or use --target local`,
        { cause: err },
      );
    throw new UsageError(`${deps.kind} version failed: ${errorMessage(err).split("\n")[0]}`, { cause: err });
  }
}

type VaultMode = "container" | "in-cluster";

/** What the tools, flags and pins decided before anything is created. */
interface KindSetup {
  node: ReturnType<typeof nodeImageFor>;
  image: string;
  /** The Vault image is in the host's engine (so it can be `kind load`ed into the node). */
  imageLocal: boolean;
  kindVersion: string;
  mode: VaultMode;
  /** cgroup v1 host and a kubelet that refuses it by default: the cluster config patches it in. */
  allowCgroupV1: boolean;
}

/** True when the engine has `image` (a missing engine is still an error). */
async function imagePresent(deps: KindDeps, engine: ContainerEngine, image: string): Promise<boolean> {
  try {
    await deps.exec(engine, ["image", "inspect", "--format", "{{.Id}}", image], { timeoutMs: 20_000 });
    return true;
  } catch (err) {
    if (notInstalled(err)) throw err;
    return false;
  }
}

/**
 * An image the user did not name: the pinned default when the engine has it, else the kit's
 * (fixtures/kind.json kitImages, what `npm run kit` builds) when the engine has that; otherwise
 * the default, not known to be present (requireImage then pulls it or says how to get one).
 */
async function defaultOrKit(
  deps: KindDeps,
  engine: ContainerEngine,
  image: string,
  kit: string | undefined,
): Promise<{ image: string; present: boolean; kit: boolean }> {
  if (!kit || kit === image) return { image, present: false, kit: false };
  if (await imagePresent(deps, engine, image)) return { image, present: true, kit: false };
  if (!(await imagePresent(deps, engine, kit))) return { image, present: false, kit: false };
  log.info("kind", `${image} is not in the engine; using the kit's ${kit} (fixtures/kind.json kitImages)`);
  return { image: kit, present: true, kit: true };
}

/** How long `docker pull` may take to decide whether a missing image can be pulled at all. */
export const PULL_PROBE_MS = 20_000;

/**
 * An image the run needs: present in the engine, or pulled now. Returns true when it is (now)
 * present. A pull that fails is bad input (UsageError, exit 2, before any cluster exists); a pull
 * still running after PULL_PROBE_MS cannot be judged (a registry that is reachable but slow), so
 * kind or the engine pulls it later and only a warning is logged.
 */
export async function requireImage(
  deps: KindDeps,
  engine: ContainerEngine,
  image: string,
  what: { noun: string; flag: string },
): Promise<boolean> {
  try {
    await deps.exec(engine, ["image", "inspect", "--format", "{{.Id}}", image], { timeoutMs: 20_000 });
    return true;
  } catch (err) {
    if (notInstalled(err)) throw err;
  }
  try {
    await deps.exec(engine, ["pull", image], { timeoutMs: PULL_PROBE_MS });
    return true;
  } catch (err) {
    if (err instanceof KindError && err.failure === "timeout") {
      log.warn("kind", `${what.noun} ${image} is not present and still pulling after ${formatDuration(PULL_PROBE_MS)}; continuing`);
      return false;
    }
    throw new UsageError(
      `${what.noun} ${image} is not present and cannot be pulled: build it with \`npm run kit\` (kit/README.md) or name one with ${what.flag}`,
      { cause: err, details: (err as HarnessError).details ?? errorMessage(err) },
    );
  }
}

/** How long the privileged probe container may take (create, run /bin/true, remove). */
const PROBE_MS = 60_000;

/**
 * kind's node is a privileged container. An engine whose runtime cannot give one every
 * capability (runc: "unable to apply caps: operation not permitted", when the host's bounding set
 * withholds one, e.g. CAP_SYS_RESOURCE in some sandboxes) fails `kind create` half-way; a tiny
 * privileged container from an image the engine already has (the node image, /bin/true) says so
 * first, in one line with the way out. A probe that fails for another reason only warns: kind
 * gets its chance and its own error.
 */
export async function requirePrivilegedContainers(
  deps: KindDeps,
  engine: ContainerEngine,
  image: string,
  o: { name: string; runId: string; withheld?: () => string[] },
): Promise<void> {
  const args = ["run", "--rm", "--privileged", "--network", "none", "--name", o.name, "--label", `vault-k8s-conformance/run=${o.runId}`];
  try {
    await deps.exec(engine, [...args, "--entrypoint", "/bin/true", image], { timeoutMs: PROBE_MS });
    return;
  } catch (err) {
    if (notInstalled(err)) throw err;
    // A container whose start failed can stay behind in "created" state despite --rm.
    await deps.exec(engine, ["rm", "-f", "-v", o.name], { timeoutMs: 30_000 }).catch(() => undefined);
    const evidence = (err as HarnessError).details ?? errorMessage(err);
    const reason = /unable to apply caps[^\n]*|capset[^\n]*/i.exec(evidence)?.[0];
    if (!reason) {
      log.warn(
        "kind",
        `a privileged probe container (${engine} run --privileged ${image}) failed: ${firstLine(evidence)}; trying kind anyway`,
      );
      return;
    }
    const caps = (o.withheld ?? withheldCapabilities)();
    const which = caps.length ? `this host withholds ${caps.join(", ")}` : "the host withholds a capability";
    throw new UsageError(
      `${engine} refuses privileged containers, which kind's nodes are (${engine} run --privileged: ${reason.replace(/[:\s]+(unknown\.?)?$/, "")}): ${which}; ` +
        "install the runc wrapper that drops it with kit/docker/install-engine.sh (kit/README.md), or use --target local",
      { cause: err }, // one line: the reason is in it; --debug shows the cause
    );
  }
}

/** The capabilities this machine's bounding set lacks (what runc cannot give a privileged container). */
function withheldCapabilities(): string[] {
  try {
    const bnd = /^CapBnd:\s*([0-9a-f]+)/im.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
    const last = Number(readFileSync("/proc/sys/kernel/cap_last_cap", "utf8").trim());
    return bnd ? missingCapabilities(bnd, Number.isInteger(last) ? last : 40) : [];
  } catch {
    return [];
  }
}

/** True when the engine's host runs cgroup v1 (docker: CgroupVersion "1"; podman: "v1"). Unknown counts as v2. */
export async function hostIsCgroupV1(deps: KindDeps, engine: ContainerEngine): Promise<boolean> {
  const format = engine === "podman" ? "{{.Host.CgroupsVersion}}" : "{{.CgroupVersion}}";
  try {
    return /^v?1$/.test((await deps.exec(engine, ["info", "--format", format], { timeoutMs: 20_000 })).trim());
  } catch {
    return false;
  }
}

/** What `kind create cluster` gave: where the harness and Vault reach the API server. */
interface KindCluster {
  name: string;
  kubeconfig: string;
  internal: { server: string; caPem: string };
  /** In-cluster Vault: the loopback port mapped to its NodePort. */
  hostPort: number | undefined;
}

const TIMEOUT_MS = 180_000;

/**
 * A kind cluster per run plus a dev Vault, either as a container on kind's docker network or as
 * a Deployment inside the cluster, in the run's workspace:
 *   tools -> kind create cluster --wait -> internal address and CA -> Vault (container or
 *   in-cluster manifests) -> ready
 * Cleanups are registered before the thing they undo is created (a Ctrl-C during `kind create`
 * still deletes the cluster); `--keep` keeps cluster and Vault and prints how to remove them.
 */
export async function startKindTarget(
  config: Config,
  ws: RunWorkspace,
  deps: KindDeps = defaultKindDeps("kind", childEnv(config)),
): Promise<StartedTarget> {
  const started = Date.now();
  const setup = await checkKindSetup(config, deps, ws.runId);
  await ws.ensureLogDir();
  const exportLogs = () => exportKindLogs(deps, ws);
  let clusterCreated = false;
  try {
    const token = ws.newRootToken();
    const tokenFile = await ws.writeSecret("vault-token", token);
    log.info(
      "kind",
      `${ws.runId}: creating cluster ${ws.runId} (${setup.node.image}, issuer ${config.issuer}), Vault ${setup.image} (${setup.mode})`,
    );
    const cluster = await ws.step("kind create cluster", () => createCluster(config, ws, deps, setup));
    clusterCreated = true;
    log.info(
      "kind",
      `${ws.runId}: cluster up in ${formatDuration(Date.now() - started)}; starting ${config.flavor} ${setup.image} ${setup.mode === "container" ? "as a container on kind's network" : "in the cluster"}`,
    );
    // `kind create --wait` waits for the node only. A Vault in the cluster reaches the API server as
    // kubernetes.default.svc and the apps reach Vault by its Service's name: that mode also waits
    // for the cluster's DNS, beside Vault's start. (As a container, Vault and the apps use addresses.)
    const dnsWait = new AbortController();
    const dns = setup.mode === "in-cluster" ? deps.clusterDnsReady(cluster.kubeconfig, TIMEOUT_MS, dnsWait.signal) : Promise.resolve();
    dns.catch(() => undefined); // awaited below; aborted when Vault's start fails first
    let vault: KindVault;
    let vaultVersion: string;
    try {
      vault = await ws.step(config.flavor, () =>
        setup.mode === "container"
          ? startVaultContainer(config, ws, deps, setup, cluster, token)
          : startVaultInCluster(config, ws, deps, setup, cluster, token),
      );
      vaultVersion = await ws.step("vault ready", () => deps.vaultReady(vault.address, TIMEOUT_MS));
      await ws.step("cluster DNS ready", () => dns);
    } finally {
      dnsWait.abort();
    }
    const facts = await deps.clusterFacts(cluster.kubeconfig);
    if (config.keep)
      ws.defer("print how to remove what --keep kept", () => {
        const o = { clusterName: cluster.name, kubeconfig: cluster.kubeconfig, containerId: vault.containerId, workDir: ws.workDir };
        const how = { kind: deps.kind, engine: config.containerEngine };
        for (const line of keepInstructions({ ...o, ...how, vaultAddress: vault.address, tokenFile })) log.info("kind", line);
      });
    const info = kindTargetInfo(config, ws, { setup, cluster, vault, vaultVersion, facts, tokenFile });
    if (facts.issuer && facts.issuer !== config.issuer)
      log.warn("kind", `the cluster's discovery document names issuer ${facts.issuer}, not ${config.issuer}`);
    const ms = Date.now() - started;
    log.info("kind", `${ws.runId}: ready in ${formatDuration(ms)}: kubernetes ${facts.version}, ${config.flavor} ${vaultVersion}`);
    return ws.started(info, ms, { onFailure: exportLogs });
  } catch (err) {
    // The cluster exists but the target did not come up: its logs say why, before it is deleted.
    if (clusterCreated) await exportLogs();
    throw err;
  }
}

/** What the suites get to know about the kind target. */
function kindTargetInfo(
  config: Config,
  ws: RunWorkspace,
  o: { setup: KindSetup; cluster: KindCluster; vault: KindVault; vaultVersion: string; facts: { version: string }; tokenFile: string },
): TargetInfo {
  const { setup, cluster, vault, vaultVersion, facts, tokenFile } = o;
  return {
    runId: ws.runId,
    target: "kind",
    flavor: config.flavor,
    kube: {
      kubeconfigPath: cluster.kubeconfig,
      context: `kind-${cluster.name}`,
      server: serverOf(cluster.kubeconfig),
      hostForVault: vault.hostForVault,
      caCertForVault: cluster.internal.caPem,
      issuers: [config.issuer],
      apiAudiences: [],
      version: facts.version,
    },
    vault: {
      address: vault.address,
      tokenFile,
      flavor: config.flavor,
      version: vaultVersion,
      outsideCluster: setup.mode === "container",
      ...(vault.addressForPods ? { addressForPods: vault.addressForPods } : {}),
    },
    versions: {
      kubernetes: facts.version,
      [config.flavor]: vaultVersion,
      kind: setup.kindVersion,
      nodeImage: setup.node.image,
      vaultImage: setup.image,
    },
    artifactsDir: ws.artifactsDir,
    logs: {
      "kind-create": join(ws.logDir, "kind-create.log"),
      ...(setup.mode === "container" ? { [config.flavor]: join(ws.logDir, `${config.flavor}.log`) } : {}),
    },
  };
}

/** Flags, pins and tools, before anything is created. */
async function checkKindSetup(config: Config, deps: KindDeps, runId: string): Promise<KindSetup> {
  const engine = config.containerEngine;
  const kindVersion = await requireKindTools(deps, engine);
  // Images the user did not name: the pinned ones, or the kit's when only those are present.
  const nodeChoice = await defaultOrKit(
    deps,
    engine,
    nodeImageFor({ kubeVersion: config.kind.kubeVersion, image: config.kind.nodeImage }).image,
    config.kind.nodeImage ? undefined : kitNodeImageFor(config.kind.kubeVersion),
  );
  const node = nodeChoice.kit
    ? nodeImageFor({ image: nodeChoice.image })
    : nodeImageFor({ kubeVersion: config.kind.kubeVersion, image: config.kind.nodeImage });
  const vaultChoice = await defaultOrKit(
    deps,
    engine,
    vaultImageFor(config.flavor, config.vault.image),
    config.vault.image ? undefined : loadKindPins().kitImages?.vaultImages[config.flavor],
  );
  const image = vaultChoice.image;
  if (node.kind && !kindVersion.includes(node.kind))
    log.warn("kind", `node image ${node.image} is built for kind ${node.kind}; this is ${kindVersion}`);
  if (!node.pinned && !nodeChoice.kit)
    log.warn("kind", `node image ${node.image} is not pinned by digest (pinned images: fixtures/kind.json)`);
  // Both images, before any cluster exists: a missing one is bad input, not a failed run.
  const nodeLocal = nodeChoice.present || (await requireImage(deps, engine, node.image, { noun: "node image", flag: "--node-image" }));
  const vaultNoun = `${config.flavor === "openbao" ? "OpenBao" : "Vault"} image`;
  const imageLocal = vaultChoice.present || (await requireImage(deps, engine, image, { noun: vaultNoun, flag: "--vault-image" }));
  if (nodeLocal) await requirePrivilegedContainers(deps, engine, node.image, { name: `${runId}-probe`, runId });
  const allowCgroupV1 = kubeletRefusesCgroupV1(node.kubeVersion) && (await hostIsCgroupV1(deps, engine));
  if (allowCgroupV1)
    log.warn("kind", `cgroup v1 host: Kubernetes ${node.kubeVersion}'s kubelet refuses it by default; setting failCgroupV1: false`);
  const mode = config.vault.mode === "in-cluster" ? "in-cluster" : "container";
  return { node, image, imageLocal, kindVersion, mode, allowCgroupV1 };
}

/** kind create cluster --wait, its deletion registered first (unless --keep); then the internal address and CA. */
async function createCluster(config: Config, ws: RunWorkspace, deps: KindDeps, setup: KindSetup): Promise<KindCluster> {
  const name = ws.runId;
  const kubeconfig = join(ws.workDir, "kubeconfig");
  const hostPort = setup.mode === "in-cluster" ? await freePort() : undefined;
  const configFile = await ws.writeSecret(
    "kind-config.yaml",
    kindClusterConfig({
      name,
      image: setup.node.image,
      issuer: config.issuer,
      ...(hostPort ? { portMapping: { hostPort, nodePort: IN_CLUSTER_VAULT_NODE_PORT } } : {}),
      ...(setup.allowCgroupV1 ? { allowCgroupV1: true } : {}),
    }),
  );
  if (!config.keep) {
    // Runs after the cluster's deletion (cleanups run newest first). kind deletes the kubeconfig
    // entries it added, and those are in the run's own kubeconfig (removed with the work dir).
    if (config.containerEngine === "docker") ws.defer("remove the kind network if unused", () => removeIdleKindNetwork(deps));
    const del = kindArgs.delete(name, kubeconfig);
    const forget = onExitSync(() => deps.execSync(deps.kind, del));
    ws.defer(`delete kind cluster ${name}`, async () => {
      try {
        await deps.exec(deps.kind, del, { timeoutMs: 120_000 });
      } finally {
        // A Ctrl-C while `kind create` ran can leave a node container kind's delete did not see yet.
        await removeNodeContainers(deps, config.containerEngine, name);
      }
      forget();
    });
  }
  await deps.exec(deps.kind, kindArgs.create({ name, image: setup.node.image, configFile, kubeconfig }), {
    timeoutMs: 600_000,
    logFile: join(ws.logDir, "kind-create.log"),
  });
  const internal = parseInternalKubeconfig(await deps.exec(deps.kind, kindArgs.internalKubeconfig(name), { timeoutMs: 30_000 }));
  return { name, kubeconfig, internal, hostPort };
}

interface KindVault {
  address: string;
  /** How the cluster's pods reach it: the in-cluster Service, or the container on kind's network. */
  addressForPods: string | undefined;
  /** kubernetes_host as Vault reaches the API server. */
  hostForVault: string;
  containerId?: string;
}

/** Vault as a container on kind's network: reaches the API server at the control plane's internal name. */
async function startVaultContainer(
  config: Config,
  ws: RunWorkspace,
  deps: KindDeps,
  setup: KindSetup,
  cluster: KindCluster,
  token: string,
): Promise<KindVault> {
  const spec = vaultContainerSpec({ image: setup.image, flavor: config.flavor, token, runId: ws.runId });
  const container = await deps.startContainer(spec, {
    logFile: join(ws.logDir, `${config.flavor}.log`),
    timeoutMs: TIMEOUT_MS,
    keep: config.keep,
  });
  if (!config.keep) ws.defer(`remove ${config.flavor} container ${container.id.slice(0, 12)}`, () => container.stop());
  return {
    address: container.address,
    addressForPods: container.networkIp ? `http://${container.networkIp}:${spec.port}` : undefined,
    hostForVault: cluster.internal.server,
    containerId: container.id,
  };
}

/** Vault as a Deployment in the cluster (removed with it), reached through the mapped loopback port. */
async function startVaultInCluster(
  config: Config,
  ws: RunWorkspace,
  deps: KindDeps,
  setup: KindSetup,
  cluster: KindCluster,
  token: string,
): Promise<KindVault> {
  const namespace = `vkc-vault-${ws.runId.slice(-6)}`;
  const manifests = inClusterVaultManifests({
    namespace,
    image: setup.image,
    flavor: config.flavor,
    token,
    runId: ws.runId,
  });
  // No registry is needed for an image the host has: the node gets a copy (imagePullPolicy: IfNotPresent).
  if (setup.imageLocal) await deps.exec(deps.kind, kindArgs.loadImage(cluster.name, setup.image), { timeoutMs: 300_000 });
  await deps.applyObjects(cluster.kubeconfig, manifests);
  return {
    address: `http://127.0.0.1:${cluster.hostPort}`,
    // The Service of inClusterVaultManifests, through the cluster's DNS.
    addressForPods: `http://vault.${namespace}.svc:8200`,
    hostForVault: "https://kubernetes.default.svc",
  };
}

/** The node containers of cluster `name` (kind labels them), removed with their volumes; failures only warn. */
export async function removeNodeContainers(deps: KindDeps, engine: ContainerEngine, name: string): Promise<void> {
  try {
    const ids = (await deps.exec(engine, ["ps", "-aq", "--filter", `label=io.x-k8s.kind.cluster=${name}`], { timeoutMs: 20_000 }))
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean);
    if (ids.length) await deps.exec(engine, ["rm", "-f", "-v", ...ids], { timeoutMs: 60_000 });
  } catch (err) {
    log.warn("kind", `could not check for node containers of ${name}: ${errorMessage(err).split("\n")[0]}`);
  }
}

/**
 * `kind delete cluster` leaves the `kind` docker network it created. Removed when no container is
 * attached any more (another kind cluster, or anything else on it, keeps it); failures only warn.
 */
export async function removeIdleKindNetwork(deps: KindDeps, engine: ContainerEngine = "docker"): Promise<void> {
  try {
    const attached = (
      await deps.exec(engine, ["network", "inspect", "kind", "--format", "{{len .Containers}}"], { timeoutMs: 20_000 })
    ).trim();
    if (attached !== "0") return;
    await deps.exec(engine, ["network", "rm", "kind"], { timeoutMs: 30_000 });
  } catch (err) {
    // No such network (already gone), or one that became busy in between: nothing to do.
    log.debug("kind", `kind network left as is: ${errorMessage(err).split("\n")[0]}`);
  }
}

/** After a failed run (or a start that failed once the cluster existed): `kind export logs` into the diagnostics bundle. */
async function exportKindLogs(deps: KindDeps, ws: RunWorkspace): Promise<void> {
  const dir = join(ws.artifactsDir, "diagnostics", "kind-logs");
  try {
    await deps.exec(deps.kind, kindArgs.exportLogs(ws.runId, dir), { timeoutMs: 180_000 });
    // The pods' logs are in there, the in-cluster dev Vault's banner (its root token) among them.
    await redactTree(dir);
    log.info("kind", `exported cluster logs to ${dir}`);
  } catch (err) {
    log.warn("kind", `kind export logs failed: ${errorMessage(err)}`);
  }
}

/** Rewrites every file below `dir` whose text holds a secret the run knows (or a token-shaped string), redacted. */
async function redactTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath, entry.name);
    const text = await readFile(file, "utf8");
    const clean = redact(text);
    if (clean !== text) await writeFile(file, clean);
  }
}

/** The run's own kubeconfig file (kind wrote it). */
function kubeconfigAt(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

function serverOf(kubeconfig: string): string {
  return kubeconfigAt(kubeconfig).getCurrentCluster()?.server ?? "";
}

/**
 * testcontainers' reaper (Ryuk) is an image of its own; with no registry and no local copy, the
 * first container start fails pulling it. testcontainers reads its reaper settings only from
 * process.env (RYUK_CONTAINER_IMAGE when the module loads, TESTCONTAINERS_RYUK_DISABLED when the
 * first container starts), never from an env passed to it, so this is the one place the harness
 * writes process.env: when the run's env names no reaper image, does not decide
 * TESTCONTAINERS_RYUK_DISABLED itself, and the default reaper image is not in the engine, it sets
 * TESTCONTAINERS_RYUK_DISABLED=true. The provider's own teardown then removes the Vault container
 * (container.stop, and `docker rm -f` at exit if the process dies first).
 */
async function disableReaperWithoutImage(env: Record<string, string>): Promise<void> {
  if (env.RYUK_CONTAINER_IMAGE || env.TESTCONTAINERS_RYUK_DISABLED || process.env.TESTCONTAINERS_RYUK_DISABLED) return;
  let image = "testcontainers/ryuk:0.14.0";
  try {
    image = (await import("testcontainers/build/reaper/reaper.js")).REAPER_IMAGE;
  } catch {
    // an older or newer layout: the default of testcontainers 11
  }
  const res = await execa("docker", ["image", "inspect", "--format", "{{.Id}}", image], {
    reject: false,
    env,
    extendEnv: false,
    timeout: 20_000,
  });
  if (res.exitCode === 0) return;
  log.warn(
    "kind",
    `testcontainers' reaper image ${image} is not present: running without it (TESTCONTAINERS_RYUK_DISABLED=true); set RYUK_CONTAINER_IMAGE to use one`,
  );
  process.env.TESTCONTAINERS_RYUK_DISABLED = "true";
}

/** The real kind, docker and testcontainers. */
export function defaultKindDeps(kind: string, env: Record<string, string>): KindDeps {
  return {
    kind,
    async exec(cmd, args, o = {}) {
      const res = await execa(cmd, args, { timeout: o.timeoutMs, reject: false, all: true, env, extendEnv: false });
      if (o.logFile) await writeFile(o.logFile, redact(res.all ?? ""), { mode: 0o600 });
      const what = `${cmd} ${args.slice(0, 2).join(" ")}`;
      const spawnCode = (res as { code?: string }).code ?? (res.cause as NodeJS.ErrnoException | undefined)?.code;
      if (spawnCode === "ENOENT") throw new KindError(`${cmd}: not found`, { command: cmd, failure: "not-found", cause: res.cause });
      if (res.timedOut)
        throw new KindError(`${what} did not finish within ${formatDuration(o.timeoutMs ?? 0)}`, {
          command: cmd,
          failure: "timeout",
          cause: res.cause,
        });
      if (res.exitCode !== 0) {
        const tail = (res.all ?? "").trim().split("\n").slice(-15).join("\n");
        throw new KindError(`${what} exited ${res.exitCode}`, {
          command: cmd,
          failure: "exit",
          ...(res.exitCode !== undefined ? { status: res.exitCode } : {}),
          cause: res.cause,
          details: redact(tail),
        });
      }
      return res.stdout;
    },
    execSync(cmd, args) {
      execFileSync(cmd, args, { stdio: "ignore", timeout: 120_000, env });
    },
    async startContainer(spec, o) {
      let tc: typeof import("testcontainers");
      try {
        tc = await import("testcontainers");
      } catch (err) {
        throw new HarnessError(`cannot load testcontainers: ${errorMessage(err)}`, { cause: err });
      }
      // No container runtime for testcontainers: its own lookup fails (the failure, not its text, decides).
      try {
        await tc.getContainerRuntimeClient();
      } catch (err) {
        throw new UsageError("testcontainers found no Docker to start Vault in: start Docker (or set DOCKER_HOST), or use --target local", {
          cause: err,
        });
      }
      await disableReaperWithoutImage(env);
      // testcontainers takes a lock on an empty file in TMPDIR while it looks for its reaper, and
      // leaves the file: removed below when this run made it and nobody holds the lock now.
      const lockFile = join(tmpdir(), "testcontainers-node.lock");
      const ourLockFile = !existsSync(lockFile);
      let container: Awaited<ReturnType<InstanceType<typeof tc.GenericContainer>["start"]>>;
      try {
        container = await new tc.GenericContainer(spec.image)
          .withEntrypoint(spec.entrypoint)
          .withCommand(spec.command)
          .withEnvironment(spec.env)
          .withExposedPorts(spec.port)
          .withNetworkMode(spec.network)
          .withLabels(spec.labels)
          .withWaitStrategy(tc.Wait.forHttp("/v1/sys/health", spec.port).forStatusCode(200))
          .withStartupTimeout(o.timeoutMs)
          .start();
      } catch (err) {
        throw new HarnessError(`${spec.flavor} container ${spec.image} did not start: ${redact(errorMessage(err).split("\n")[0] ?? "")}`, {
          cause: err,
        });
      } finally {
        if (ourLockFile && !existsSync(`${lockFile}.lock`)) await rm(lockFile, { force: true }).catch(() => undefined);
      }
      // Last resort when the process dies before teardown (and no reaper runs): remove it on exit,
      // unless it is kept (--keep).
      const id = container.getId();
      const forget = o.keep
        ? () => undefined
        : onExitSync(() => execFileSync("docker", ["rm", "-f", "-v", id], { stdio: "ignore", timeout: 30_000, env }));
      const out = createWriteStream(o.logFile, { mode: 0o600 });
      (await container.logs()).on("data", (d: Buffer) => out.write(redact(d.toString())));
      return {
        id: container.getId(),
        address: `http://${container.getHost()}:${container.getMappedPort(spec.port)}`,
        networkIp: container.getIpAddress(spec.network),
        stop: async () => {
          await container.stop({ timeout: 5_000 }); // removes the container and its volumes
          forget();
          out.end();
        },
      };
    },
    async applyObjects(kubeconfig, objects) {
      const api = KubernetesObjectApi.makeApiClient(kubeconfigAt(kubeconfig));
      for (const obj of objects) await api.create(obj);
    },
    async clusterFacts(kubeconfig) {
      return clusterFacts(kubeconfigAt(kubeconfig), {
        status: (status) => new HarnessError(`the kind cluster answered /version with HTTP ${status}`),
      });
    },
    vaultReady(address, timeoutMs) {
      return waitForVaultUnsealed(address, { what: `Vault at ${address} reports unsealed`, timeoutMs });
    },
    clusterDnsReady(kubeconfig, timeoutMs, signal) {
      return waitForClusterDns(kubeconfigAt(kubeconfig), timeoutMs, signal);
    },
  };
}
