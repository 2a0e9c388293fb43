import { randomBytes } from "node:crypto";
import { dirname } from "node:path";
import { decodeJwt } from "jose";
import { describe, expect, inject, test } from "vitest";
import { AuthenticationV1Api, type KubernetesObject, type V1Deployment, type V1Pod } from "@kubernetes/client-node";
import { suiteTest } from "../lib/vitest/fixtures.ts";
import { expectRefused } from "../lib/vitest/assert.ts";
import { inClusterSkipReason, loadPodImage, podImage } from "../lib/vitest/pods.ts";
import { login, writeAuthConfig, writeRole, type LoginData } from "../lib/auth-setup/steps.ts";
import { expectationsFor } from "../lib/fixtures/expectations.ts";
import { DEFAULT_TOKEN_PATH } from "../lib/kube/client.ts";
import { inClusterVaultManifests } from "../lib/providers/kind-plan.ts";
import { describeResponse, type VaultResponse } from "../lib/vault/client.ts";
import { vaultBinary } from "../lib/config.ts";
import { registerSecret } from "../lib/redact.ts";
import { waitFor } from "../lib/wait.ts";
import type { SuiteContext } from "../lib/vitest/suite.ts";

// Vault inside the cluster, as the Helm chart runs it: its own ServiceAccount bound to
// system:auth-delegator, and a config with only kubernetes_host, so that Vault reads its own pod's
// CA and token (disable_local_ca_jwt=false): the plugin's main integration case.
const skip = inClusterSkipReason(inject("target"));

/** The whole config: no CA, no reviewer JWT. */
const IN_CLUSTER_CONFIG = { kubernetes_host: "https://kubernetes.default.svc", disable_local_ca_jwt: false };

async function appPod(ctx: SuiteContext, ns: string): Promise<{ name: string; uid: string }> {
  const name = ctx.name("app");
  const pod = await ctx.kube.runPod(ns, name, { serviceAccount: "app", image: podImage(ctx.info), command: ["sleep", "3600"] });
  await ctx.kube.waitPodRunning(ns, name);
  return pod;
}

const it = suiteTest("in-cluster").extend("app", { scope: "file" }, async ({ ctx }) => {
  const ns = await ctx.namespace("app");
  const uid = await ctx.kube.createServiceAccount(ns, "app");
  await loadPodImage(ctx.info); // a no-op: the provider loaded the same image for its Vault
  const pod = await appPod(ctx, ns);
  const jwt = await ctx.kube.readPodFile(ns, pod.name, DEFAULT_TOKEN_PATH, { secret: true });
  return { ns, uid, pod, jwt };
});

function expectLogin(res: VaultResponse<LoginData>, want: { ns: string; uid: string }) {
  expect(res.status, describeResponse(res)).toBe(200);
  const auth = res.body.auth!;
  expect(auth.client_token.length).toBeGreaterThan(20);
  expect(auth.metadata).toEqual({
    role: "app",
    service_account_name: "app",
    service_account_namespace: want.ns,
    service_account_uid: want.uid,
    service_account_secret_name: "",
  });
  expect([...auth.policies].sort()).toEqual(["default"]);
}

/** The API server's minimum expirationSeconds for a projected token. */
const SHORT_TOKEN_S = 600;
/** How long the plugin uses its in-memory copy of the pod's token before reading the file again (jwtReloadPeriod, both flavors). */
const TOKEN_RELOAD_S = 60;

/**
 * The Deployment with a short-lived token where the automounted one would be: the same three files
 * (token, ca.crt, namespace) from a projected volume, the token with `seconds` of lifetime. The
 * automounted token cannot show a rotation: the API server extends its 1 h to a year.
 */
function withShortLivedToken(o: KubernetesObject, seconds: number): KubernetesObject {
  if (o.kind !== "Deployment") return o;
  const d = structuredClone(o) as V1Deployment;
  const pod = d.spec!.template.spec!;
  pod.automountServiceAccountToken = false;
  pod.volumes = [
    ...(pod.volumes ?? []),
    {
      name: "sa-token",
      projected: {
        defaultMode: 0o644,
        sources: [
          { serviceAccountToken: { path: "token", expirationSeconds: seconds } },
          { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
          { downwardAPI: { items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }] } },
        ],
      },
    },
  ];
  for (const c of pod.containers)
    c.volumeMounts = [...(c.volumeMounts ?? []), { name: "sa-token", mountPath: dirname(DEFAULT_TOKEN_PATH), readOnly: true }];
  return d as KubernetesObject;
}

/** A second dev Vault of the suite's own (the run's shared one must not restart under other suites). */
async function ownVault(ctx: SuiteContext, opts: { tokenSeconds?: number } = {}) {
  const ns = await ctx.namespace("vault");
  const token = registerSecret(randomBytes(12).toString("hex"));
  const objects = inClusterVaultManifests({
    namespace: ns,
    image: podImage(ctx.info),
    flavor: ctx.info.flavor,
    token,
    runId: ctx.info.runId,
  })
    .filter(
      (o) => o.kind !== "Namespace" && o.kind !== "Service", // the namespace exists; reached by pod IP, no NodePort
    )
    .map((o) => (opts.tokenSeconds ? withShortLivedToken(o, opts.tokenSeconds) : o));
  for (const o of objects) {
    await ctx.kube.create(o);
    if (o.kind === "ClusterRoleBinding")
      ctx.teardown.defer(`delete ClusterRoleBinding ${o.metadata!.name}`, () => ctx.kube.deleteObject(o as KubernetesObject));
  }
  return { ns, token };
}

async function runningVaultPod(ctx: SuiteContext, ns: string, not?: string): Promise<V1Pod> {
  return waitFor(
    async () => {
      const pods = await ctx.kube.core.listNamespacedPod({ namespace: ns, labelSelector: "app=vkc-vault" });
      return pods.items.find(
        (p) =>
          p.metadata?.uid !== not &&
          !p.metadata?.deletionTimestamp &&
          p.status?.phase === "Running" &&
          p.status.containerStatuses?.every((c) => c.ready) &&
          p.status.podIP,
      );
    },
    { what: `a ready Vault pod in ${ns}`, timeoutMs: 120_000, intervalMs: 500 },
  );
}

/** The CLI inside the suite's Vault pod, as root (dev token). */
async function cli(ctx: SuiteContext, vaultNs: string, pod: string, token: string, args: string[]) {
  const bin = vaultBinary(ctx.info.flavor);
  const env = ["env", "VAULT_ADDR=http://127.0.0.1:8200", "BAO_ADDR=http://127.0.0.1:8200", `VAULT_TOKEN=${token}`, `BAO_TOKEN=${token}`];
  const r = await ctx.kube.execInPod(vaultNs, pod, [...env, bin, ...args], { container: "vault" });
  expect(r.exitCode, `${bin} ${args[0]} ${args[1] ?? ""}: exit ${r.exitCode}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/** sha256 of Vault's own token file, computed in its container (the token stays there). */
async function tokenDigest(ctx: SuiteContext, vaultNs: string, pod: string): Promise<string> {
  const r = await ctx.kube.execInPod(vaultNs, pod, ["sha256sum", DEFAULT_TOKEN_PATH], { container: "vault" });
  expect(r.exitCode, `sha256sum ${DEFAULT_TOKEN_PATH} in the Vault pod: exit ${r.exitCode}: ${r.stderr}`).toBe(0);
  const digest = r.stdout.trim().split(/\s+/)[0]!;
  expect(digest).toMatch(/^[0-9a-f]{64}$/);
  return digest;
}

const sleepUntil = (epochMs: number) => new Promise((r) => setTimeout(r, Math.max(0, epochMs - Date.now())));

/** enable, config with only kubernetes_host, role: what a user re-applies to a dev Vault after a restart. */
async function configure(ctx: SuiteContext, vaultNs: string, pod: string, token: string, appNs: string) {
  await cli(ctx, vaultNs, pod, token, ["auth", "enable", "kubernetes"]);
  await cli(ctx, vaultNs, pod, token, ["write", "auth/kubernetes/config", `kubernetes_host=${IN_CLUSTER_CONFIG.kubernetes_host}`]);
  await cli(ctx, vaultNs, pod, token, [
    "write",
    "auth/kubernetes/role/app",
    "bound_service_account_names=app",
    `bound_service_account_namespaces=${appNs}`,
  ]);
}

/** The app pod logs in with its own token file, through the Vault pod's IP. */
async function podLogin(ctx: SuiteContext, appNs: string, appPod: string, vaultIp: string): Promise<LoginData> {
  const bin = vaultBinary(ctx.info.flavor);
  const addr = `http://${vaultIp}:8200`;
  const r = await ctx.kube.execInPod(appNs, appPod, [
    "env",
    `VAULT_ADDR=${addr}`,
    `BAO_ADDR=${addr}`,
    bin,
    "write",
    "-format=json",
    "auth/kubernetes/login",
    "role=app",
    `jwt=@${DEFAULT_TOKEN_PATH}`,
  ]);
  expect(r.exitCode, `${bin} write auth/kubernetes/login from the app pod: exit ${r.exitCode}: ${r.stderr}`).toBe(0);
  const out = JSON.parse(r.stdout) as LoginData;
  registerSecret(out.auth!.client_token);
  return out;
}

if (skip) {
  test(`Vault in the cluster: ${skip}`, (t) => t.skip(skip)); // a declared skip: the reason reaches results.json and summary.md
}

describe.runIf(!skip)("Vault in the cluster (config: only kubernetes_host; Vault's own pod CA and token)", { timeout: 240_000 }, () => {
  it("with only kubernetes_host=https://kubernetes.default.svc, a pod's kubelet-projected token logs in (200)", async ({
    ctx,
    app: { ns, uid, jwt },
  }) => {
    const mount = await ctx.mount();
    await writeAuthConfig(ctx.vault, mount, IN_CLUSTER_CONFIG);
    const cfg = await ctx.vault.must("GET", `auth/${mount}/config`);
    expect(cfg.body.data).toMatchObject({
      kubernetes_host: IN_CLUSTER_CONFIG.kubernetes_host,
      kubernetes_ca_cert: "",
      disable_local_ca_jwt: false,
    });
    expect(cfg.body.data.token_reviewer_jwt_set).toBe(false);
    await writeRole(ctx.vault, mount, "app", { bound_service_account_names: ["app"], bound_service_account_namespaces: [ns] });
    expectLogin(await login(ctx.vault, mount, "app", jwt), { ns, uid });
  });

  it("a token of a ServiceAccount the role does not bind is refused with that config (403)", async ({ ctx, app: { ns } }) => {
    const mount = await ctx.mount();
    await writeAuthConfig(ctx.vault, mount, IN_CLUSTER_CONFIG);
    await writeRole(ctx.vault, mount, "app", { bound_service_account_names: ["app"], bound_service_account_namespaces: [ns] });
    await ctx.kube.createServiceAccount(ns, "intruder");
    expectRefused(
      await login(ctx.vault, mount, "app", await ctx.kube.requestToken(ns, "intruder")),
      403,
      "service account name not authorized",
    );
  });

  it("after the Vault pod restarts (Deployment recreates it; dev mode: config re-applied), the app pod logs in again", async ({
    ctx,
    app: { ns, uid, pod },
  }) => {
    const { ns: vaultNs, token } = await ownVault(ctx);
    const first = await runningVaultPod(ctx, vaultNs);
    // Vault's own projected token: bound to its pod, read by the plugin for every review.
    const own = decodeJwt(
      await ctx.kube.readPodFile(vaultNs, first.metadata!.name!, DEFAULT_TOKEN_PATH, { secret: true, container: "vault" }),
    );
    expect(own.sub).toBe(`system:serviceaccount:${vaultNs}:vault`);
    await configure(ctx, vaultNs, first.metadata!.name!, token, ns);
    expectLogin({ status: 200, body: await podLogin(ctx, ns, pod.name, first.status!.podIP!) } as VaultResponse<LoginData>, { ns, uid });

    await ctx.kube.core.deleteNamespacedPod({ namespace: vaultNs, name: first.metadata!.name! });
    const second = await runningVaultPod(ctx, vaultNs, first.metadata!.uid);
    expect(second.metadata!.uid).not.toBe(first.metadata!.uid);
    await configure(ctx, vaultNs, second.metadata!.name!, token, ns);
    expectLogin({ status: 200, body: await podLogin(ctx, ns, pod.name, second.status!.podIP!) } as VaultResponse<LoginData>, { ns, uid });
  });

  // HashiCorp vs OpenBao: ca-config pins the config write outside a pod; here the pod's ca.crt and
  // token are at hand and disable_local_ca_jwt=true must still ignore them.
  it("disable_local_ca_jwt=true in a pod, no CA, no reviewer JWT: HashiCorp stores it and the login fails TLS with the system roots (403), OpenBao refuses the config (400)", async ({
    ctx,
    app: { ns, jwt },
  }) => {
    const exp = expectationsFor(ctx.info.flavor, ctx.info.vault.version);
    const mount = await ctx.mount();
    const res = await ctx.vault.write(`auth/${mount}/config`, {
      kubernetes_host: IN_CLUSTER_CONFIG.kubernetes_host,
      disable_local_ca_jwt: true,
    });
    if (exp.caRequiredWithoutLocalCaJwt) return expectRefused(res, 400, exp.caRequiredWithoutLocalCaJwt);
    expect(res.status, describeResponse(res)).toBe(204);
    expect((await ctx.vault.must("GET", `auth/${mount}/config`)).body.data).toMatchObject({
      kubernetes_ca_cert: "",
      disable_local_ca_jwt: true,
    });
    await writeRole(ctx.vault, mount, "app", { bound_service_account_names: ["app"], bound_service_account_namespaces: [ns] });
    expectRefused(await login(ctx.vault, mount, "app", jwt), 403, "permission denied");
  });

  // The plugin keeps its pod's token in memory for a minute, then reads the file again
  // (jwtReloadPeriod in vault-plugin-auth-kubernetes backend.go and OpenBao's port), so a token the
  // kubelet rotated is picked up. The old token is dead at the API server when the last login runs:
  // a Vault that kept it could not review that login.
  it.runIf(inject("slow"))(
    "Vault's own projected token (600 s) rotates: after the old one expired, the app pod still logs in (slow: ~12 min; VKC_SLOW=1)",
    { timeout: 16 * 60_000 },
    async ({ ctx, app: { ns, uid, pod } }) => {
      const { ns: vaultNs, token } = await ownVault(ctx, { tokenSeconds: SHORT_TOKEN_S });
      const vault = await runningVaultPod(ctx, vaultNs);
      const vaultPod = vault.metadata!.name!;
      const readOwn = () => ctx.kube.readPodFile(vaultNs, vaultPod, DEFAULT_TOKEN_PATH, { secret: true, container: "vault" });
      const old = await readOwn();
      const was = decodeJwt(old);
      expect(was.sub).toBe(`system:serviceaccount:${vaultNs}:vault`);
      expect(Number(was.exp) - Number(was.iat), "Vault's pod has the short-lived token, not the automounted one").toBe(SHORT_TOKEN_S);
      const oldDigest = await tokenDigest(ctx, vaultNs, vaultPod);
      await configure(ctx, vaultNs, vaultPod, token, ns);
      // This login's TokenReview is made with the old token, which the plugin now holds in memory.
      expectLogin({ status: 200, body: await podLogin(ctx, ns, pod.name, vault.status!.podIP!) } as VaultResponse<LoginData>, { ns, uid });

      // The kubelet rewrites the file at ~80% of the lifetime; wait past the old token's expiry, the
      // API server's 60 s leeway on exp and the plugin's reload period.
      await sleepUntil((Number(was.exp) + TOKEN_RELOAD_S + 15) * 1000);
      const review = await ctx.kube.kc.makeApiClient(AuthenticationV1Api).createTokenReview({ body: { spec: { token: old } } });
      expect(review.status?.authenticated ?? false, "the API server refuses Vault's old token").toBe(false);
      expect(review.status?.error).toContain("service account token has expired");
      expect(await tokenDigest(ctx, vaultNs, vaultPod), "the kubelet rewrote Vault's token file").not.toBe(oldDigest);
      const now = decodeJwt(await readOwn());
      expect(Number(now.iat)).toBeGreaterThan(Number(was.iat));
      expect(Number(now.exp) * 1000).toBeGreaterThan(Date.now());
      expectLogin({ status: 200, body: await podLogin(ctx, ns, pod.name, vault.status!.podIP!) } as VaultResponse<LoginData>, { ns, uid });
    },
  );
});
