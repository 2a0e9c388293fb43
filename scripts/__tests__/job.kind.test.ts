import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  RbacAuthorizationV1Api,
  loadAllYaml,
  type KubernetesObject,
  type V1Job,
} from "@kubernetes/client-node";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveKind } from "../../lib/binaries/kindcli.ts";
import { PACKAGE_ROOT, loadConfig } from "../../lib/config.ts";
import {
  inClusterVaultManifests,
  kindArgs,
  kindClusterConfig,
  kubeletRefusesCgroupV1,
  loadKindPins,
  parseInternalKubeconfig,
} from "../../lib/providers/kind-plan.ts";

// The harness image as a Job in a kind cluster, the way README "Run as a Job in the cluster" says:
// the image from kit/images/build-harness-image.sh (the repository's Dockerfile on a Node base made
// here), `kind load`ed into the node, deploy/job/rbac.yaml and job.yaml applied as they ship (only
// the image, VAULT_ADDR and VKC_KUBE_HOST_FOR_VAULT set), the Vault token in a Secret. The Job runs
// the existing target with the pod's ServiceAccount, once against a Vault inside the cluster and
// once against a Vault outside it (a container on kind's docker network). Each must complete, its
// log must hold the verdict and summary.md with the counts and never the token, and the run must
// leave nothing of its own on the cluster. Everything (cluster, container, kind network, temp
// dir) is removed afterwards; the harness image stays, content-addressed, as the kit's images do.

const NODE_IMAGE = process.env.VKC_NODE_IMAGE || "vkc/kind-node:v1.36.3";
const VAULT_IMAGE = process.env.VKC_VAULT_IMAGE || "vkc/vault:1.21.1";
const NS = "vault-k8s-conformance";
const RUN_LABEL = "vault-k8s-conformance/run";
const JOB_TIMEOUT_MS = 900_000;

const docker = (args: string[], o: { timeout?: number; env?: Record<string, string> } = {}) =>
  execa("docker", args, { timeout: o.timeout ?? 120_000, ...(o.env ? { env: o.env } : {}) }).then((r) => r.stdout.trim());

function manifests(file: string): KubernetesObject[] {
  return loadAllYaml(readFileSync(join(PACKAGE_ROOT, "deploy", "job", file), "utf8")) as KubernetesObject[];
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const t0 = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() - t0 > timeoutMs)
      throw new Error(`no ${what} after ${timeoutMs / 1000}s${last ? ` (last error: ${String(last)})` : ""}`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

describe("the harness image as a Job in the cluster (kind)", () => {
  const id = randomBytes(3).toString("hex");
  const cluster = `vkc-job-${id}`;
  const work = mkdtempSync(join(tmpdir(), "vkc-job-kind-"));
  const kubeconfig = join(work, "kubeconfig");
  // One throwaway root token for both dev Vaults, in the Job's Secret; it must never reach a log.
  const token = randomBytes(16).toString("hex");
  const vaultNs = `vkc-job-vault-${id}`;
  const vaultContainer = `vkc-job-vault-${id}`;
  const cleanups: { what: string; run: () => Promise<unknown> }[] = [];
  let kind = "kind";
  let image = "";
  let kc: KubeConfig;
  let apiServerForVault = "";

  beforeAll(async () => {
    const config = loadConfig();
    const found = await resolveKind({
      cacheDir: config.cacheDir,
      version: loadKindPins().kind,
      env: process.env,
      install: false,
      ...(config.kindBin ? { kindBin: config.kindBin } : {}),
    });
    if (!found) throw new Error("no kind CLI: run `npm run setup -- --target kind` or set KIND_BIN");
    kind = found.path;
    for (const img of [NODE_IMAGE, VAULT_IMAGE])
      await docker(["image", "inspect", "--format", "{{.Id}}", img]).catch(() => {
        throw new Error(`image ${img} is not in the engine: build it with npm run kit (kit/README.md)`);
      });
    // The image, as the README builds it without a registry (cached by content: seconds when built).
    const built = await execa("sh", [join(PACKAGE_ROOT, "kit", "images", "build-harness-image.sh")], { timeout: 1_500_000 });
    image = built.stdout.trim();
    expect(image).toMatch(/^vkc\/vault-k8s-conformance:\d+\.\d+\.\d+/);
    // Non-root by default, and the command as entrypoint.
    expect(await docker(["image", "inspect", "--format", "{{.Config.User}} {{json .Config.Entrypoint}}", image])).toBe(
      '10001:10001 ["/usr/local/bin/vault-k8s-conformance"]',
    );

    const cgroupV1 = (await docker(["info", "--format", "{{.CgroupVersion}}"])) === "1";
    const configFile = join(work, "kind-config.yaml");
    writeFileSync(
      configFile,
      kindClusterConfig({ name: cluster, image: NODE_IMAGE, allowCgroupV1: cgroupV1 && kubeletRefusesCgroupV1("1.36") }),
    );
    cleanups.push({ what: `kind cluster ${cluster}`, run: () => execa(kind, kindArgs.delete(cluster, kubeconfig), { timeout: 180_000 }) });
    await execa(kind, kindArgs.create({ name: cluster, image: NODE_IMAGE, configFile, kubeconfig }), { timeout: 600_000 });
    apiServerForVault = parseInternalKubeconfig((await execa(kind, kindArgs.internalKubeconfig(cluster))).stdout).server;
    for (const img of [image, VAULT_IMAGE]) await execa(kind, kindArgs.loadImage(cluster, img), { timeout: 600_000 });
    kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);

    // What README says to apply: the RBAC as it ships, then the Secret.
    const objects = KubernetesObjectApi.makeApiClient(kc);
    for (const o of manifests("rbac.yaml")) await objects.create(o);
    await kc.makeApiClient(CoreV1Api).createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: "vault-k8s-conformance-vault" }, stringData: { VAULT_TOKEN: token } },
    });
  }, 2_400_000);

  afterAll(async () => {
    const failures: string[] = [];
    for (const c of cleanups.reverse()) {
      try {
        await c.run();
      } catch (err) {
        failures.push(`${c.what}: ${String(err).split("\n")[0]}`);
      }
    }
    // kind leaves its docker network behind; removed when nothing else (another cluster) uses it.
    const attached = await docker(["network", "inspect", "--format", "{{len .Containers}}", "kind"]).catch(() => "");
    if (attached === "0") await docker(["network", "rm", "kind"]).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
    expect(failures).toEqual([]);
  }, 300_000);

  /** Runs deploy/job/job.yaml (image and environment set) and returns its pod's log once the Job is done. */
  async function runJob(name: string, env: Record<string, string>): Promise<{ job: V1Job; log: string }> {
    const [job] = manifests("job.yaml") as V1Job[];
    job!.metadata!.name = name;
    const container = job!.spec!.template.spec!.containers[0]!;
    container.image = image;
    const rest = (container.env ?? []).filter((e) => !(e.name in env));
    container.env = [...Object.entries(env).map(([k, value]) => ({ name: k, value })), ...rest];
    const batch = kc.makeApiClient(BatchV1Api);
    await batch.createNamespacedJob({ namespace: NS, body: job! });
    const done = await waitFor(`end of Job ${name}`, JOB_TIMEOUT_MS, async () => {
      const j = await batch.readNamespacedJob({ namespace: NS, name });
      return (j.status?.succeeded ?? 0) + (j.status?.failed ?? 0) > 0 ? j : undefined;
    });
    const core = kc.makeApiClient(CoreV1Api);
    const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: `job-name=${name}` });
    expect(pods.items).toHaveLength(1); // backoffLimit 0: one pod, no retry
    const log = await core.readNamespacedPodLog({ namespace: NS, name: pods.items[0]!.metadata!.name!, container: "conformance" });
    return { job: done, log: String(log) };
  }

  /** The Job passed; its log holds the verdict and summary.md, with the same counts, and no token. */
  function expectPassingLog(r: { job: V1Job; log: string }, vaultAddr: string) {
    const shown = r.log.split(token).join("<token>");
    expect(r.log.includes(token), "the Vault token is in the Job's log").toBe(false);
    expect(r.job.status?.succeeded, shown.slice(-4000)).toBe(1);
    const verdict = /^conformance \(existing, vault\): (\d+) passed, (\d+) failed(?:, (\d+) skipped)?$/m.exec(r.log);
    expect(verdict, shown.slice(-4000)).not.toBeNull();
    const [passed, failed, skipped] = [verdict![1], verdict![2], verdict![3] ?? "0"].map(Number);
    expect(passed).toBeGreaterThan(100);
    expect(failed).toBe(0);
    expect(r.log).toContain("===== /reports/summary.md =====");
    expect(r.log).toContain("## vault-k8s-conformance: PASS");
    expect(r.log).toMatch(new RegExp(`^${passed} passed, 0 failed, ${skipped} skipped in [\\d.]+s$`, "m"));
    // Attached to this cluster through the pod's ServiceAccount, and to the Vault it was given.
    expect(r.log).toMatch(/attached to https:\/\/\S+ \(context in-cluster,/);
    expect(r.log).toContain(vaultAddr);
    expect(r.log).toMatch(/Target \*\*existing\*\*/);
  }

  /** Nothing the run created is left: no namespace, ClusterRole or ClusterRoleBinding with a run label but the test's own Vault's. */
  async function expectNothingLeft() {
    const ours = (o: { metadata?: { labels?: Record<string, string>; deletionTimestamp?: Date } }) =>
      o.metadata?.labels?.[RUN_LABEL] !== undefined && o.metadata.labels[RUN_LABEL] !== cluster && !o.metadata.deletionTimestamp;
    const core = kc.makeApiClient(CoreV1Api);
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    const namespaces = (await core.listNamespace({ labelSelector: RUN_LABEL })).items;
    // A run's namespace being deleted takes its contents with it.
    const runNamespaces = new Set(namespaces.map((n) => n.metadata!.name!));
    const left = [
      ...namespaces.filter(ours).map((n) => `namespace ${n.metadata!.name}`),
      ...(await core.listServiceAccountForAllNamespaces({ labelSelector: RUN_LABEL })).items
        .filter((s) => ours(s) && !runNamespaces.has(s.metadata!.namespace!))
        .map((s) => `ServiceAccount ${s.metadata!.namespace}/${s.metadata!.name}`),
      ...(await rbac.listClusterRole({ labelSelector: RUN_LABEL })).items.filter(ours).map((r) => `ClusterRole ${r.metadata!.name}`),
      ...(await rbac.listClusterRoleBinding({ labelSelector: RUN_LABEL })).items
        .filter(ours)
        .map((b) => `ClusterRoleBinding ${b.metadata!.name}`),
    ];
    expect(left).toEqual([]);
  }

  it(
    "passes against a Vault inside the cluster (a dev server Deployment, reached through its Service)",
    async () => {
      const objects = KubernetesObjectApi.makeApiClient(kc);
      for (const o of inClusterVaultManifests({ namespace: vaultNs, image: VAULT_IMAGE, flavor: "vault", token, runId: cluster }))
        await objects.create(o);
      await waitFor("a ready in-cluster Vault", 180_000, async () => {
        const d = await kc.makeApiClient(AppsV1Api).readNamespacedDeployment({ namespace: vaultNs, name: "vault" });
        return (d.status?.readyReplicas ?? 0) > 0 ? d : undefined;
      });
      const vaultAddr = `http://vault.${vaultNs}.svc:8200`;
      const r = await runJob("vkc-in-cluster-vault", { VAULT_ADDR: vaultAddr });
      expectPassingLog(r, vaultAddr);
      await expectNothingLeft();
    },
    JOB_TIMEOUT_MS + 300_000,
  );

  it(
    "passes against a Vault outside the cluster (a container on kind's docker network)",
    async () => {
      // The token goes in through the environment of `docker run` (not its argv).
      cleanups.push({ what: `container ${vaultContainer}`, run: () => docker(["rm", "-f", "-v", vaultContainer]) });
      await docker(
        [
          "run",
          "-d",
          "--name",
          vaultContainer,
          "--network",
          "kind",
          "-e",
          "VAULT_DEV_ROOT_TOKEN_ID",
          "-e",
          "VAULT_DISABLE_MLOCK=true",
          "-e",
          "SKIP_SETCAP=true",
          "--entrypoint",
          "vault",
          VAULT_IMAGE,
          "server",
          "-dev",
          "-dev-listen-address=0.0.0.0:8200",
          "-dev-no-store-token",
        ],
        { env: { ...(process.env as Record<string, string>), VAULT_DEV_ROOT_TOKEN_ID: token } },
      );
      await waitFor("an unsealed Vault container", 60_000, async () => {
        await docker(["exec", "-e", "VAULT_ADDR=http://127.0.0.1:8200", vaultContainer, "vault", "status"], { timeout: 15_000 });
        return true;
      });
      const ip = await docker(["inspect", "--format", '{{(index .NetworkSettings.Networks "kind").IPAddress}}', vaultContainer]);
      expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      const vaultAddr = `http://${ip}:8200`;
      // Vault outside the cluster reaches the API server at the control plane's address on kind's
      // network, not at the pod's kubernetes.default Service address.
      const r = await runJob("vkc-outside-vault", { VAULT_ADDR: vaultAddr, VKC_KUBE_HOST_FOR_VAULT: apiServerForVault });
      expectPassingLog(r, vaultAddr);
      await expectNothingLeft();
    },
    JOB_TIMEOUT_MS + 300_000,
  );
});
