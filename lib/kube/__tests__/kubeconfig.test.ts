import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../config.ts";
import { UsageError } from "../../errors.ts";
import { redact } from "../../redact.ts";
import { checkExecPlugin, inClusterKubeconfig, loadKubeconfig, mergeKubeconfigFiles, type RawKubeconfig } from "../kubeconfig.ts";
import { writeExecPlugin } from "./exec-plugin.ts";

// kubectl's (client-go clientcmd) rules for KUBECONFIG lists, relative paths and exec plugins,
// and the pod's ServiceAccount when there is no kubeconfig.

const b64 = (s: string) => Buffer.from(s).toString("base64");

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "vkc-kubeconfig-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function file(rel: string, text: string): string {
  const p = join(dir, rel);
  mkdirSync(join(p, ".."), { recursive: true });
  writeFileSync(p, text, { mode: 0o600 });
  return p;
}

const noPod = { saDir: "/nonexistent/sa" };

/** The error a call throws (fails the test if it throws none). */
function thrown(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return err as UsageError;
  }
  throw new Error("expected a UsageError");
}

describe("KUBECONFIG lists are merged as kubectl merges them", () => {
  it("the first file that defines a cluster, user or context name wins; the first current-context set wins", () => {
    const a = file(
      "a.yaml",
      `clusters:
- name: shared
  cluster: { server: https://from-a:6443, insecure-skip-tls-verify: true }
users:
- name: admin
  user: { token: token-from-a }
contexts:
- name: main
  context: { cluster: shared, user: admin, namespace: from-a }
`,
    );
    const b = file(
      "b.yaml",
      `current-context: other
clusters:
- name: shared
  cluster: { server: https://from-b:6443 }
- name: only-b
  cluster: { server: https://only-b:6443, insecure-skip-tls-verify: true }
users:
- name: admin
  user: { token: token-from-b }
contexts:
- name: main
  context: { cluster: only-b, user: admin }
- name: other
  context: { cluster: only-b, user: admin }
`,
    );
    const c = file("c.yaml", `current-context: main\n`);
    const merged = mergeKubeconfigFiles([a, b, c]);
    expect(merged.currentContext).toBe("other"); // a sets none, b's wins over c's
    expect(merged.clusters.get("shared")).toMatchObject({ file: a, value: { server: "https://from-a:6443" } });
    expect(merged.clusters.get("only-b")?.file).toBe(b);
    expect(merged.users.get("admin")?.value.token).toBe("token-from-a");
    expect(merged.contexts.get("main")).toMatchObject({ file: a, value: { cluster: "shared", namespace: "from-a" } });

    const loaded = loadKubeconfig({ files: [a, b, c], inCluster: noPod, home: dir });
    expect(loaded.context).toBe("other");
    expect(loaded.kc.getCurrentCluster()?.server).toBe("https://only-b:6443");
    expect(loaded.kc.getCurrentUser()?.token).toBe("token-from-a");
    expect(loaded.source).toBe([a, b, c].join(delimiter));
    // Only the chosen context, its cluster and its user are handed on.
    const flat = JSON.parse(loaded.text) as RawKubeconfig;
    expect(flat.contexts.map((x) => x.name)).toEqual(["other"]);
    expect(flat.clusters.map((x) => x.name)).toEqual(["only-b"]);
    expect(flat["current-context"]).toBe("other");
    // The static token is a secret from now on.
    expect(redact("Bearer token-from-a")).not.toContain("token-from-a");
  });

  it("a split kubeconfig (cluster in one file, user and context in another) is one config", () => {
    const ca = file("pki/ca.crt", "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n");
    const cluster = file(
      "cluster.yaml",
      `clusters:\n- name: c\n  cluster: { server: https://k:6443, certificate-authority: pki/ca.crt }\n`,
    );
    const user = file(
      "user.yaml",
      `current-context: ctx\nusers:\n- name: u\n  user: { token: t0k3n-value }\ncontexts:\n- name: ctx\n  context: { cluster: c, user: u }\n`,
    );
    const loaded = loadKubeconfig({ files: [cluster, user], inCluster: noPod, home: dir });
    expect(loaded.kc.getCurrentCluster()).toMatchObject({ server: "https://k:6443", caData: b64(readFileSync(ca, "utf8")) });
    expect(loaded.kc.getCurrentCluster()?.caFile).toBeFalsy();
  });

  it("files that do not exist are skipped; when none exists it is one line", () => {
    const b = file(
      "b.yaml",
      `current-context: x\nclusters: [{ name: c, cluster: { server: "https://k" } }]\ncontexts: [{ name: x, context: { cluster: c } }]\n`,
    );
    const missing = join(dir, "missing.yaml");
    expect(loadKubeconfig({ files: [missing, b], inCluster: noPod, home: dir }).source).toBe(b);
    const none = thrown(() => loadKubeconfig({ files: [missing, join(dir, "gone.yaml")], inCluster: noPod, home: dir }));
    expect(none.message).toBe(`KUBECONFIG: none of its files exists (${missing}${delimiter}${join(dir, "gone.yaml")})`);
    expect(none.exitCode).toBe(2);
    expect(thrown(() => loadKubeconfig({ files: [missing], inCluster: noPod, home: dir })).message).toBe(
      `kubeconfig ${missing} does not exist`,
    );
  });

  it("the current context: --context picks another, an unknown or absent one is one line", () => {
    const f = file(
      "k.yaml",
      `clusters: [{ name: c, cluster: { server: "https://k" } }]\ncontexts: [{ name: x, context: { cluster: c } }, { name: y, context: { cluster: c } }]\n`,
    );
    expect(thrown(() => loadKubeconfig({ files: [f], inCluster: noPod, home: dir })).message).toBe(
      `kubeconfig ${f} has no current context: pass --context NAME`,
    );
    expect(loadKubeconfig({ files: [f], context: "y", inCluster: noPod, home: dir }).kc.getCurrentContext()).toBe("y");
    expect(thrown(() => loadKubeconfig({ files: [f], context: "z", inCluster: noPod, home: dir })).message).toBe(
      `kubeconfig ${f} has no context "z" (has: x, y)`,
    );
  });

  it("a context naming a cluster or user no file defines is one line naming it", () => {
    const f = file("k.yaml", `current-context: x\ncontexts: [{ name: x, context: { cluster: nowhere, user: nobody } }]\n`);
    expect(thrown(() => loadKubeconfig({ files: [f], inCluster: noPod, home: dir })).message).toBe(
      `kubeconfig ${f}: context "x" names cluster "nowhere", which no kubeconfig file defines`,
    );
    const g = file("g.yaml", `clusters: [{ name: nowhere, cluster: { server: "https://k" } }]\n`);
    expect(thrown(() => loadKubeconfig({ files: [f, g], inCluster: noPod, home: dir })).message).toBe(
      `kubeconfig ${f}: context "x" names user "nobody", which no kubeconfig file defines`,
    );
  });
});

describe("paths inside a kubeconfig are relative to the file that holds them", () => {
  it("certificate files are inlined, token-file and an exec command with a slash made absolute, a bare command left to PATH", () => {
    file("certs/ca.crt", "CA-PEM");
    file("certs/client.crt", "CLIENT-PEM");
    file("certs/client.key", "KEY-PEM");
    file("certs/token", "file-token-value\n");
    const f = file(
      "sub/dir/k.yaml",
      `current-context: cert
clusters:
- name: c
  cluster: { server: "https://k", certificate-authority: ../../certs/ca.crt }
users:
- name: cert
  user: { client-certificate: ../../certs/client.crt, client-key: ../../certs/client.key }
- name: tokenfile
  user: { token-file: ../../certs/token }
- name: plugin
  user:
    exec: { apiVersion: client.authentication.k8s.io/v1, command: ./bin/plugin, args: [a], env: [{ name: X, value: "1" }], interactiveMode: Never }
- name: bare
  user:
    exec: { apiVersion: client.authentication.k8s.io/v1beta1, command: aws, args: [eks, get-token] }
contexts:
- { name: cert, context: { cluster: c, user: cert } }
- { name: tokenfile, context: { cluster: c, user: tokenfile } }
- { name: plugin, context: { cluster: c, user: plugin } }
- { name: bare, context: { cluster: c, user: bare } }
`,
    );
    // Loaded from elsewhere: nothing may resolve against the working directory.
    const load = (context: string) => loadKubeconfig({ files: [f], context, inCluster: noPod, home: dir });
    const cert = JSON.parse(load("cert").text) as RawKubeconfig;
    expect(cert.clusters[0]!.cluster).toEqual({ server: "https://k", "certificate-authority-data": b64("CA-PEM") });
    expect(cert.users[0]!.user).toEqual({ "client-certificate-data": b64("CLIENT-PEM"), "client-key-data": b64("KEY-PEM") });
    const tf = load("tokenfile");
    expect((JSON.parse(tf.text) as RawKubeconfig).users[0]!.user).toEqual({ "token-file": join(dir, "certs/token") });
    expect(tf.kc.getCurrentUser()?.token).toBe("file-token-value\n");
    // The exec stanza is kept whole, its command absolute.
    expect((JSON.parse(load("plugin").text) as RawKubeconfig).users[0]!.user.exec).toEqual({
      apiVersion: "client.authentication.k8s.io/v1",
      command: join(dir, "sub/dir/bin/plugin"),
      args: ["a"],
      env: [{ name: "X", value: "1" }],
      interactiveMode: "Never",
    });
    expect(load("plugin").kc.getCurrentUser()?.exec.command).toBe(join(dir, "sub/dir/bin/plugin"));
    expect((JSON.parse(load("bare").text) as RawKubeconfig).users[0]!.user.exec?.command).toBe("aws");
  });

  it("a certificate file that cannot be read is one line naming the file and the entry", () => {
    const f = file(
      "k.yaml",
      `current-context: x\nclusters: [{ name: c, cluster: { server: "https://k", certificate-authority: ca.crt } }]\ncontexts: [{ name: x, context: { cluster: c } }]\n`,
    );
    expect(thrown(() => loadKubeconfig({ files: [f], inCluster: noPod, home: dir })).message).toBe(
      `kubeconfig ${f}: cluster "c": cannot read certificate-authority ${join(dir, "ca.crt")}: ENOENT`,
    );
  });
});

describe("malformed kubeconfigs are one line, without the file's contents", () => {
  it.each([
    ["not YAML", `users:\n- name: u\n  user: { token: secret-token-123456 \n bad: [`, "is not valid YAML: "],
    ["a list", `- a\n- b\n`, "is malformed: not a mapping"],
    ["clusters not a list", `clusters: { name: c }\n`, "is malformed: clusters is not a list"],
    ["an entry without a name", `users:\n- user: { token: secret-token-123456 }\n`, "is malformed: users[0] has no name"],
  ])("%s", (_what, text, expected) => {
    const f = file("bad.yaml", text);
    const err = thrown(() => loadKubeconfig({ files: [f], inCluster: noPod, home: dir }));
    expect(err.message).toContain(`kubeconfig ${f} ${expected}`);
    expect(err.message).not.toContain("\n");
    expect(err.message).not.toContain("secret-token-123456");
    expect(err.exitCode).toBe(2);
  });

  it("an exec stanza with an apiVersion kubectl no longer runs, or without a command", () => {
    const f = file(
      "k.yaml",
      `current-context: old\nclusters: [{ name: c, cluster: { server: "https://k" } }]
users:
- { name: old, user: { exec: { apiVersion: client.authentication.k8s.io/v1alpha1, command: x } } }
- { name: nocmd, user: { exec: { apiVersion: client.authentication.k8s.io/v1 } } }
contexts: [{ name: old, context: { cluster: c, user: old } }, { name: nocmd, context: { cluster: c, user: nocmd } }]\n`,
    );
    expect(thrown(() => loadKubeconfig({ files: [f], inCluster: noPod, home: dir })).message).toBe(
      `kubeconfig ${f}: user "old": exec apiVersion "client.authentication.k8s.io/v1alpha1" is not supported (use client.authentication.k8s.io/v1 or client.authentication.k8s.io/v1beta1)`,
    );
    expect(thrown(() => loadKubeconfig({ files: [f], context: "nocmd", inCluster: noPod, home: dir })).message).toBe(
      `kubeconfig ${f}: user "nocmd": exec has no command`,
    );
  });
});

describe("where the kubeconfig comes from: KUBECONFIG, then the pod's ServiceAccount, then ~/.kube/config", () => {
  let saDir: string;
  let home: string;
  let explicit: string;
  beforeEach(() => {
    saDir = join(dir, "sa");
    file("sa/token", "sa-token-value");
    file("sa/ca.crt", "SA-CA");
    file("sa/namespace", "jobs");
    home = join(dir, "home");
    file(
      "home/.kube/config",
      `current-context: home\nclusters: [{ name: c, cluster: { server: "https://home:6443" } }]\ncontexts: [{ name: home, context: { cluster: c } }]\n`,
    );
    explicit = file(
      "explicit.yaml",
      `current-context: e\nclusters: [{ name: c, cluster: { server: "https://explicit:6443" } }]\ncontexts: [{ name: e, context: { cluster: c } }]\n`,
    );
  });
  const pod = () => ({ host: "10.96.0.1", port: "443", saDir });

  it("KUBECONFIG wins over the pod", () => {
    expect(loadKubeconfig({ files: [explicit], inCluster: pod(), home }).kc.getCurrentCluster()?.server).toBe("https://explicit:6443");
  });

  it("in a pod without KUBECONFIG: its ServiceAccount, even with a ~/.kube/config", () => {
    const loaded = loadKubeconfig({ inCluster: pod(), home });
    expect(loaded.context).toBe("in-cluster");
    expect(loaded.source).toBe(`in-cluster (ServiceAccount in ${saDir})`);
    expect(loaded.kc.getCurrentCluster()).toMatchObject({ server: "https://10.96.0.1:443", caData: b64("SA-CA") });
    expect(loaded.kc.getCurrentUser()?.token).toBe("sa-token-value");
    const flat = JSON.parse(loaded.text) as RawKubeconfig;
    expect(flat.users[0]!.user).toEqual({ "token-file": join(saDir, "token") }); // re-read, the kubelet rotates it
    expect(flat.contexts[0]!.context.namespace).toBe("jobs");
  });

  it("not in a pod (no KUBERNETES_SERVICE_HOST, or no token): ~/.kube/config", () => {
    expect(loadKubeconfig({ inCluster: { saDir }, home }).kc.getCurrentCluster()?.server).toBe("https://home:6443");
    expect(loadKubeconfig({ inCluster: { ...pod(), saDir: join(dir, "nosa") }, home }).kc.getCurrentCluster()?.server).toBe(
      "https://home:6443",
    );
  });

  it("nothing at all: one line saying where it looked", () => {
    expect(thrown(() => loadKubeconfig({ inCluster: { ...pod(), saDir: join(dir, "nosa") }, home: join(dir, "nohome") })).message).toBe(
      `no kubeconfig: set KUBECONFIG (or --kubeconfig), create ${join(dir, "nohome", ".kube", "config")}, or run in a pod (KUBERNETES_SERVICE_HOST is set, but ${join(dir, "nosa", "token")} does not exist)`,
    );
  });

  it("an IPv6 service host is bracketed", () => {
    expect(inClusterKubeconfig({ host: "fd00::1", port: "443", saDir })?.clusters[0]!.cluster.server).toBe("https://[fd00::1]:443");
  });

  it("config reads KUBECONFIG as a list, and the pod's variables, from the environment it is given", () => {
    const c = loadConfig(
      {
        HOME: "/h",
        KUBECONFIG: `a.yaml${delimiter}${delimiter}/abs/b.yaml`,
        KUBERNETES_SERVICE_HOST: "10.0.0.1",
        KUBERNETES_SERVICE_PORT: "443",
        VKC_SA_DIR: "sa",
      },
      "/w",
    );
    expect(c.existing.kubeconfig).toEqual(["/w/a.yaml", "/abs/b.yaml"]);
    expect(c.existing.inCluster).toEqual({ host: "10.0.0.1", port: "443", saDir: "/w/sa" });
    expect(loadConfig({ HOME: "/h" }, "/w").existing).toMatchObject({
      inCluster: { saDir: "/var/run/secrets/kubernetes.io/serviceaccount" },
    });
    expect(loadConfig({ HOME: "/h" }, "/w").existing.kubeconfig).toBeUndefined();
  });
});

describe("exec credential plugins", () => {
  function pluginConfig(command: string, extra: Record<string, unknown> = {}): string {
    return file(
      "plugin.yaml",
      JSON.stringify({
        "current-context": "p",
        clusters: [{ name: "c", cluster: { server: "https://k" } }],
        users: [
          {
            name: "p",
            user: {
              exec: {
                apiVersion: "client.authentication.k8s.io/v1",
                command,
                args: ["client.authentication.k8s.io/v1"],
                env: [
                  { name: "VKC_TEST_PLUGIN_TOKEN_FILE", value: join(dir, "plugin-token") },
                  { name: "VKC_TEST_PLUGIN_MARKER", value: join(dir, "marker") },
                ],
                ...extra,
              },
            },
          },
        ],
        contexts: [{ name: "p", context: { cluster: "c", user: "p" } }],
      }),
    );
  }
  const marker = () =>
    readFileSync(join(dir, "marker"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { info: string });

  it("a working plugin is run once with KUBERNETES_EXEC_INFO, and its token becomes a secret", async () => {
    writeExecPlugin(join(dir));
    file("plugin-token", "plugin-issued-token-0123456789");
    const loaded = loadKubeconfig({ files: [pluginConfig("./vkc-test-plugin")], inCluster: noPod, home: dir });
    await checkExecPlugin(loaded, { PATH: process.env.PATH });
    expect(marker()).toHaveLength(1);
    expect(JSON.parse(marker()[0]!.info)).toEqual({
      apiVersion: "client.authentication.k8s.io/v1",
      kind: "ExecCredential",
      spec: { interactive: false },
    });
    expect(redact("x plugin-issued-token-0123456789 y")).toBe("x [REDACTED] y");
    // client-node runs the same plugin for requests, from the flattened config.
    const opts: { headers: Record<string, string> } = { headers: {} };
    await loaded.kc.applyToHTTPSOptions(opts);
    expect(opts.headers.Authorization).toBe("Bearer plugin-issued-token-0123456789");
    expect(marker()).toHaveLength(2);
  });

  it.each([
    [
      "is not found (its install hint shown)",
      () => pluginConfig("./no-such-plugin", { installHint: "install it with: brew install x\nmore" }),
      {},
      "was not found: install it with: brew install x",
    ],
    [
      "is not executable",
      () => (file("noexec", "#!/bin/sh\n"), chmodSync(join(dir, "noexec"), 0o600), pluginConfig("./noexec")),
      {},
      "is not executable",
    ],
    [
      "exits non-zero",
      () => (writeExecPlugin(dir), pluginConfig("./vkc-test-plugin")),
      { VKC_TEST_PLUGIN_FAIL: "3" },
      "exited with status 3: credentials expired: run login first",
    ],
    [
      "prints no JSON",
      () => (file("echo", "#!/bin/sh\necho hello\n"), chmodSync(join(dir, "echo"), 0o700), pluginConfig("./echo")),
      {},
      "printed no ExecCredential JSON",
    ],
  ])("a plugin that %s is one line naming it", async (_what, setup, env, expected) => {
    const f = setup();
    const loaded = loadKubeconfig({ files: [f], inCluster: noPod, home: dir });
    const err = await checkExecPlugin(loaded, { PATH: process.env.PATH, ...env }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UsageError);
    const message = (err as UsageError).message;
    expect(message).toMatch(new RegExp(`^exec credential plugin ${dir}/\\S+ \\(user "p" of kubeconfig ${f}\\) `));
    expect(message).toContain(expected);
    expect(message).not.toContain("\n");
  });

  it("a plugin printing another apiVersion than the stanza asks for is refused", async () => {
    writeExecPlugin(dir);
    file("plugin-token", "plugin-issued-token-0123456789");
    const f = pluginConfig("./vkc-test-plugin", { args: ["client.authentication.k8s.io/v1beta1"] });
    const loaded = loadKubeconfig({ files: [f], inCluster: noPod, home: dir });
    await expect(checkExecPlugin(loaded, { PATH: process.env.PATH })).rejects.toThrow(
      "printed client.authentication.k8s.io/v1beta1 ExecCredential, not client.authentication.k8s.io/v1 ExecCredential",
    );
  });
});
