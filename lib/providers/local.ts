import { generateKeyPairSync } from "node:crypto";
import { join } from "node:path";
import type { Config, Flavor } from "../config.ts";
import { checkPolicies } from "../fixtures/check.ts";
import { loadPersona } from "../gate/persona.ts";
import { httpJson } from "../http.ts";
import { adminKubeconfig } from "../kube/kubeconfig.ts";
import {
  inWorkspace,
  type ComponentDeath,
  type RunWorkspace,
  type StartedTarget,
  type TargetInfo,
  type TargetProvider,
} from "../lifecycle/provider.ts";
import { formatDuration, log } from "../log.ts";
import { StartedProcess, type ProcessSpec } from "../process.ts";
import { recordSpan, span } from "../trace.ts";
import { waitFor } from "../wait.ts";
import { asPortClash, baseEnv, onFreePorts, startDevVault } from "./components.ts";
import { generatePki } from "./pki.ts";
import { provisionLocal } from "./provision.ts";

/** Paths of the binaries the local target runs (see lib/provision). */
export interface LocalBinaries {
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  /** vault or bao, per flavor */
  vault: string;
}

export interface LocalTargetOptions {
  config: Pick<Config, "reportsDir" | "flavor" | "issuer" | "env">;
  binaries: LocalBinaries;
  /** --service-account-issuer values; the first signs new tokens. Default: [config.issuer]. */
  issuers?: string[];
  /** --api-audiences; default: the apiserver's default (the first issuer). */
  apiAudiences?: string[];
  /** Extra kube-apiserver flags, e.g. --service-account-max-token-expiration=1h. */
  apiserverArgs?: string[];
  /** Only without a workspace (one is opened with this run id). */
  runId?: string;
  /** Recorded in TargetInfo (the apiserver flags come from issuers/apiAudiences/apiserverArgs). */
  persona?: { name: string; previousIssuer?: string };
  /** Also trust a second, retired service-account key (a signing-key rotation); see Persona.retiredSigningKey. */
  retiredSigningKey?: boolean;
  /** Readiness budget per component. */
  startTimeoutMs?: number;
}

export const localProvider: TargetProvider = {
  name: "local",
  async preflight(config, { policies }) {
    if (config.persona) loadPersona(config.fixturesDir, config.persona); // bad persona: one line, before any build
    // The policies' HCL, parsed by the very binary the target will run.
    await checkPolicies(policies, (await provisionLocal(config)).vault, config);
  },
  async start(config, ws) {
    const binaries = await provisionLocal(config);
    const persona = config.persona ? loadPersona(config.fixturesDir, config.persona) : undefined;
    return startLocalTarget(
      {
        config,
        binaries,
        ...(persona ? { issuers: persona.issuers, apiAudiences: persona.apiAudiences, apiserverArgs: persona.apiserverArgs, persona } : {}),
        ...(persona?.retiredSigningKey ? { retiredSigningKey: true } : {}),
      },
      ws,
    );
  },
};

/** What every step of the local lifecycle shares. */
interface LocalRun {
  opts: LocalTargetOptions;
  ws: RunWorkspace;
  logDir: string;
  timeout: number;
  issuers: string[];
  files: PkiFiles;
  tls: { ca: string; cert: string; key: string };
  processes: Record<string, StartedProcess>;
  startProcess(spec: ProcessSpec): Promise<StartedProcess>;
}

/**
 * Starts etcd, kube-apiserver, kube-controller-manager and a Vault (or OpenBao) dev server as
 * local processes on 127.0.0.1, envtest-style, each step a named bounded wait:
 *   pki -> etcd -> kube-apiserver -> kube-controller-manager (default SA appears)
 *   vault (in parallel with the control plane)
 * Everything started is registered on the workspace's teardown at once, so a failure at any step
 * (or Ctrl-C) leaves nothing behind. Without `ws` (npm run bench), opens one of its own.
 */
export async function startLocalTarget(opts: LocalTargetOptions, ws?: RunWorkspace): Promise<StartedTarget> {
  if (!ws) return inWorkspace({ target: "local", reportsDir: opts.config.reportsDir, runId: opts.runId }, (w) => startLocalTarget(opts, w));
  const started = Date.now();
  const flavor: Flavor = opts.config.flavor;
  const run = await ws.step("pki", () => prepare(opts, ws));
  const vaultName = flavor;
  const vaultToken = ws.newRootToken();
  const tokenFile = await ws.writeSecret("vault-token", vaultToken);
  const vaultPromise = ws.step(vaultName, () =>
    startDevVault({
      config: opts.config,
      flavor,
      bin: opts.binaries.vault,
      work: ws.workDir,
      logDir: run.logDir,
      token: vaultToken,
      timeout: run.timeout,
      startProcess: run.startProcess,
    }),
  );
  // Avoid an unhandled rejection while the control plane starts; awaited below.
  vaultPromise.catch(() => undefined);

  const etcd = await ws.step("etcd", () => startEtcd(run));
  const api = await ws.step("kube-apiserver", () => startApiServer(run, etcd.url));
  const kubeconfigPath = await ws.writeSecret(
    "kubeconfig",
    adminKubeconfig({ name: ws.runId, server: api.server, caCert: run.tls.ca, clientCert: run.tls.cert, clientKey: run.tls.key }),
  );
  await ws.step("kube-controller-manager", () => startControllerManager(run, api.server, kubeconfigPath));
  const vault = await vaultPromise;

  const info = localTargetInfo(run, { etcd, api, vault, kubeconfigPath, tokenFile });
  const ms = Date.now() - started;
  log.info(
    "local",
    `${ws.runId}: ready in ${formatDuration(ms)}: kubernetes ${api.version}, etcd ${etcd.version}, ${flavor} ${vault.version}`,
  );
  recordSpan("start", started); // no-op unless tracing (lib/trace.ts)
  return ws.started(info, ms, { watch: watchDeaths(run.processes), wrapStop: (close) => span("stop", close) });
}

/** What the suites get to know about the local target. */
function localTargetInfo(
  run: LocalRun,
  o: {
    etcd: { version: string };
    api: { server: string; version: string };
    vault: { address: string; version: string };
    kubeconfigPath: string;
    tokenFile: string;
  },
): TargetInfo {
  const { etcd, api, vault, kubeconfigPath, tokenFile } = o;
  return {
    runId: run.ws.runId,
    target: "local",
    flavor: run.opts.config.flavor,
    kube: {
      kubeconfigPath,
      server: api.server,
      hostForVault: api.server,
      caCertForVault: run.tls.ca,
      issuers: run.issuers,
      apiAudiences: run.opts.apiAudiences ?? [],
      version: api.version,
      saSigningKeyFile: run.files.saSigningKey,
      ...(run.files.retired ? { saRetiredSigningKeyFile: run.files.retired.privateKey } : {}),
    },
    ...(run.opts.persona
      ? {
          persona: {
            name: run.opts.persona.name,
            ...(run.opts.persona.previousIssuer ? { previousIssuer: run.opts.persona.previousIssuer } : {}),
          },
        }
      : {}),
    vault: { address: vault.address, tokenFile, flavor: run.opts.config.flavor, version: vault.version, outsideCluster: true },
    versions: { kubernetes: api.version, etcd: etcd.version, [run.opts.config.flavor]: vault.version },
    artifactsDir: run.ws.artifactsDir,
    logs: Object.fromEntries(Object.values(run.processes).map((p) => [p.name, p.logFile])),
    pids: Object.fromEntries(Object.values(run.processes).map((p) => [p.name, p.pid])),
  };
}

/** Logs dir, throwaway PKI (and a retired signing key) in the work dir, and the process starter. */
async function prepare(opts: LocalTargetOptions, ws: RunWorkspace): Promise<LocalRun> {
  const logDir = await ws.ensureLogDir();
  const pki = await generatePki({
    ipAddresses: ["127.0.0.1", "10.0.0.1"],
    dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"],
  });
  const files: PkiFiles = {
    caCert: await ws.writeSecret("ca.crt", pki.caCert),
    servingCert: await ws.writeSecret("apiserver.crt", pki.servingCert),
    servingKey: await ws.writeSecret("apiserver.key", pki.servingKey),
    saSigningKey: await ws.writeSecret("sa.key", pki.saSigningKey),
    saPublicKey: await ws.writeSecret("sa.pub", pki.saPublicKey),
    ...(opts.retiredSigningKey ? { retired: await writeRetiredSigningKey(ws) } : {}),
  };
  const processes: Record<string, StartedProcess> = {};
  return {
    opts,
    ws,
    logDir,
    timeout: opts.startTimeoutMs ?? 60_000,
    issuers: opts.issuers?.length ? opts.issuers : [opts.config.issuer],
    files,
    tls: { ca: pki.caCert, cert: pki.adminCert, key: pki.adminKey },
    processes,
    async startProcess(spec) {
      const p = await StartedProcess.start(spec);
      processes[spec.name] = p;
      ws.defer(`stop ${spec.name}`, () => p.stop());
      return p;
    },
  };
}

async function startEtcd(run: LocalRun): Promise<{ url: string; version: string }> {
  return onFreePorts("etcd", 2, async ([etcdPort, peerPort]) => {
    const url = `http://127.0.0.1:${etcdPort}`;
    const etcd = await run.startProcess({
      name: "etcd",
      command: run.opts.binaries.etcd,
      args: [
        "--name=vkc",
        `--data-dir=${join(run.ws.workDir, "etcd")}`,
        `--listen-client-urls=${url}`,
        `--advertise-client-urls=${url}`,
        `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-cluster=vkc=http://127.0.0.1:${peerPort}`,
        "--unsafe-no-fsync", // throwaway data: durability buys nothing, fsync costs seconds
        "--log-level=warn",
      ],
      env: baseEnv(run.opts.config, run.ws.workDir),
      logFile: join(run.logDir, "etcd.log"),
    });
    const version = await waitFor(
      async () => {
        const res = await httpJson<{ health?: string }>({ url: `${url}/health`, timeoutMs: 2000 });
        if (res.status !== 200 || res.body?.health !== "true") return undefined;
        const v = await httpJson<{ etcdserver?: string }>({ url: `${url}/version`, timeoutMs: 2000 });
        return v.body?.etcdserver ?? "unknown";
      },
      {
        what: "etcd /health reports healthy",
        timeoutMs: run.timeout,
        failFast: () => (etcd.running ? undefined : etcd.exitedError("start")),
        evidence: () => etcd.tail(),
      },
    ).catch(async (err: unknown) => {
      throw await asPortClash(err, etcd, [etcdPort!, peerPort!]);
    });
    return { url, version };
  });
}

async function startApiServer(run: LocalRun, etcdUrl: string): Promise<{ server: string; version: string }> {
  const { files, opts } = run;
  const server = await onFreePorts("kube-apiserver", 1, async ([apiPort]) => {
    const server = `https://127.0.0.1:${apiPort}`;
    const apiserver = await run.startProcess({
      name: "kube-apiserver",
      command: opts.binaries.kubeApiserver,
      args: [
        "--advertise-address=127.0.0.1",
        "--bind-address=127.0.0.1",
        `--secure-port=${apiPort}`,
        `--etcd-servers=${etcdUrl}`,
        `--cert-dir=${join(run.ws.workDir, "apiserver")}`,
        `--tls-cert-file=${files.servingCert}`,
        `--tls-private-key-file=${files.servingKey}`,
        `--client-ca-file=${files.caCert}`,
        "--authorization-mode=RBAC",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--allow-privileged=true",
        ...run.issuers.map((i) => `--service-account-issuer=${i}`),
        `--service-account-key-file=${files.saPublicKey}`,
        ...(files.retired ? [`--service-account-key-file=${files.retired.publicKey}`] : []),
        `--service-account-signing-key-file=${files.saSigningKey}`,
        ...(opts.apiAudiences?.length ? [`--api-audiences=${opts.apiAudiences.join(",")}`] : []),
        "--endpoint-reconciler-type=none", // no node/endpoints on a process-only control plane
        "--enable-priority-and-fairness=false",
        "--profiling=false",
        ...(opts.apiserverArgs ?? []),
      ],
      env: baseEnv(run.opts.config, run.ws.workDir),
      logFile: join(run.logDir, "kube-apiserver.log"),
    });
    await waitFor(async () => (await httpJson({ url: `${server}/readyz`, ...run.tls, timeoutMs: 3000 })).status === 200, {
      what: "kube-apiserver /readyz returns 200",
      timeoutMs: run.timeout,
      intervalMs: 200,
      failFast: () => (apiserver.running ? undefined : apiserver.exitedError("start")),
      evidence: () => apiserver.tail(),
    }).catch(async (err: unknown) => {
      throw await asPortClash(err, apiserver, [apiPort!]);
    });
    return server;
  });
  const version = await httpJson<{ gitVersion?: string }>({ url: `${server}/version`, ...run.tls });
  return { server, version: version.body?.gitVersion ?? "unknown" };
}

/**
 * kube-controller-manager: creates `default` service accounts, fills legacy token Secrets,
 * deletes namespaces' contents and garbage-collects owned objects.
 */
async function startControllerManager(run: LocalRun, server: string, kubeconfigPath: string): Promise<void> {
  const kcm = await run.startProcess({
    name: "kube-controller-manager",
    command: run.opts.binaries.kubeControllerManager,
    args: [
      `--kubeconfig=${kubeconfigPath}`,
      "--leader-elect=false",
      "--secure-port=0",
      "--controllers=serviceaccount-token-controller,serviceaccount-controller,namespace-controller,garbage-collector-controller",
      `--service-account-private-key-file=${run.files.saSigningKey}`,
      `--root-ca-file=${run.files.caCert}`,
      "--use-service-account-credentials=false",
    ],
    env: baseEnv(run.opts.config, run.ws.workDir),
    logFile: join(run.logDir, "kube-controller-manager.log"),
  });
  await waitFor(
    async () =>
      (await httpJson({ url: `${server}/api/v1/namespaces/default/serviceaccounts/default`, ...run.tls, timeoutMs: 3000 })).status === 200,
    {
      what: "kube-controller-manager creates the `default` ServiceAccount",
      timeoutMs: run.timeout,
      intervalMs: 200,
      failFast: () => (kcm.running ? undefined : kcm.exitedError("start")),
      evidence: () => kcm.tail(),
    },
  );
}

/** Reports each component that exits without being asked to (a killed apiserver, say). */
function watchDeaths(processes: Record<string, StartedProcess>): (fn: (d: ComponentDeath) => void) => void {
  return (fn) => {
    for (const p of Object.values(processes)) {
      void p.exited.then(() => {
        if (!p.stopRequested) fn({ name: p.name, pid: p.pid, how: p.how, logFile: p.logFile });
      });
    }
  };
}

interface PkiFiles {
  caCert: string;
  servingCert: string;
  servingKey: string;
  saSigningKey: string;
  saPublicKey: string;
  retired?: { privateKey: string; publicKey: string };
}

/** A second RSA service-account key pair, as an API server keeps its previous key trusted after a rotation. */
async function writeRetiredSigningKey(ws: RunWorkspace): Promise<{ privateKey: string; publicKey: string }> {
  const k = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  return {
    privateKey: await ws.writeSecret("sa-retired.key", k.privateKey),
    publicKey: await ws.writeSecret("sa-retired.pub", k.publicKey),
  };
}
