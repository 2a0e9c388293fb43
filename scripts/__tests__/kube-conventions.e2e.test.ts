import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../lib/config.ts";
import { Kube } from "../../lib/kube/client.ts";
import type { RawKubeconfig } from "../../lib/kube/kubeconfig.ts";
import type { TargetInfo } from "../../lib/lifecycle/info.ts";
import type { RunResults } from "../../lib/report/reporter.ts";
import { writeExecPlugin } from "../../lib/kube/__tests__/exec-plugin.ts";
import { script, waitForOutput } from "./helpers.ts";

// Kubernetes client conventions of the existing target against a real local target's API server:
// a KUBECONFIG list (split files, relative paths, first wins), an exec credential plugin (in the
// script and in vitest's workers), a pod's ServiceAccount (in-cluster), and bad input.

const EXEC_V1BETA1 = "client.authentication.k8s.io/v1beta1";

describe("Kubernetes client conventions of --target existing, on a running local target", () => {
  let dir: string;
  let up: ReturnType<typeof script>;
  let info: TargetInfo;
  let vaultEnv: Record<string, string>;
  /** A cluster-admin ServiceAccount token (what the exec plugin and the "pod" use). */
  let saToken: string;
  let tokenFile: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "vkc-kube-conv-"));
    const out = join(dir, "target.json");
    up = script("env-up.ts", ["--out", out, "--reports", join(dir, "up")], { VKC_TARGET: "" });
    await waitForOutput(up, /is up/);
    info = JSON.parse(readFileSync(out, "utf8"));
    vaultEnv = {
      VAULT_ADDR: info.vault.address,
      VAULT_TOKEN: readFileSync(info.vault.tokenFile, "utf8").trim(),
      VKC_FLAVOR: info.flavor,
    };
    // The target is thrown away afterwards: these objects go with it.
    const kube = Kube.fromFile(info.kube.kubeconfigPath);
    const ns = `kube-conv-${Date.now()}`;
    await kube.createNamespace(ns, "kube-conventions-test");
    await kube.createServiceAccount(ns, "runner");
    await kube.rbac.createClusterRoleBinding({
      body: {
        metadata: { name: `${ns}-admin` },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
        subjects: [{ kind: "ServiceAccount", namespace: ns, name: "runner" }],
      },
    });
    saToken = await kube.requestToken(ns, "runner", { expirationSeconds: 3600 });
    tokenFile = join(dir, "sa-token");
    writeFileSync(tokenFile, saToken, { mode: 0o600 });
  });
  afterAll(async () => {
    up?.child.kill("SIGTERM");
    await up?.exited;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const admin = () => JSON.parse(readFileSync(info.kube.kubeconfigPath, "utf8")) as RawKubeconfig;
  const caPem = () => info.kube.caCertForVault;

  /** Writes a kubeconfig (JSON is YAML) under dir; returns its path. */
  function kubeconfig(rel: string, doc: Partial<RawKubeconfig>): string {
    const p = join(dir, rel);
    mkdirSync(join(p, ".."), { recursive: true });
    writeFileSync(p, JSON.stringify({ apiVersion: "v1", kind: "Config", clusters: [], users: [], contexts: [], ...doc }), { mode: 0o600 });
    return p;
  }

  /** A kubeconfig whose user is our exec plugin (next to it: "./vkc-test-plugin"), with `env` for the plugin. */
  function pluginKubeconfig(
    rel: string,
    env: Record<string, string> = {},
    command = "./vkc-test-plugin",
  ): { path: string; marker: string } {
    const pluginDir = join(dir, rel);
    mkdirSync(pluginDir, { recursive: true });
    writeExecPlugin(pluginDir);
    const marker = join(pluginDir, "calls.jsonl");
    const path = kubeconfig(join(rel, "config.yaml"), {
      clusters: [
        { name: "local", cluster: { server: info.kube.server, "certificate-authority-data": Buffer.from(caPem()).toString("base64") } },
      ],
      users: [
        {
          name: "via-plugin",
          user: {
            exec: {
              apiVersion: EXEC_V1BETA1,
              command,
              args: [EXEC_V1BETA1],
              env: Object.entries({ VKC_TEST_PLUGIN_TOKEN_FILE: tokenFile, VKC_TEST_PLUGIN_MARKER: marker, ...env }).map(
                ([name, value]) => ({
                  name,
                  value,
                }),
              ),
              interactiveMode: "Never",
            },
          },
        },
      ],
      contexts: [{ name: "plugin", context: { cluster: "local", user: "via-plugin" } }],
      "current-context": "plugin",
    });
    return { path, marker };
  }

  /** The run's own kubeconfig (in its work dir under `tmp`), while it runs: its mode and content. */
  function workKubeconfig(tmp: string, runId: string): { mode: number; config: RawKubeconfig } {
    const work = readdirSync(tmp).find((d) => d.startsWith(`${runId}-`));
    if (!work) throw new Error(`no work dir of ${runId} in ${tmp}`);
    const p = join(tmp, work, "kubeconfig");
    return { mode: statSync(p).mode & 0o777, config: JSON.parse(readFileSync(p, "utf8")) as RawKubeconfig };
  }

  it("KUBECONFIG=a:missing:b with the cluster in one file and the user and context in another: the dry run passes", async () => {
    const a = admin();
    const cluster = a.clusters[0]!.cluster;
    const user = a.users[0]!.user;
    const pem = (k: string) => Buffer.from(String(user[k]), "base64").toString("utf8");
    // Certificates as files next to each kubeconfig, named relatively: they resolve against the
    // file that names them, not against the script's working directory.
    mkdirSync(join(dir, "split", "cluster"), { recursive: true });
    writeFileSync(join(dir, "split", "cluster", "ca.crt"), caPem());
    const clusterFile = kubeconfig("split/cluster/config.yaml", {
      clusters: [{ name: "split-cluster", cluster: { server: String(cluster.server), "certificate-authority": "ca.crt" } }],
    });
    mkdirSync(join(dir, "split", "user", "pki"), { recursive: true });
    writeFileSync(join(dir, "split", "user", "pki", "admin.crt"), pem("client-certificate-data"));
    writeFileSync(join(dir, "split", "user", "pki", "admin.key"), pem("client-key-data"), { mode: 0o600 });
    const userFile = kubeconfig("split/user/config.yaml", {
      // The same cluster name again, unreachable: the first file's must win.
      clusters: [{ name: "split-cluster", cluster: { server: "https://127.0.0.1:9", "insecure-skip-tls-verify": true } }],
      users: [{ name: "admin", user: { "client-certificate": "pki/admin.crt", "client-key": "pki/admin.key" } }],
      contexts: [{ name: "split", context: { cluster: "split-cluster", user: "admin" } }],
      "current-context": "split",
    });
    const list = [clusterFile, join(dir, "split", "missing.yaml"), userFile].join(delimiter);
    const run = script("conformance.ts", ["--target", "existing", "--dry-run", "--reports", join(dir, "split-reports")], {
      ...vaultEnv,
      KUBECONFIG: list,
    });
    expect(await run.exited, run.output()).toBe(0);
    expect(run.output()).toContain(`on Kubernetes ${info.kube.server} (context split)`);
    expect(run.output()).toContain("ok   bind clusterrole system:auth-delegator");
    expect(run.output()).toMatch(/dry run: nothing created; the credentials allow all \d+ operations the run needs/);
  });

  it("an exec credential plugin authenticates the whole run: the script and vitest's workers run it; the run's kubeconfig is 0600 and keeps it", async () => {
    const { path, marker } = pluginKubeconfig("plugin");
    const tmp = join(dir, "plugin-tmp");
    mkdirSync(tmp);
    const reports = join(dir, "plugin-reports");
    const run = script("conformance.ts", ["--target", "existing", "--reports", reports, "smoke"], {
      ...vaultEnv,
      KUBECONFIG: path,
      TMPDIR: tmp,
    });
    await waitForOutput(run, /attached to \S+ \(context plugin,/);
    const runId = /plan of run (vkc-\d{14}-[0-9a-f]{6})/.exec(run.output())![1]!;
    const work = workKubeconfig(tmp, runId);
    expect(work.mode).toBe(0o600);
    expect(work.config.users).toEqual([
      {
        name: "via-plugin",
        user: {
          exec: expect.objectContaining({
            apiVersion: EXEC_V1BETA1,
            command: join(dir, "plugin", "vkc-test-plugin"),
            args: [EXEC_V1BETA1],
          }),
        },
      },
    ]);
    expect(await run.exited, run.output().slice(-3000)).toBe(0);
    const results = JSON.parse(readFileSync(join(reports, "results.json"), "utf8")) as RunResults;
    expect(results.totals.failed).toBe(0);
    expect(results.totals.passed).toBeGreaterThan(0);
    // Called by the script itself and by at least one vitest worker (another parent process).
    const calls = readFileSync(marker, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { ppid: number; info: string });
    const parents = new Set(calls.map((c) => c.ppid));
    expect(parents.has(run.child.pid!)).toBe(true);
    expect([...parents].filter((p) => p !== run.child.pid).length).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(calls[0]!.info)).toMatchObject({ apiVersion: EXEC_V1BETA1, kind: "ExecCredential" });
    expect(run.output()).not.toContain(saToken);
    expect(readdirSync(tmp).filter((d) => d.startsWith(runId))).toEqual([]); // the work dir is gone
  });

  it("in a pod (KUBERNETES_SERVICE_HOST/PORT, a ServiceAccount dir, no KUBECONFIG): its ServiceAccount, over ~/.kube/config", async () => {
    const saDir = join(dir, "pod", "serviceaccount");
    mkdirSync(saDir, { recursive: true });
    writeFileSync(join(saDir, "token"), saToken, { mode: 0o600 });
    writeFileSync(join(saDir, "ca.crt"), caPem());
    writeFileSync(join(saDir, "namespace"), "default");
    // A ~/.kube/config that would fail: in a pod, the ServiceAccount comes first.
    const home = join(dir, "pod", "home");
    kubeconfig("pod/home/.kube/config", {
      clusters: [{ name: "stray", cluster: { server: "https://127.0.0.1:9", "insecure-skip-tls-verify": true } }],
      contexts: [{ name: "stray", context: { cluster: "stray" } }],
      "current-context": "stray",
    });
    const reports = join(dir, "pod-reports");
    const run = script("conformance.ts", ["--target", "existing", "--reports", reports, "smoke"], {
      ...vaultEnv,
      KUBECONFIG: "",
      HOME: home,
      VKC_CACHE_DIR: loadConfig().cacheDir,
      KUBERNETES_SERVICE_HOST: "127.0.0.1",
      KUBERNETES_SERVICE_PORT: new URL(info.kube.server).port,
      VKC_SA_DIR: saDir,
    });
    expect(await run.exited, run.output().slice(-3000)).toBe(0);
    expect(run.output()).toContain(`attached to https://127.0.0.1:${new URL(info.kube.server).port} (context in-cluster,`);
    const results = JSON.parse(readFileSync(join(reports, "results.json"), "utf8")) as RunResults;
    expect(results.totals.failed).toBe(0);
    expect(results.totals.passed).toBeGreaterThan(0);
    expect(run.output()).not.toContain(saToken);
  });

  it.each([
    [
      "a KUBECONFIG list of which no file exists",
      () => `${join(dir, "nope-1.yaml")}${delimiter}${join(dir, "nope-2.yaml")}`,
      "error: KUBECONFIG: none of its files exists (",
    ],
    [
      "a malformed kubeconfig",
      () => (writeFileSync(join(dir, "malformed.yaml"), "clusters:\n- name: x\n  cluster: { server: [\n"), join(dir, "malformed.yaml")),
      `error: kubeconfig DIR/malformed.yaml is not valid YAML: `,
    ],
    [
      "an exec plugin that is not there",
      () => pluginKubeconfig("gone-plugin", {}, "./not-installed").path,
      `error: exec credential plugin DIR/gone-plugin/not-installed (user "via-plugin" of kubeconfig DIR/gone-plugin/config.yaml) was not found`,
    ],
    [
      "an exec plugin that exits non-zero",
      () => pluginKubeconfig("failing-plugin", { VKC_TEST_PLUGIN_FAIL: "1" }).path,
      `error: exec credential plugin DIR/failing-plugin/vkc-test-plugin (user "via-plugin" of kubeconfig DIR/failing-plugin/config.yaml) exited with status 1: credentials expired: run login first`,
    ],
  ])("%s: one line, exit 2", async (_what, kubeconfigValue, line) => {
    const run = script("conformance.ts", ["--target", "existing", "--reports", join(dir, "bad")], {
      ...vaultEnv,
      KUBECONFIG: kubeconfigValue(),
    });
    expect(await run.exited, run.output()).toBe(2);
    expect(run.output()).toContain(line.replaceAll("DIR", dir));
    expect(
      run
        .output()
        .trim()
        .split("\n")
        .filter((l) => l.startsWith("error:")),
    ).toHaveLength(1);
    expect(run.output()).not.toMatch(/\n\s+at /);
    expect(run.output()).not.toContain(saToken);
  });

  it("a dry run with a failing exec plugin is the same one line and exit 2", async () => {
    const { path, marker } = pluginKubeconfig("failing-dry", { VKC_TEST_PLUGIN_FAIL: "4" });
    const run = script("conformance.ts", ["--target", "existing", "--dry-run", "--reports", join(dir, "bad-dry")], {
      ...vaultEnv,
      KUBECONFIG: path,
    });
    expect(await run.exited, run.output()).toBe(2);
    expect(run.output()).toContain(`error: exec credential plugin ${join(dir, "failing-dry", "vkc-test-plugin")} (user "via-plugin"`);
    expect(run.output()).toContain("exited with status 4");
    expect(existsSync(marker)).toBe(true); // it was run
  });
});
