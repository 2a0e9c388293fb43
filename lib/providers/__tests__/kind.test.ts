import { existsSync, statSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { loadAllYaml, loadYaml, type KubernetesObject } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../../config.ts";
import { KindError, UsageError } from "../../errors.ts";
import { inWorkspace, workspaceOptions } from "../../lifecycle/workspace.ts";
import { redact } from "../../redact.ts";
import {
  inClusterVaultManifests,
  keepInstructions,
  kindArgs,
  kindPlanText,
  kitNodeImageFor,
  kindClusterConfig,
  kubeletRefusesCgroupV1,
  loadKindPins,
  missingCapabilities,
  nodeImageFor,
  parseInternalKubeconfig,
  vaultContainerSpec,
  vaultImageFor,
  type KindPins,
} from "../kind-plan.ts";
import {
  hostIsCgroupV1,
  removeIdleKindNetwork,
  removeNodeContainers,
  requireImage,
  requirePrivilegedContainers,
  requireKindTools,
  startKindTarget as startInWorkspace,
  type KindDeps,
} from "../kind.ts";

// Plumbing of the kind target, without Docker: images, cluster config, command lines, the
// internal address, cleanup order, and the errors for missing tools. Docker itself is only
// exercised where it exists (GitHub Actions runs --target kind for real).

// The fakes answer as docker: a KIND_EXPERIMENTAL_PROVIDER=podman of the caller's shell must not
// switch the provider to podman under them (the podman case passes its env explicitly).
beforeEach(() => {
  vi.stubEnv("KIND_EXPERIMENTAL_PROVIDER", "");
});
afterEach(() => {
  vi.unstubAllEnvs();
});

const PINS: KindPins = {
  kind: "v0.99.0",
  nodeImages: {
    "1.35": "kindest/node:v1.35.1@sha256:aaaa",
    "1.34": "kindest/node:v1.34.3@sha256:bbbb",
  },
  legacyNodeImages: { "1.23": { image: "kindest/node:v1.23.17@sha256:cccc", kind: "v0.20.0" } },
  vaultImages: { vault: ["hashicorp/vault:1.21.1", "hashicorp/vault:1.20.4"], openbao: ["quay.io/openbao/openbao:2.4.1"] },
};

const CA = "-----BEGIN CERTIFICATE-----\nMIIBkTCB+wIJAKHHIG\n-----END CERTIFICATE-----\n";
const internalKubeconfig = (name: string) => `apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: ${Buffer.from(CA).toString("base64")}
    server: https://${name}-control-plane:6443
  name: kind-${name}
contexts:
- context: {cluster: kind-${name}, user: kind-${name}}
  name: kind-${name}
current-context: kind-${name}
users:
- name: kind-${name}
  user: {token: abc}
`;

describe("node and Vault images", () => {
  it("picks the newest pinned node image by default, and a minor's pinned image", () => {
    expect(nodeImageFor({}, PINS)).toEqual({ image: "kindest/node:v1.35.1@sha256:aaaa", kubeVersion: "1.35.1", pinned: true });
    expect(nodeImageFor({ kubeVersion: "1.34" }, PINS).image).toBe("kindest/node:v1.34.3@sha256:bbbb");
    expect(nodeImageFor({ kubeVersion: "v1.34.3" }, PINS).pinned).toBe(true);
  });
  it("an older minor names the kind release it needs", () => {
    expect(nodeImageFor({ kubeVersion: "1.23" }, PINS)).toMatchObject({ kubeVersion: "1.23.17", kind: "v0.20.0", pinned: true });
  });
  it("a patch that is not pinned uses the plain tag, unpinned; an unknown minor without patch is an error", () => {
    expect(nodeImageFor({ kubeVersion: "1.34.0" }, PINS)).toEqual({ image: "kindest/node:v1.34.0", kubeVersion: "1.34.0", pinned: false });
    expect(() => nodeImageFor({ kubeVersion: "1.29" }, PINS)).toThrow(/no kind node image is pinned for Kubernetes 1.29/);
    expect(() => nodeImageFor({ kubeVersion: "latest" }, PINS)).toThrow(UsageError);
  });
  it("an explicit image wins", () => {
    expect(nodeImageFor({ image: "registry.example/node:v1.33.2", kubeVersion: "1.35" }, PINS)).toEqual({
      image: "registry.example/node:v1.33.2",
      kubeVersion: "1.33.2",
      pinned: false,
    });
  });
  it("Vault images per flavor, overridable", () => {
    expect(vaultImageFor("vault", undefined, PINS)).toBe("hashicorp/vault:1.21.1");
    expect(vaultImageFor("openbao", undefined, PINS)).toBe("quay.io/openbao/openbao:2.4.1");
    expect(vaultImageFor("vault", "hashicorp/vault:1.19.0", PINS)).toBe("hashicorp/vault:1.19.0");
  });
  it("the project's pins are complete: every node image has a digest, each flavor an image", () => {
    const pins = loadKindPins();
    expect(Object.keys(pins.nodeImages).length).toBeGreaterThanOrEqual(4);
    for (const image of Object.values(pins.nodeImages)) expect(image).toMatch(/^kindest\/node:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}$/);
    for (const { image } of Object.values(pins.legacyNodeImages)) expect(image).toMatch(/@sha256:[0-9a-f]{64}$/);
    expect(pins.vaultImages.vault.length).toBeGreaterThanOrEqual(2);
    expect(pins.vaultImages.openbao.length).toBeGreaterThanOrEqual(1);
  });
});

describe("kind cluster config", () => {
  it("without a custom issuer: one control-plane node with the image and no kubeadm patches", () => {
    const cfg = loadYaml<Record<string, any>>(kindClusterConfig({ name: "vkc-1", image: "kindest/node:v1.35.1" }));
    expect(cfg).toEqual({
      kind: "Cluster",
      apiVersion: "kind.x-k8s.io/v1alpha4",
      name: "vkc-1",
      nodes: [{ role: "control-plane", image: "kindest/node:v1.35.1" }],
    });
  });
  it("a custom issuer and audiences go to the API server through one unversioned kubeadm patch (kind converts it per version)", () => {
    const cfg = loadYaml<Record<string, any>>(
      kindClusterConfig({ name: "vkc-1", image: "i", issuer: "https://oidc.example/id/1", apiAudiences: ["vault", "api"] }),
    );
    const patches = (cfg.kubeadmConfigPatches as string[]).map((p) => loadYaml<Record<string, any>>(p));
    expect(patches).toEqual([
      {
        kind: "ClusterConfiguration",
        apiServer: { extraArgs: { "service-account-issuer": "https://oidc.example/id/1", "api-audiences": "vault,api" } },
      },
    ]);
  });
  it("kind's default issuer needs no patch; an in-cluster Vault gets a loopback port mapping", () => {
    const cfg = loadYaml<Record<string, any>>(
      kindClusterConfig({
        name: "n",
        image: "i",
        issuer: "https://kubernetes.default.svc.cluster.local",
        portMapping: { hostPort: 41234, nodePort: 30820 },
      }),
    );
    expect(cfg.kubeadmConfigPatches).toBeUndefined();
    expect(cfg.nodes[0].extraPortMappings).toEqual([
      { containerPort: 30820, hostPort: 41234, listenAddress: "127.0.0.1", protocol: "TCP" },
    ]);
  });
});

describe("cgroup v1 hosts", () => {
  it("kubelet 1.35+ refuses cgroup v1 by default; older or unknown versions are left alone", () => {
    expect(kubeletRefusesCgroupV1("1.36.3")).toBe(true);
    expect(kubeletRefusesCgroupV1("v1.35.0")).toBe(true);
    expect(kubeletRefusesCgroupV1("1.34.3")).toBe(false);
    expect(kubeletRefusesCgroupV1("unknown")).toBe(false);
  });
  it("the cluster config then patches the kubelet with failCgroupV1: false, beside the API server patch", () => {
    const cfg = loadYaml<Record<string, any>>(
      kindClusterConfig({ name: "n", image: "i", issuer: "https://oidc.example/id/1", allowCgroupV1: true }),
    );
    const patches = (cfg.kubeadmConfigPatches as string[]).map((p) => loadYaml<Record<string, any>>(p));
    expect(patches).toEqual([
      { kind: "ClusterConfiguration", apiServer: { extraArgs: { "service-account-issuer": "https://oidc.example/id/1" } } },
      { kind: "KubeletConfiguration", failCgroupV1: false },
    ]);
    const only = loadYaml<Record<string, any>>(kindClusterConfig({ name: "n", image: "i", allowCgroupV1: true }));
    expect(only.kubeadmConfigPatches.map((p: string) => loadYaml(p))).toEqual([{ kind: "KubeletConfiguration", failCgroupV1: false }]);
  });
  it('detects the host\'s cgroup version from the engine (docker "1", podman "v1"); a failing probe counts as v2', async () => {
    expect(await hostIsCgroupV1(fakeDeps({ cgroup: "1" }).deps, "docker")).toBe(true);
    expect(await hostIsCgroupV1(fakeDeps({ cgroup: "2" }).deps, "docker")).toBe(false);
    expect(await hostIsCgroupV1(fakeDeps({ failAt: "docker info" }).deps, "docker")).toBe(false);
    const podman = fakeDeps();
    podman.deps.exec = async () => "v1";
    expect(await hostIsCgroupV1(podman.deps, "podman")).toBe(true);
  });
  it("a run on a cgroup v1 host with a 1.35+ node image writes the patch into its kind config", async () => {
    const { deps } = fakeDeps({ cgroup: "1" });
    const t = await startKindTarget(kindConfig({ VKC_NODE_IMAGE: "vkc/kind-node:v1.36.3" }), deps);
    const cfg = loadAllYaml(await readFile(t.info.kube.kubeconfigPath.replace(/kubeconfig$/, "kind-config.yaml"), "utf8"))[0] as Record<
      string,
      any
    >;
    expect(cfg.kubeadmConfigPatches.map((p: string) => loadYaml(p))).toContainEqual({ kind: "KubeletConfiguration", failCgroupV1: false });
    await t.stop();
    const old = await startKindTarget(kindConfig({ VKC_NODE_IMAGE: "vkc/kind-node:v1.34.0" }), fakeDeps({ cgroup: "1" }).deps);
    const oldCfg = loadAllYaml(
      await readFile(old.info.kube.kubeconfigPath.replace(/kubeconfig$/, "kind-config.yaml"), "utf8"),
    )[0] as Record<string, any>;
    expect(oldCfg.kubeadmConfigPatches).toBeUndefined();
    await old.stop();
  });
});

describe("images that are neither present nor pullable", () => {
  const what = { noun: "node image", flag: "--node-image" };
  it("present: no pull; absent but pullable: pulled", async () => {
    const present = fakeDeps();
    expect(await requireImage(present.deps, "docker", "vkc/kind-node:v1.36.3", what)).toBe(true);
    expect(present.calls).toEqual(["docker image inspect --format {{.Id}} vkc/kind-node:v1.36.3"]);
    const pulled = fakeDeps({ absent: ["kindest/node:v1.36.3"] });
    expect(await requireImage(pulled.deps, "docker", "kindest/node:v1.36.3", what)).toBe(true);
    expect(pulled.calls.at(-1)).toBe("docker pull kindest/node:v1.36.3");
  });
  it("absent and the pull fails: one line naming the kit and the flag (UsageError, exit 2)", async () => {
    const { deps } = fakeDeps({ absent: ["vkc/kind-node:v9.9.9"], pull: "fails" });
    const err = await requireImage(deps, "docker", "vkc/kind-node:v9.9.9", what).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(2);
    expect((err as Error).message).toBe(
      "node image vkc/kind-node:v9.9.9 is not present and cannot be pulled: build it with `npm run kit` (kit/README.md) or name one with --node-image",
    );
  });
  it("a pull still running after the bound is not judged: a warning, and the run goes on", async () => {
    const { deps } = fakeDeps({ absent: ["kindest/node:v1.36.3"], pull: "times out" });
    expect(await requireImage(deps, "docker", "kindest/node:v1.36.3", what)).toBe(false);
  });
  it("the run stops before any cluster exists, for the node image and for the Vault image", async () => {
    const node = fakeDeps({ absent: ["vkc/kind-node:v9.9.9"], pull: "fails" });
    await expect(startKindTarget(kindConfig({ VKC_NODE_IMAGE: "vkc/kind-node:v9.9.9" }), node.deps)).rejects.toThrow(
      /^node image vkc\/kind-node:v9\.9\.9 is not present and cannot be pulled: .*--node-image$/,
    );
    expect(node.calls.filter((c) => c.startsWith("kind create"))).toEqual([]);
    const bao = fakeDeps({ absent: ["vkc/openbao:0.0.1"], pull: "fails" });
    await expect(startKindTarget(kindConfig({ VKC_FLAVOR: "openbao", VKC_VAULT_IMAGE: "vkc/openbao:0.0.1" }), bao.deps)).rejects.toThrow(
      /^OpenBao image vkc\/openbao:0\.0\.1 is not present and cannot be pulled: build it with `npm run kit` \(kit\/README\.md\) or name one with --vault-image$/,
    );
    expect(bao.calls.filter((c) => c.startsWith("kind create"))).toEqual([]);
  });
  it("in-cluster Vault whose image could not be judged is not loaded (the node pulls it)", async () => {
    const { deps, calls } = fakeDeps({ absent: ["hashicorp/vault:9.9.9"], pull: "times out" });
    const t = await startKindTarget(kindConfig({ VKC_VAULT: "in-cluster", VKC_VAULT_IMAGE: "hashicorp/vault:9.9.9" }), deps);
    expect(calls.some((c) => c.startsWith("kind load"))).toBe(false);
    await t.stop();
  });
});

describe("what kind leaves behind", () => {
  it("the kind network stays while something else is attached to it; a missing network is fine", async () => {
    const busy = fakeDeps({ onNetwork: "2" });
    await removeIdleKindNetwork(busy.deps);
    expect(busy.calls).toEqual(["docker network inspect kind --format {{len .Containers}}"]);
    const gone = fakeDeps({ failAt: "docker network inspect" });
    await expect(removeIdleKindNetwork(gone.deps)).resolves.toBeUndefined();
    expect(gone.calls.some((c) => c.includes("network rm"))).toBe(false);
  });
});

describe("kind command lines and the internal address", () => {
  it("create writes the kubeconfig to the run's directory, never the user's default", () => {
    expect(kindArgs.create({ name: "vkc-1", image: "img", configFile: "/w/kind.yaml", kubeconfig: "/w/kubeconfig" })).toEqual([
      "create",
      "cluster",
      "--name",
      "vkc-1",
      "--image",
      "img",
      "--config",
      "/w/kind.yaml",
      "--kubeconfig",
      "/w/kubeconfig",
      "--wait",
      "180s",
    ]);
    expect(kindArgs.delete("vkc-1", "/w/kubeconfig")).toEqual(["delete", "cluster", "--name", "vkc-1", "--kubeconfig", "/w/kubeconfig"]);
    expect(kindArgs.internalKubeconfig("vkc-1")).toEqual(["get", "kubeconfig", "--internal", "--name", "vkc-1"]);
    expect(kindArgs.exportLogs("vkc-1", "/r/kind-logs")).toEqual(["export", "logs", "/r/kind-logs", "--name", "vkc-1"]);
  });
  it("Vault on kind's network reaches the API server at the control plane's internal name, with the kubeconfig's CA", () => {
    expect(parseInternalKubeconfig(internalKubeconfig("vkc-1"))).toEqual({ server: "https://vkc-1-control-plane:6443", caPem: CA });
  });
  it("an unreadable internal kubeconfig is a clear error", () => {
    expect(() => parseInternalKubeconfig("not: [a kubeconfig")).toThrow(/kind printed a kubeconfig that cannot be read/);
    expect(() => parseInternalKubeconfig("apiVersion: v1\nkind: Config\n")).toThrow(/no current cluster/);
  });
});

describe("Vault container and in-cluster manifests", () => {
  it("a dev server on 0.0.0.0:8200 on kind's network, labelled with the run", () => {
    const spec = vaultContainerSpec({ image: "quay.io/openbao/openbao:2.4.1", flavor: "openbao", token: "t0k", runId: "vkc-x" });
    expect(spec).toMatchObject({ entrypoint: ["bao"], network: "kind", port: 8200, labels: { "vault-k8s-conformance/run": "vkc-x" } });
    expect(spec.command).toEqual([
      "server",
      "-dev",
      "-dev-root-token-id=t0k",
      "-dev-listen-address=0.0.0.0:8200",
      "-dev-no-store-token",
      "-log-level=debug",
    ]);
    expect(vaultContainerSpec({ image: "hashicorp/vault:1.21.1", flavor: "vault", token: "t", runId: "r" }).entrypoint).toEqual(["vault"]);
  });
  it("in-cluster: Vault's own ServiceAccount may review tokens; the Service is a NodePort; all labelled", () => {
    const objs = inClusterVaultManifests({
      namespace: "vkc-vault-1",
      image: "hashicorp/vault:1.21.1",
      flavor: "vault",
      token: "t",
      runId: "vkc-r",
    });
    expect(objs.map((o) => o.kind)).toEqual(["Namespace", "ServiceAccount", "ClusterRoleBinding", "Deployment", "Service"]);
    for (const o of objs) expect(o.metadata?.labels?.["vault-k8s-conformance/run"]).toBe("vkc-r");
    const crb = objs[2] as any;
    expect(crb.roleRef.name).toBe("system:auth-delegator");
    expect(crb.subjects).toEqual([{ kind: "ServiceAccount", name: "vault", namespace: "vkc-vault-1" }]);
    const deploy = objs[3] as any;
    expect(deploy.spec.template.spec.serviceAccountName).toBe("vault");
    // The image is `kind load`ed into the node: never pulled when it is there.
    expect(deploy.spec.template.spec.containers[0].imagePullPolicy).toBe("IfNotPresent");
    expect((objs[4] as any).spec).toMatchObject({ type: "NodePort", ports: [{ port: 8200, nodePort: 30820 }] });
  });
});

/** Fake kind/docker/testcontainers that record what the provider asks of them. */
function fakeDeps(
  o: {
    failAt?: string;
    missing?: string;
    /** Images the engine does not have. */
    absent?: string[];
    /** How `docker pull` of an absent image ends (default: it works). */
    pull?: "fails" | "times out";
    /** What `docker info --format {{.CgroupVersion}}` prints (default "2"). */
    cgroup?: string;
    /** Containers still on the kind network after the cluster is deleted (default "0"). */
    onNetwork?: string;
    /** How the privileged probe container fails: runc cannot apply caps, or something else (default: it runs). */
    privileged?: "caps" | "other";
    /** Node containers `docker ps` still lists after `kind delete cluster` (ids). */
    nodesLeft?: string[];
    /** What `kind export logs` writes as a pod's log (default: nothing exported). */
    podLog?: () => string;
  } = {},
) {
  const calls: string[] = [];
  const applied: KubernetesObject[] = [];
  const deps: KindDeps = {
    kind: "kind",
    async exec(cmd, args) {
      const line = `${cmd} ${args.join(" ")}`;
      calls.push(line);
      if (o.missing === cmd) throw new KindError(`${cmd}: not found`, { command: cmd, failure: "not-found" });
      if (o.failAt && line.startsWith(o.failAt)) throw new Error(`${o.failAt} failed`);
      if (args[0] === "version") return "kind v0.99.0 go1.26 linux/amd64";
      if (args[0] === "image" && args[1] === "inspect" && o.absent?.includes(args.at(-1)!))
        throw new KindError(`${cmd} image inspect exited 1`, { command: cmd, failure: "exit", status: 1 });
      if (args[0] === "pull" && o.pull === "fails")
        throw new KindError(`${cmd} pull exited 1`, { command: cmd, failure: "exit", status: 1, details: "no such host" });
      if (args[0] === "pull" && o.pull === "times out") throw new KindError(`${cmd} pull timed out`, { command: cmd, failure: "timeout" });
      if (args[0] === "info" && args.at(-1) === "{{.CgroupVersion}}") return o.cgroup ?? "2";
      if (args[0] === "network" && args[1] === "inspect") return o.onNetwork ?? "0";
      if (args[0] === "run" && o.privileged)
        throw new KindError(`${cmd} run exited 125`, {
          command: cmd,
          failure: "exit",
          status: 125,
          details:
            o.privileged === "caps"
              ? "docker: Error response from daemon: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: unable to apply caps: operation not permitted: unknown."
              : 'docker: Error response from daemon: failed to create shim task: OCI runtime create failed: exec: "/bin/true": stat /bin/true: no such file or directory: unknown.',
        });
      if (args[0] === "ps" && args[1] === "-aq") return (o.nodesLeft ?? []).join("\n");
      if (args[0] === "export" && o.podLog) {
        const pods = join(args[2]!, "node", "pods");
        await mkdir(pods, { recursive: true });
        await writeFile(join(pods, "vault.log"), o.podLog());
      }
      if (args[0] === "create") {
        const kc = args[args.indexOf("--kubeconfig") + 1]!;
        await writeFile(
          kc,
          internalKubeconfig(args[args.indexOf("--name") + 1]!).replace(/https:\/\/[^\n]*:6443/, "https://127.0.0.1:40001"),
        );
      }
      if (args[0] === "get") return internalKubeconfig(args[args.indexOf("--name") + 1]!);
      return "";
    },
    execSync(cmd, args) {
      calls.push(`sync ${cmd} ${args.join(" ")}`);
    },
    async startContainer(spec, so) {
      calls.push(`container start ${spec.image} network=${spec.network}`);
      if (so.keep) calls.push("container kept at exit");
      if (o.failAt === "container") throw new Error("container did not start");
      return {
        id: "c0ffee1234567890",
        address: "http://localhost:49153",
        networkIp: "172.18.0.3",
        stop: async () => void calls.push("container stop"),
      };
    },
    async applyObjects(_kc, objs) {
      calls.push(`apply ${objs.map((x) => x.kind).join(",")}`);
      applied.push(...objs);
    },
    async clusterFacts() {
      return { version: "v1.35.1", issuer: "https://kubernetes.default.svc.cluster.local" };
    },
    async vaultReady(address) {
      calls.push(`vault ready ${address}`);
      return "1.21.1";
    },
    async clusterDnsReady(_kc, _ms, signal) {
      calls.push("cluster dns ready");
      await new Promise((r) => setTimeout(r, 5)); // still waiting while Vault starts
      if (signal?.aborted) return void calls.push("cluster dns wait aborted");
      if (o.failAt === "dns") throw new Error("the cluster's DNS: not ready after 3m");
    },
  };
  return { deps, calls, applied };
}

/** The kind provider's start in a run workspace of its own, as lib/lifecycle/start.ts runs it. */
const startKindTarget = (config: ReturnType<typeof kindConfig>, deps: KindDeps) =>
  inWorkspace(workspaceOptions(config), (ws) => startInWorkspace(config, ws, deps));

const kindConfig = (env: Record<string, string> = {}) =>
  loadConfig({ VKC_TARGET: "kind", VKC_REPORTS_DIR: "/tmp/vkc-kind-unit-reports", HOME: "/tmp", ...env }, "/tmp");
afterAll(() => rm("/tmp/vkc-kind-unit-reports", { recursive: true, force: true }));

describe("startKindTarget (fake kind, docker and testcontainers)", () => {
  it("creates the cluster, starts Vault on kind's network, and tears down in reverse: container, cluster, work dir", async () => {
    const { deps, calls } = fakeDeps();
    const t = await startKindTarget(kindConfig(), deps);
    const name = t.info.runId;
    expect(calls.slice(0, 2)).toEqual(["docker info --format {{.ServerVersion}}", "kind version"]);
    // Both images are checked (present here), and the host's cgroup version, before kind create.
    expect(calls[2]).toMatch(/^docker image inspect --format \{\{\.Id\}\} kindest\/node:/);
    expect(calls[3]).toMatch(/^docker image inspect --format \{\{\.Id\}\} hashicorp\/vault:/);
    // kind's node is a privileged container: a tiny one from the node image first.
    expect(calls[4]).toMatch(
      new RegExp(
        `^docker run --rm --privileged --network none --name ${name}-probe --label vault-k8s-conformance/run=${name} --entrypoint /bin/true kindest/node:`,
      ),
    );
    expect(calls[5]).toBe("docker info --format {{.CgroupVersion}}");
    expect(calls[6]).toMatch(
      new RegExp(`^kind create cluster --name ${name} --image kindest/node:v[\\d.]+@sha256:[0-9a-f]{64} --config /`),
    );
    expect(calls[7]).toBe(`kind get kubeconfig --internal --name ${name}`);
    expect(calls[8]).toMatch(/^container start hashicorp\/vault:\S+ network=kind$/);
    // Vault as a container: Vault and the apps use addresses, so no wait for the cluster's DNS.
    expect(calls[9]).toBe("vault ready http://localhost:49153");
    expect(calls).not.toContain("cluster dns ready");
    expect(t.info).toMatchObject({
      target: "kind",
      flavor: "vault",
      kube: {
        server: "https://127.0.0.1:40001",
        hostForVault: `https://${name}-control-plane:6443`,
        caCertForVault: CA,
        context: `kind-${name}`,
      },
      // Pods reach the container at its address on kind's network.
      vault: { address: "http://localhost:49153", version: "1.21.1", outsideCluster: true, addressForPods: "http://172.18.0.3:8200" },
    });
    // Secrets: the token file is 0600 and its content is registered for redaction.
    expect(statSync(t.info.vault.tokenFile).mode & 0o777).toBe(0o600);
    const token = (await readFile(t.info.vault.tokenFile, "utf8")).trim();
    expect(redact(`token ${token}`)).not.toContain(token);
    const work = t.info.kube.kubeconfigPath.replace(/\/kubeconfig$/, "");
    calls.length = 0;
    await t.stop();
    expect(calls).toEqual([
      "container stop",
      `kind delete cluster --name ${name} --kubeconfig ${work}/kubeconfig`,
      // A node container kind's delete did not see (Ctrl-C during create) is removed too.
      `docker ps -aq --filter label=io.x-k8s.kind.cluster=${name}`,
      // kind leaves its docker network: removed once nothing is attached to it.
      "docker network inspect kind --format {{len .Containers}}",
      "docker network rm kind",
    ]);
    expect(existsSync(work)).toBe(false);
  });

  it("a Vault that fails to start still deletes the cluster it created", async () => {
    const { deps, calls } = fakeDeps({ failAt: "container" });
    await expect(startKindTarget(kindConfig(), deps)).rejects.toThrow(/container did not start/);
    // The cluster's logs are saved first: they say why the target did not come up.
    expect(calls.at(-5)).toMatch(/^kind export logs \S+\/diagnostics\/kind-logs --name vkc-/);
    expect(calls.at(-4)).toMatch(/^kind delete cluster --name vkc-/);
    expect(calls.slice(-2)).toEqual(["docker network inspect kind --format {{len .Containers}}", "docker network rm kind"]);
  });

  it("a cluster whose DNS never becomes ready fails the start, exports the logs and deletes the cluster", async () => {
    const { deps, calls } = fakeDeps({ failAt: "dns" });
    await expect(startKindTarget(kindConfig({ VKC_VAULT: "in-cluster" }), deps)).rejects.toThrow(/the cluster's DNS: not ready/);
    // The wait starts beside Vault's (right after kind create) and is awaited after Vault is ready.
    expect(calls.indexOf("cluster dns ready")).toBe(calls.findIndex((c) => c.startsWith("kind get kubeconfig --internal")) + 1);
    const ready = calls.findIndex((c) => c.startsWith("vault ready"));
    expect(calls[ready + 1]).toMatch(/^kind export logs \S+\/diagnostics\/kind-logs --name vkc-/);
    expect(calls[ready + 2]).toMatch(/^kind delete cluster --name vkc-/);
  });

  it("in-cluster: a Vault that fails to start stops the wait for the cluster's DNS and deletes the cluster", async () => {
    const { deps, calls } = fakeDeps({ failAt: "kind load" });
    await expect(startKindTarget(kindConfig({ VKC_VAULT: "in-cluster" }), deps)).rejects.toThrow(/kind load failed/);
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toContain("cluster dns wait aborted");
    expect(calls.some((c) => c.startsWith("kind delete cluster"))).toBe(true);
  });

  it("a failing kind create still runs kind delete (a half-created cluster is removed)", async () => {
    const { deps, calls } = fakeDeps({ failAt: "kind create" });
    await expect(startKindTarget(kindConfig(), deps)).rejects.toThrow(/kind create failed/);
    expect(calls.some((c) => c.startsWith("kind export logs"))).toBe(false);
    expect(calls.at(-4)).toMatch(/^kind delete cluster/);
    expect(calls.at(-1)).toBe("docker network rm kind");
  });

  it("in-cluster Vault: applies the manifests, reaches Vault through the mapped port, Vault uses the in-cluster host", async () => {
    const { deps, calls } = fakeDeps();
    const t = await startKindTarget(kindConfig({ VKC_VAULT: "in-cluster", VKC_FLAVOR: "openbao" }), deps);
    const apply = calls.indexOf("apply Namespace,ServiceAccount,ClusterRoleBinding,Deployment,Service");
    // The host's image is copied into the node first: the kubelet never pulls it.
    expect(apply).toBeGreaterThan(0);
    expect(calls[apply - 1]).toBe(`kind load docker-image ${t.info.versions.vaultImage} --name ${t.info.runId}`);
    expect(calls.some((c) => c.startsWith("container start"))).toBe(false);
    expect(t.info.vault.address).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(t.info.kube.hostForVault).toBe("https://kubernetes.default.svc");
    expect(t.info.vault.outsideCluster).toBe(false);
    // Pods reach it through its Service's DNS name.
    expect(t.info.vault.addressForPods).toBe(`http://vault.vkc-vault-${t.info.runId.slice(-6)}.svc:8200`);
    const cfg = loadAllYaml(await readFile(t.info.kube.kubeconfigPath.replace(/kubeconfig$/, "kind-config.yaml"), "utf8"))[0] as Record<
      string,
      any
    >;
    expect(cfg.nodes[0].extraPortMappings[0].hostPort).toBe(Number(t.info.vault.address.split(":").at(-1)));
    await t.stop();
  });

  it("--keep keeps cluster and container and says how to remove them", async () => {
    const { deps, calls } = fakeDeps();
    const t = await startKindTarget(kindConfig({ VKC_KEEP: "1" }), deps);
    const work = t.info.kube.kubeconfigPath.replace(/\/kubeconfig$/, "");
    // No last-resort `docker rm` of the container when the process exits.
    expect(calls).toContain("container kept at exit");
    calls.length = 0;
    await t.stop();
    expect(calls).toEqual([]);
    expect(existsSync(work)).toBe(true);
    await import("node:fs/promises").then((fs) => fs.rm(work, { recursive: true, force: true }));
  });

  it("after a failed run, kind export logs goes into the diagnostics bundle, the run's secrets redacted", async () => {
    let token = "";
    const { deps, calls } = fakeDeps({ podLog: () => `Root Token: ${token}\nUnseal Key: abc=\n` });
    const t = await startKindTarget(kindConfig(), deps);
    token = (await readFile(t.info.vault.tokenFile, "utf8")).trim();
    await t.onFailure!();
    const dir = `${t.info.artifactsDir}/diagnostics/kind-logs`;
    expect(calls.at(-1)).toBe(`kind export logs ${dir} --name ${t.info.runId}`);
    expect(await readFile(join(dir, "node", "pods", "vault.log"), "utf8")).toBe("Root Token: [REDACTED]\nUnseal Key: [REDACTED]\n");
    await t.stop();
  });
});

describe("the kit's images (npm run kit, no registry)", () => {
  const pins: KindPins = {
    ...PINS,
    kitImages: { nodeImages: { "1.34": "vkc/kind-node:v1.34.3" }, vaultImages: { vault: "vkc/vault:1.21.1" } },
  };
  it("the kit's node image of a minor, of the exact patch, or the newest without a version", () => {
    expect(kitNodeImageFor(undefined, pins)).toBe("vkc/kind-node:v1.34.3");
    expect(kitNodeImageFor("1.34", pins)).toBe("vkc/kind-node:v1.34.3");
    expect(kitNodeImageFor("v1.34.3", pins)).toBe("vkc/kind-node:v1.34.3");
    expect(kitNodeImageFor("1.34.2", pins)).toBeUndefined();
    expect(kitNodeImageFor("1.35", pins)).toBeUndefined();
    expect(kitNodeImageFor(undefined, PINS)).toBeUndefined();
  });
  it("the project's kit pins name the node image and both flavors' images the kit builds", () => {
    expect(loadKindPins().kitImages).toEqual({
      nodeImages: { "1.36": "vkc/kind-node:v1.36.3" },
      vaultImages: { vault: "vkc/vault:1.21.1", openbao: "vkc/openbao:2.7.2" },
    });
  });
  it("used when the engine lacks the pinned images and has the kit's; named images are never replaced", async () => {
    const pinned = nodeImageFor({}).image;
    const { deps, calls } = fakeDeps({ absent: [pinned, vaultImageFor("openbao", undefined)] });
    const t = await startKindTarget(kindConfig({ VKC_FLAVOR: "openbao" }), deps);
    expect(t.info.versions).toMatchObject({ nodeImage: "vkc/kind-node:v1.36.3", vaultImage: "vkc/openbao:2.7.2" });
    expect(calls.find((c) => c.startsWith("kind create"))).toContain("--image vkc/kind-node:v1.36.3 ");
    expect(calls.some((c) => c.startsWith("docker pull"))).toBe(false);
    await t.stop();
    // Present pinned images win; an image the user names is used as named (pulled when absent).
    const named = fakeDeps({ absent: ["kindest/node:v1.36.9"] });
    const n = await startKindTarget(kindConfig({ VKC_NODE_IMAGE: "kindest/node:v1.36.9" }), named.deps);
    expect(n.info.versions.nodeImage).toBe("kindest/node:v1.36.9");
    expect(named.calls).toContain("docker pull kindest/node:v1.36.9");
    await n.stop();
    const both = fakeDeps();
    const b = await startKindTarget(kindConfig(), both.deps);
    expect(b.info.versions.nodeImage).toBe(pinned);
    await b.stop();
  });
  it("the dry run's plan says so", () => {
    expect(kindPlanText(kindConfig({ VKC_KUBE_VERSION: "1.36" }), "vkc-1")).toContain(
      "  images: the kit's (npm run kit) instead when the engine has them and not the pinned ones: vkc/kind-node:v1.36.3, vkc/vault:1.21.1",
    );
    expect(kindPlanText(kindConfig({ VKC_KUBE_VERSION: "1.35", VKC_VAULT_IMAGE: "x/vault:1" }), "vkc-1")).not.toContain("images:");
  });
});

describe("--keep: how to reach and remove what was kept", () => {
  it("one removal command with the run's kind CLI (container first, its volumes too), and kind's network on a line of its own", () => {
    const lines = keepInstructions({
      clusterName: "vkc-1",
      kubeconfig: "/tmp/vkc-1-x/kubeconfig",
      containerId: "c0ffee1234567890",
      workDir: "/tmp/vkc-1-x",
      vaultAddress: "http://localhost:49153",
      tokenFile: "/tmp/vkc-1-x/vault-token",
      kind: "/home/me/.cache/vault k8s/kind",
    });
    expect(lines).toEqual([
      "kept kind cluster vkc-1 and its Vault at http://localhost:49153",
      '  use them:   export KUBECONFIG=/tmp/vkc-1-x/kubeconfig VAULT_ADDR=http://localhost:49153 VAULT_TOKEN="$(cat /tmp/vkc-1-x/vault-token)"',
      "  remove it:  docker rm -f -v c0ffee123456 && '/home/me/.cache/vault k8s/kind' delete cluster --name vkc-1 --kubeconfig /tmp/vkc-1-x/kubeconfig && rm -rf /tmp/vkc-1-x",
      "  then kind's network, unless another kind cluster uses it:  docker network rm kind",
    ]);
  });
});

describe("an engine that refuses privileged containers", () => {
  it("names the capabilities a bounding set lacks (CapBnd 0x3ffeffffff: CAP_SYS_RESOURCE)", () => {
    expect(missingCapabilities("000001ffffffffff", 40)).toEqual([]);
    expect(missingCapabilities("0000003ffeffffff", 40)).toEqual(["CAP_SYS_RESOURCE", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]);
    expect(missingCapabilities("3ffeffffff", 37)).toEqual(["CAP_SYS_RESOURCE"]);
    expect(missingCapabilities("zz")).toEqual([]);
  });
  it("runc cannot apply caps: one line naming the capability and the runc wrapper (UsageError, exit 2); the probe is removed", async () => {
    const { deps, calls } = fakeDeps({ privileged: "caps" });
    const err = await requirePrivilegedContainers(deps, "docker", "vkc/kind-node:v1.36.3", {
      name: "vkc-1-probe",
      runId: "vkc-1",
      withheld: () => ["CAP_SYS_RESOURCE"],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(2);
    expect((err as Error).message).toBe(
      "docker refuses privileged containers, which kind's nodes are (docker run --privileged: unable to apply caps: operation not permitted): " +
        "this host withholds CAP_SYS_RESOURCE; install the runc wrapper that drops it with kit/docker/install-engine.sh (kit/README.md), or use --target local",
    );
    expect(calls.at(-1)).toBe("docker rm -f -v vkc-1-probe");
  });
  it("the run stops there, before any cluster exists", async () => {
    const { deps, calls } = fakeDeps({ privileged: "caps" });
    await expect(startKindTarget(kindConfig(), deps)).rejects.toThrow(
      /^docker refuses privileged containers, .*: (this host withholds CAP_\w+(, CAP_\w+)*|the host withholds a capability); install the runc wrapper/,
    );
    expect(calls.filter((c) => c.startsWith("kind "))).toEqual(["kind version"]);
  });
  it("a probe that fails for another reason only warns: kind gets its chance", async () => {
    const { deps, calls } = fakeDeps({ privileged: "other" });
    const t = await startKindTarget(kindConfig(), deps);
    expect(calls.some((c) => c.startsWith("kind create cluster"))).toBe(true);
    await t.stop();
  });
  it("a node container left after kind delete (Ctrl-C during create) is removed with its volumes", async () => {
    const { deps, calls } = fakeDeps({ nodesLeft: ["abc123"] });
    await removeNodeContainers(deps, "docker", "vkc-1");
    expect(calls).toEqual(["docker ps -aq --filter label=io.x-k8s.kind.cluster=vkc-1", "docker rm -f -v abc123"]);
  });
});

describe("missing tools", () => {
  it("no kind on PATH -> says to install kind or use --target local", async () => {
    const { deps } = fakeDeps({ missing: "kind" });
    await expect(requireKindTools(deps)).rejects.toThrow(
      /needs the kind CLI, which is not on PATH: install kind v0\.33\.0 .*, set KIND_BIN, or use --target local/,
    );
  });
  it("no docker -> says to install Docker or use --target local; podman is honoured", async () => {
    const { deps } = fakeDeps({ missing: "docker" });
    await expect(requireKindTools(deps)).rejects.toThrow(/needs docker, which is not on PATH: install Docker .*--target local/);
    const podman = fakeDeps({ missing: "podman" });
    await expect(requireKindTools(podman.deps, "podman")).rejects.toThrow(/needs podman/);
  });
  it("docker installed but the daemon is down -> says to start it", async () => {
    const { deps } = fakeDeps({ failAt: "docker info" });
    await expect(requireKindTools(deps)).rejects.toThrow(/docker is installed but not usable .*start it, or use --target local/);
  });
  it("the target never starts anything when a tool is missing", async () => {
    const { deps, calls } = fakeDeps({ missing: "docker" });
    await expect(startKindTarget(kindConfig(), deps)).rejects.toBeInstanceOf(UsageError);
    expect(calls.filter((c) => c.startsWith("kind create"))).toEqual([]);
  });
  it("--vault modes are checked per target; --keep is for kind", () => {
    expect(() => kindConfig({ VKC_VAULT: "process" })).toThrow(
      /--vault \(VKC_VAULT\) for the kind target must be one of container, in-cluster/,
    );
    expect(() => loadConfig({ VKC_KEEP: "1" }, "/tmp")).toThrow(/--keep .* applies to the kind target/);
  });
});
