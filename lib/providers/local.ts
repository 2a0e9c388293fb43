import { generateKeyPairSync, randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { traced, traceRecord } from "../bench.ts";
import { onExitSync, Teardown } from "../cleanup.ts";
import type { Config, Flavor } from "../config.ts";
import { HarnessError } from "../errors.ts";
import { httpJson } from "../http.ts";
import { formatDuration, log } from "../log.ts";
import { freePort } from "../ports.ts";
import { StartedProcess, type ProcessSpec } from "../process.ts";
import { registerSecret } from "../redact.ts";
import type { TargetInfo } from "../lifecycle/info.ts";
import type { ComponentDeath } from "../lifecycle/watch.ts";
import { waitFor } from "../wait.ts";
import { generatePki, type Pki } from "./pki.ts";
import { adminKubeconfig } from "../kube/kubeconfig.ts";

/** Paths of the binaries the local target runs (see lib/provision). */
export interface LocalBinaries {
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  /** vault or bao, per flavor */
  vault: string;
}

export interface LocalTargetOptions {
  config: Pick<Config, "reportsDir" | "flavor" | "issuer">;
  binaries: LocalBinaries;
  /** --service-account-issuer values; the first signs new tokens. Default: [config.issuer]. */
  issuers?: string[];
  /** --api-audiences; default: the apiserver's default (the first issuer). */
  apiAudiences?: string[];
  /** Extra kube-apiserver flags, e.g. --service-account-max-token-expiration=1h. */
  apiserverArgs?: string[];
  runId?: string;
  /** Recorded in TargetInfo (the apiserver flags come from issuers/apiAudiences/apiserverArgs). */
  persona?: { name: string; previousIssuer?: string };
  /** Also trust a second, retired service-account key (a signing-key rotation); see Persona.retiredSigningKey. */
  retiredSigningKey?: boolean;
  /** Readiness budget per component. */
  startTimeoutMs?: number;
}

export function newRunId(): string {
  const t = new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14);
  return `vkc-${t}-${randomBytes(3).toString("hex")}`;
}

/** A running local control plane plus Vault. Tear it down with `stop()` or `await using`. */
export class StartedLocalTarget implements AsyncDisposable {
  constructor(
    readonly info: TargetInfo,
    readonly processes: Record<string, StartedProcess>,
    private readonly teardown: Teardown,
    readonly startupMs: number,
  ) {}

  /** Reports each component that exits without being asked to (a killed apiserver, say). */
  watch(fn: (d: ComponentDeath) => void): void {
    for (const p of Object.values(this.processes)) {
      void p.exited.then(() => {
        if (!p.stopRequested) fn({ name: p.name, pid: p.pid, how: p.how, logFile: p.logFile });
      });
    }
  }

  stop(): Promise<void> {
    return traced("stop", () => this.teardown.run());
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

async function writeSecretFile(path: string, content: string): Promise<string> {
  await writeFile(path, content, { mode: 0o600 });
  await chmod(path, 0o600); // mode is masked by umask on create; be explicit
  return path;
}

/**
 * Starts etcd, kube-apiserver, kube-controller-manager and a Vault (or OpenBao) dev server as
 * local processes on 127.0.0.1, envtest-style. Steps, each a named bounded wait:
 *   workdir -> pki -> etcd -> kube-apiserver -> kube-controller-manager (default SA appears)
 *   vault (in parallel with the control plane)
 * Everything started is registered for teardown at once, so a failure at any step (or Ctrl-C)
 * leaves nothing behind.
 */
export async function startLocalTarget(opts: LocalTargetOptions): Promise<StartedLocalTarget> {
  const started = Date.now();
  const runId = opts.runId ?? newRunId();
  const flavor: Flavor = opts.config.flavor;
  const timeout = opts.startTimeoutMs ?? 60_000;
  const issuers = opts.issuers?.length ? opts.issuers : [opts.config.issuer];
  const t = new Teardown(`local target ${runId}`).tieToSignals();
  const processes: Record<string, StartedProcess> = {};
  try {
    // Work dir: secrets (keys, tokens, kubeconfig) and etcd data; removed at teardown.
    const work = await mkdtemp(join(tmpdir(), `${runId}-`));
    await chmod(work, 0o700);
    const forget = onExitSync(() => rmSync(work, { recursive: true, force: true }));
    t.defer("remove work dir", async () => {
      await rm(work, { recursive: true, force: true, maxRetries: 3 });
      forget();
    });
    // Artifacts: logs (redacted), kept after the run for diagnostics.
    const artifactsDir = join(opts.config.reportsDir, "artifacts", runId);
    const logDir = join(artifactsDir, "logs");
    await mkdir(logDir, { recursive: true });

    const pki = await generatePki({
      ipAddresses: ["127.0.0.1", "10.0.0.1"],
      dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"],
    });
    const files = await writePki(work, pki);
    const retired = opts.retiredSigningKey ? await writeRetiredSigningKey(work) : undefined;

    const vaultToken = registerSecret(`vkc-root-${randomBytes(18).toString("base64url")}`);
    const tokenFile = await writeSecretFile(join(work, "vault-token"), vaultToken);

    const startProcess = async (spec: ProcessSpec) => {
      const p = await StartedProcess.start(spec);
      processes[spec.name] = p;
      t.defer(`stop ${spec.name}`, () => p.stop());
      return p;
    };

    const vaultPromise = startDevVault({ flavor, bin: opts.binaries.vault, work, logDir, token: vaultToken, timeout, startProcess });
    // Avoid an unhandled rejection while the control plane starts; awaited below.
    vaultPromise.catch(() => undefined);

    // etcd
    const { etcdUrl, etcdVersion } = await retryOnPortClash("etcd", async () => {
      const etcdPort = await freePort();
      const peerPort = await freePort();
      const etcdUrl = `http://127.0.0.1:${etcdPort}`;
      const etcd = await startProcess({
        name: "etcd",
        command: opts.binaries.etcd,
        args: [
          "--name=vkc",
          `--data-dir=${join(work, "etcd")}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
          `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
          `--initial-cluster=vkc=http://127.0.0.1:${peerPort}`,
          "--unsafe-no-fsync", // throwaway data: durability buys nothing, fsync costs seconds
          "--log-level=warn",
        ],
        env: baseEnv(work),
        logFile: join(logDir, "etcd.log"),
      });
      const etcdVersion = await waitFor(
        async () => {
          const res = await httpJson<{ health?: string }>({ url: `${etcdUrl}/health`, timeoutMs: 2000 });
          if (res.status !== 200 || res.body?.health !== "true") return undefined;
          const v = await httpJson<{ etcdserver?: string }>({ url: `${etcdUrl}/version`, timeoutMs: 2000 });
          return v.body?.etcdserver ?? "unknown";
        },
        {
          what: "etcd /health reports healthy",
          timeoutMs: timeout,
          failFast: () => (etcd.running ? undefined : etcd.exitedError("start")),
          evidence: () => etcd.tail(),
        },
      );
      return { etcdUrl, etcdVersion };
    });

    // kube-apiserver
    const tls = { ca: pki.caCert, cert: pki.adminCert, key: pki.adminKey };
    const server = await retryOnPortClash("kube-apiserver", async () => {
      const apiPort = await freePort();
      const server = `https://127.0.0.1:${apiPort}`;
      const apiserver = await startProcess({
        name: "kube-apiserver",
        command: opts.binaries.kubeApiserver,
        args: [
          "--advertise-address=127.0.0.1",
          "--bind-address=127.0.0.1",
          `--secure-port=${apiPort}`,
          `--etcd-servers=${etcdUrl}`,
          `--cert-dir=${join(work, "apiserver")}`,
          `--tls-cert-file=${files.servingCert}`,
          `--tls-private-key-file=${files.servingKey}`,
          `--client-ca-file=${files.caCert}`,
          "--authorization-mode=RBAC",
          "--service-cluster-ip-range=10.0.0.0/24",
          "--allow-privileged=true",
          ...issuers.map((i) => `--service-account-issuer=${i}`),
          `--service-account-key-file=${files.saPublicKey}`,
          ...(retired ? [`--service-account-key-file=${retired.publicKey}`] : []),
          `--service-account-signing-key-file=${files.saSigningKey}`,
          ...(opts.apiAudiences?.length ? [`--api-audiences=${opts.apiAudiences.join(",")}`] : []),
          "--endpoint-reconciler-type=none", // no node/endpoints on a process-only control plane
          "--enable-priority-and-fairness=false",
          "--profiling=false",
          ...(opts.apiserverArgs ?? []),
        ],
        env: baseEnv(work),
        logFile: join(logDir, "kube-apiserver.log"),
      });
      await waitFor(async () => (await httpJson({ url: `${server}/readyz`, ...tls, timeoutMs: 3000 })).status === 200, {
        what: "kube-apiserver /readyz returns 200",
        timeoutMs: timeout,
        intervalMs: 200,
        failFast: () => (apiserver.running ? undefined : apiserver.exitedError("start")),
        evidence: () => apiserver.tail(),
      });
      return server;
    });
    const version = await httpJson<{ gitVersion?: string }>({ url: `${server}/version`, ...tls });
    const kubeVersion = version.body?.gitVersion ?? "unknown";

    const kubeconfigPath = await writeSecretFile(
      join(work, "kubeconfig"),
      adminKubeconfig({ name: runId, server, caCert: pki.caCert, clientCert: pki.adminCert, clientKey: pki.adminKey }),
    );

    // kube-controller-manager: creates `default` service accounts, fills legacy token Secrets,
    // deletes namespaces' contents and garbage-collects owned objects.
    const kcm = await startProcess({
      name: "kube-controller-manager",
      command: opts.binaries.kubeControllerManager,
      args: [
        `--kubeconfig=${kubeconfigPath}`,
        "--leader-elect=false",
        "--secure-port=0",
        "--controllers=serviceaccount-token-controller,serviceaccount-controller,namespace-controller,garbage-collector-controller",
        `--service-account-private-key-file=${files.saSigningKey}`,
        `--root-ca-file=${files.caCert}`,
        "--use-service-account-credentials=false",
      ],
      env: baseEnv(work),
      logFile: join(logDir, "kube-controller-manager.log"),
    });
    await waitFor(
      async () =>
        (await httpJson({ url: `${server}/api/v1/namespaces/default/serviceaccounts/default`, ...tls, timeoutMs: 3000 })).status === 200,
      {
        what: "kube-controller-manager creates the `default` ServiceAccount",
        timeoutMs: timeout,
        intervalMs: 200,
        failFast: () => (kcm.running ? undefined : kcm.exitedError("start")),
        evidence: () => kcm.tail(),
      },
    );

    const vault = await vaultPromise;
    const info: TargetInfo = {
      runId,
      target: "local",
      flavor,
      kube: {
        kubeconfigPath,
        server,
        hostForVault: server,
        caCertForVault: pki.caCert,
        issuers,
        apiAudiences: opts.apiAudiences ?? [],
        version: kubeVersion,
        saSigningKeyFile: files.saSigningKey,
        ...(retired ? { saRetiredSigningKeyFile: retired.privateKey } : {}),
      },
      ...(opts.persona
        ? { persona: { name: opts.persona.name, ...(opts.persona.previousIssuer ? { previousIssuer: opts.persona.previousIssuer } : {}) } }
        : {}),
      vault: { address: vault.address, tokenFile, flavor, version: vault.version, outsideCluster: true },
      versions: { kubernetes: kubeVersion, etcd: etcdVersion, [flavor]: vault.version },
      artifactsDir,
      logs: Object.fromEntries(Object.values(processes).map((p) => [p.name, p.logFile])),
      pids: Object.fromEntries(Object.values(processes).map((p) => [p.name, p.pid])),
    };
    const ms = Date.now() - started;
    log.info(
      "local",
      `${runId}: ready in ${formatDuration(ms)}: kubernetes ${kubeVersion}, etcd ${etcdVersion}, ${flavor} ${vault.version}`,
    );
    traceRecord("start", started); // no-op unless VKC_TRACE_FILE is set
    return new StartedLocalTarget(info, processes, t, ms);
  } catch (err) {
    await t.run();
    throw err;
  }
}

function baseEnv(work: string): Record<string, string | undefined> {
  // A clean environment: nothing of the user's (VAULT_ADDR, KUBECONFIG, proxies) leaks in.
  return { PATH: process.env.PATH, HOME: work, TMPDIR: work, LANG: "C" };
}

async function writePki(dir: string, pki: Pki) {
  const p = (n: string) => join(dir, n);
  return {
    caCert: await writeSecretFile(p("ca.crt"), pki.caCert),
    servingCert: await writeSecretFile(p("apiserver.crt"), pki.servingCert),
    servingKey: await writeSecretFile(p("apiserver.key"), pki.servingKey),
    saSigningKey: await writeSecretFile(p("sa.key"), pki.saSigningKey),
    saPublicKey: await writeSecretFile(p("sa.pub"), pki.saPublicKey),
  };
}

/** A second RSA service-account key pair, as an API server keeps its previous key trusted after a rotation. */
async function writeRetiredSigningKey(dir: string): Promise<{ privateKey: string; publicKey: string }> {
  const k = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  return {
    privateKey: await writeSecretFile(join(dir, "sa-retired.key"), k.privateKey),
    publicKey: await writeSecretFile(join(dir, "sa-retired.pub"), k.publicKey),
  };
}

/** A Vault (or OpenBao) dev server on 127.0.0.1 with the given root token; also used by the existing target. */
export async function startDevVault(o: {
  flavor: Flavor;
  bin: string;
  work: string;
  logDir: string;
  token: string;
  timeout: number;
  startProcess: (s: ProcessSpec) => Promise<StartedProcess>;
}): Promise<{ address: string; version: string }> {
  const name = o.flavor === "openbao" ? "openbao" : "vault";
  return retryOnPortClash(name, async () => {
    const port = await freePort();
    const address = `http://127.0.0.1:${port}`;
    const p = await o.startProcess({
      name,
      command: o.bin,
      args: ["server", "-dev", `-dev-root-token-id=${o.token}`, `-dev-listen-address=127.0.0.1:${port}`, "-dev-no-store-token"],
      env: { ...baseEnv(o.work), VAULT_DISABLE_MLOCK: "true", BAO_DISABLE_MLOCK: "true" },
      logFile: join(o.logDir, `${name}.log`),
    });
    const version = await waitFor(
      async () => {
        const res = await httpJson<{ initialized?: boolean; sealed?: boolean; version?: string }>({
          url: `${address}/v1/sys/health`,
          timeoutMs: 2000,
        });
        return res.status === 200 && res.body?.initialized && !res.body.sealed ? (res.body.version ?? "unknown") : undefined;
      },
      {
        what: `${name} dev server /v1/sys/health reports unsealed`,
        timeoutMs: o.timeout,
        failFast: () => (p.running ? undefined : p.exitedError("start")),
        evidence: () => p.tail(),
      },
    );
    return { address, version };
  });
}

/**
 * A port picked free can be taken before the component binds it (another run starting at the
 * same moment). Such a start is retried with new ports instead of failing the run.
 */
async function retryOnPortClash<T>(name: string, start: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await start();
    } catch (err) {
      const text = `${(err as Error).message}\n${(err as HarnessError).details ?? ""}`;
      if (i >= attempts || !/address already in use/i.test(text)) throw err;
      log.warn("local", `${name}: its port was taken before it could bind; retrying with another (${i}/${attempts - 1})`);
    }
  }
}

export { HarnessError };
