import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig, KubernetesObjectApi, type KubernetesObject } from "@kubernetes/client-node";
import { execa } from "execa";
import { onExitSync, Teardown } from "../cleanup.ts";
import type { Config } from "../config.ts";
import { HarnessError, UsageError, errorMessage } from "../errors.ts";
import { httpJson } from "../http.ts";
import { rawGet } from "../kube/client.ts";
import { formatDuration, log } from "../log.ts";
import { freePort } from "../ports.ts";
import { redact, registerSecret } from "../redact.ts";
import type { TargetInfo } from "../lifecycle/info.ts";
import { waitFor } from "../wait.ts";
import {
  inClusterVaultManifests,
  IN_CLUSTER_VAULT_NODE_PORT,
  keepInstructions,
  kindArgs,
  kindClusterConfig,
  loadKindPins,
  nodeImageFor,
  parseInternalKubeconfig,
  vaultContainerSpec,
  vaultImageFor,
  type VaultContainerSpec,
} from "./kind-plan.ts";
import { newRunId } from "./local.ts";

/** A started container, as far as the harness cares. */
export interface RunningContainer {
  id: string;
  /** How the harness reaches it from the host, e.g. http://localhost:49153. */
  address: string;
  stop(): Promise<void>;
}

/**
 * Everything the kind provider does to the outside world. The defaults drive the real kind and
 * docker CLIs and testcontainers; unit tests pass fakes and read the recorded calls.
 */
export interface KindDeps {
  /** The kind CLI to run (a path, or "kind" from PATH). */
  kind: string;
  /** Runs a tool and returns its stdout; rejects with `code: "ENOENT"` when it is not installed. */
  exec(cmd: string, args: string[], o?: { timeoutMs?: number; logFile?: string }): Promise<string>;
  /** Synchronous, for the last-resort cleanup while the process exits. */
  execSync(cmd: string, args: string[]): void;
  startContainer(spec: VaultContainerSpec, o: { logFile: string; timeoutMs: number }): Promise<RunningContainer>;
  applyObjects(kubeconfig: string, objects: KubernetesObject[]): Promise<void>;
  /** The cluster's version and the issuer its discovery document names ("" if not served). */
  clusterFacts(kubeconfig: string): Promise<{ version: string; issuer: string }>;
  /** Waits until Vault reports initialized and unsealed; returns its version. */
  vaultReady(address: string, timeoutMs: number): Promise<string>;
}

export class StartedKindTarget implements AsyncDisposable {
  constructor(
    readonly info: TargetInfo,
    private readonly teardown: Teardown,
    readonly startupMs: number,
    private readonly exportLogs: () => Promise<void>,
  ) {}

  /** After a failed run: `kind export logs` into the run's artifacts. */
  async onFailure(): Promise<void> {
    await this.exportLogs();
  }

  stop(): Promise<void> {
    return this.teardown.run();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

const INSTALL_KIND = "https://kind.sigs.k8s.io/docs/user/quick-start/#installation";

const missing = (err: unknown) => (err as NodeJS.ErrnoException).code === "ENOENT";

const firstLine = (text: string) =>
  text
    .split("\n")
    .find((l) => l.trim())
    ?.trim() ?? "failed";

/** docker (or podman) must be installed and running: checked first, it is the cheapest check. */
export async function requireContainerEngine(deps: KindDeps, env: Record<string, string | undefined> = process.env): Promise<void> {
  const engine = env.KIND_EXPERIMENTAL_PROVIDER === "podman" ? "podman" : "docker";
  try {
    await deps.exec(engine, ["info", "--format", "{{.ServerVersion}}"], { timeoutMs: 20_000 });
  } catch (err) {
    if (missing(err))
      throw new UsageError(
        `the kind target needs ${engine}, which is not on PATH: install Docker (or Podman with KIND_EXPERIMENTAL_PROVIDER=podman), or use --target local (no Docker needed)`,
      );
    throw new UsageError(
      `${engine} is installed but not usable (${engine} info: ${firstLine((err as HarnessError).details ?? errorMessage(err))}): start it, or use --target local`,
    );
  }
}

/** A container engine and the kind CLI; returns `kind version`. */
export async function requireKindTools(deps: KindDeps, env: Record<string, string | undefined> = process.env): Promise<string> {
  await requireContainerEngine(deps, env);
  try {
    return (await deps.exec(deps.kind, ["version"], { timeoutMs: 15_000 })).trim();
  } catch (err) {
    if (missing(err))
      throw new UsageError(
        `the kind target needs the kind CLI, which is not on PATH: install kind ${loadKindPins().kind} (${INSTALL_KIND}), set KIND_BIN, or use --target local`,
      );
    throw new UsageError(`${deps.kind} version failed: ${errorMessage(err).split("\n")[0]}`);
  }
}

/**
 * A kind cluster per run plus a dev Vault, either as a container on kind's docker network or as
 * a Deployment inside the cluster. Steps:
 *   tools -> work dir -> cluster config -> kind create cluster --wait -> internal address and CA
 *   -> Vault (container via testcontainers, or in-cluster manifests) -> ready
 * Cleanups are registered before the thing they undo is created (a Ctrl-C during `kind create`
 * still deletes the cluster); `--keep` keeps cluster and Vault and prints how to remove them.
 */
export async function startKindTarget(config: Config, deps: KindDeps = defaultKindDeps()): Promise<StartedKindTarget> {
  const started = Date.now();
  const flavor = config.flavor;
  const mode = config.vault.mode === "in-cluster" ? "in-cluster" : "container";
  const node = nodeImageFor({ kubeVersion: config.kind.kubeVersion, image: config.kind.nodeImage });
  const image = vaultImageFor(flavor, config.vault.image);
  const kindVersion = await requireKindTools(deps);
  if (node.kind && !kindVersion.includes(node.kind))
    log.warn("kind", `node image ${node.image} is built for kind ${node.kind}; this is ${kindVersion}`);
  if (!node.pinned) log.warn("kind", `node image ${node.image} is not pinned by digest (pinned images: fixtures/kind.json)`);

  const runId = newRunId();
  const name = runId;
  const keep = config.keep;
  const timeout = 180_000;
  const t = new Teardown(`kind target ${runId}`).tieToSignals();
  let clusterCreated = false;
  let exportLogs = async (): Promise<void> => {};
  try {
    const work = await mkdtemp(join(tmpdir(), `${runId}-`));
    await chmod(work, 0o700);
    if (!keep) {
      const forget = onExitSync(() => rmSyncQuiet(work));
      t.defer("remove work dir", async () => {
        await rm(work, { recursive: true, force: true });
        forget();
      });
    }
    const artifactsDir = join(config.reportsDir, "artifacts", runId);
    // Into the diagnostics bundle, next to the failed cases' own bundles.
    exportLogs = async () => {
      const dir = join(artifactsDir, "diagnostics", "kind-logs");
      try {
        await deps.exec(deps.kind, kindArgs.exportLogs(name, dir), { timeoutMs: 180_000 });
        log.info("kind", `exported cluster logs to ${dir}`);
      } catch (err) {
        log.warn("kind", `kind export logs failed: ${errorMessage(err)}`);
      }
    };
    const logDir = join(artifactsDir, "logs");
    await mkdir(logDir, { recursive: true });
    const token = registerSecret(`vkc-root-${randomBytes(18).toString("base64url")}`);
    const tokenFile = join(work, "vault-token");
    await writeFile(tokenFile, token, { mode: 0o600 });
    const kubeconfig = join(work, "kubeconfig");
    const configFile = join(work, "kind-config.yaml");
    const hostPort = mode === "in-cluster" ? await freePort() : undefined;
    await writeFile(
      configFile,
      kindClusterConfig({
        name,
        image: node.image,
        issuer: config.issuer,
        ...(hostPort ? { portMapping: { hostPort, nodePort: IN_CLUSTER_VAULT_NODE_PORT } } : {}),
      }),
      { mode: 0o600 },
    );

    log.info("kind", `${runId}: creating cluster ${name} (${node.image}, issuer ${config.issuer}), Vault ${image} (${mode})`);
    if (!keep) {
      const del = kindArgs.delete(name, kubeconfig);
      const forget = onExitSync(() => deps.execSync(deps.kind, del));
      t.defer(`delete kind cluster ${name}`, async () => {
        await deps.exec(deps.kind, del, { timeoutMs: 120_000 });
        forget();
      });
    }
    await deps.exec(deps.kind, kindArgs.create({ name, image: node.image, configFile, kubeconfig }), {
      timeoutMs: 600_000,
      logFile: join(logDir, "kind-create.log"),
    });
    clusterCreated = true;
    const internal = parseInternalKubeconfig(await deps.exec(deps.kind, kindArgs.internalKubeconfig(name), { timeoutMs: 30_000 }));

    let vaultAddress: string;
    let containerId: string | undefined;
    let hostForVault = internal.server;
    if (mode === "container") {
      const spec = vaultContainerSpec({ image, flavor, token, runId });
      const container = await deps.startContainer(spec, { logFile: join(logDir, `${flavor}.log`), timeoutMs: timeout });
      containerId = container.id;
      if (!keep) t.defer(`remove ${flavor} container ${container.id.slice(0, 12)}`, () => container.stop());
      vaultAddress = container.address;
    } else {
      // Removed with the cluster.
      await deps.applyObjects(
        kubeconfig,
        inClusterVaultManifests({ namespace: `vkc-vault-${runId.slice(-6)}`, image, flavor, token, runId }),
      );
      vaultAddress = `http://127.0.0.1:${hostPort}`;
      hostForVault = "https://kubernetes.default.svc";
    }
    const vaultVersion = await deps.vaultReady(vaultAddress, timeout);
    const facts = await deps.clusterFacts(kubeconfig);
    if (keep)
      t.defer("print how to remove what --keep kept", () => {
        for (const line of keepInstructions({ clusterName: name, kubeconfig, containerId, workDir: work, vaultAddress, tokenFile }))
          log.info("kind", line);
      });

    const info: TargetInfo = {
      runId,
      target: "kind",
      flavor,
      kube: {
        kubeconfigPath: kubeconfig,
        context: `kind-${name}`,
        server: serverOf(kubeconfig),
        hostForVault,
        caCertForVault: internal.caPem,
        issuers: [config.issuer],
        apiAudiences: [],
        version: facts.version,
      },
      vault: { address: vaultAddress, tokenFile, flavor, version: vaultVersion, outsideCluster: mode === "container" },
      versions: { kubernetes: facts.version, [flavor]: vaultVersion, kind: kindVersion, nodeImage: node.image, vaultImage: image },
      artifactsDir,
      logs: {
        "kind-create": join(logDir, "kind-create.log"),
        ...(mode === "container" ? { [flavor]: join(logDir, `${flavor}.log`) } : {}),
      },
    };
    if (facts.issuer && facts.issuer !== config.issuer)
      log.warn("kind", `the cluster's discovery document names issuer ${facts.issuer}, not ${config.issuer}`);
    const ms = Date.now() - started;
    log.info("kind", `${runId}: ready in ${formatDuration(ms)}: kubernetes ${facts.version}, ${flavor} ${vaultVersion}`);
    return new StartedKindTarget(info, t, ms, exportLogs);
  } catch (err) {
    // The cluster exists but the target did not come up: its logs say why, before it is deleted.
    if (clusterCreated) await exportLogs();
    await t.run();
    throw err;
  }
}

function serverOf(kubeconfig: string): string {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return kc.getCurrentCluster()?.server ?? "";
}

function rmSyncQuiet(dir: string): void {
  try {
    execFileSync("rm", ["-rf", dir], { stdio: "ignore", timeout: 10_000 });
  } catch {
    // exiting; nothing more to do
  }
}

/** The real kind, docker and testcontainers. */
export function defaultKindDeps(kind = "kind"): KindDeps {
  return {
    kind,
    async exec(cmd, args, o = {}) {
      const res = await execa(cmd, args, { timeout: o.timeoutMs, reject: false, all: true, env: { ...process.env } });
      if (o.logFile) await writeFile(o.logFile, redact(res.all ?? ""), { mode: 0o600 });
      if ((res as { code?: string }).code === "ENOENT" || /ENOENT/.test(String(res.cause ?? ""))) {
        throw Object.assign(new Error(`${cmd}: not found`), { code: "ENOENT" });
      }
      if (res.timedOut)
        throw new HarnessError(`${cmd} ${args.slice(0, 2).join(" ")} did not finish within ${formatDuration(o.timeoutMs ?? 0)}`);
      if (res.exitCode !== 0) {
        const tail = (res.all ?? "").trim().split("\n").slice(-15).join("\n");
        throw new HarnessError(`${cmd} ${args.slice(0, 2).join(" ")} exited ${res.exitCode}`, { details: redact(tail) });
      }
      return res.stdout;
    },
    execSync(cmd, args) {
      execFileSync(cmd, args, { stdio: "ignore", timeout: 120_000 });
    },
    async startContainer(spec, o) {
      let tc: typeof import("testcontainers");
      try {
        tc = await import("testcontainers");
      } catch (err) {
        throw new HarnessError(`cannot load testcontainers: ${errorMessage(err)}`);
      }
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
        const msg = errorMessage(err);
        if (/container runtime strategy/i.test(msg))
          throw new UsageError(
            "testcontainers found no Docker to start Vault in: start Docker (or set DOCKER_HOST), or use --target local",
          );
        throw new HarnessError(`${spec.flavor} container ${spec.image} did not start: ${redact(msg.split("\n")[0] ?? "")}`);
      }
      const out = createWriteStream(o.logFile, { mode: 0o600 });
      (await container.logs()).on("data", (d: Buffer) => out.write(redact(d.toString())));
      return {
        id: container.getId(),
        address: `http://${container.getHost()}:${container.getMappedPort(spec.port)}`,
        stop: async () => {
          await container.stop({ timeout: 5_000 });
          out.end();
        },
      };
    },
    async applyObjects(kubeconfig, objects) {
      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfig);
      const api = KubernetesObjectApi.makeApiClient(kc);
      for (const obj of objects) await api.create(obj);
    },
    async clusterFacts(kubeconfig) {
      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfig);
      const version = await rawGet(kc, "/version");
      if (version.status !== 200) throw new HarnessError(`the kind cluster answered /version with HTTP ${version.status}`);
      const discovery = await rawGet(kc, "/.well-known/openid-configuration").catch(() => undefined);
      return {
        version: String(version.body.gitVersion ?? "unknown"),
        issuer: discovery?.status === 200 ? String(discovery.body.issuer ?? "") : "",
      };
    },
    vaultReady(address, timeoutMs) {
      return waitFor(
        async () => {
          const res = await httpJson<{ initialized?: boolean; sealed?: boolean; version?: string }>({
            url: `${address}/v1/sys/health`,
            timeoutMs: 2000,
          }).catch(() => undefined);
          return res?.status === 200 && res.body?.initialized && !res.body.sealed ? (res.body.version ?? "unknown") : undefined;
        },
        { what: `Vault at ${address} reports unsealed`, timeoutMs },
      );
    },
  };
}
