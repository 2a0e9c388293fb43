import { decodeJwt } from "jose";
import { describe, expect, inject, test } from "vitest";
import { suiteTest } from "../lib/vitest/fixtures.ts";
import { expectRefused, refusedWithFreshToken } from "../lib/vitest/assert.ts";
import { loadPodImage, podImage, podsSkipReason, vaultAddressForPods } from "../lib/vitest/pods.ts";
import { login, writeRole, type LoginData } from "../lib/auth-setup/steps.ts";
import { DEFAULT_TOKEN_PATH, PROJECTED_TOKEN_DIR } from "../lib/kube/client.ts";
import { describeResponse, type VaultResponse } from "../lib/vault/client.ts";
import { vaultBinary } from "../lib/config.ts";
import { registerSecret } from "../lib/redact.ts";
import type { SuiteContext } from "../lib/vitest/suite.ts";
import { waitFor } from "../lib/wait.ts";

// Apps in pods: a kubelet runs the pod and projects its ServiceAccount tokens into files, the way
// every real workload gets the JWT it logs in with (kind target only: the local target has no kubelet).
const skip = podsSkipReason(inject("target"));

/** The custom-audience token file of runPod's projected volume. */
const VAULT_TOKEN = `${PROJECTED_TOKEN_DIR}/vault-token`;
const LIFETIME_S = 600;

/** A pod in `ns` running the run's Vault image (it has a shell and the CLI) with `sleep`, plus its projected tokens. */
async function startPod(ctx: SuiteContext, ns: string, prefix: string, spares = 0) {
  const name = ctx.name(prefix);
  const pod = await ctx.kube.runPod(ns, name, {
    serviceAccount: "app",
    image: podImage(ctx.info),
    command: ["sleep", "3600"],
    projected: [
      { path: "vault-token", audience: "vault", expirationSeconds: LIFETIME_S },
      // The kubelet mints one token per (audience, lifetime): distinct lifetimes give distinct
      // pod-bound tokens, never presented to the apiserver (see refusedWithFreshToken).
      ...Array.from({ length: spares }, (_, i) => ({
        path: `spare-${i}`,
        audience: "vault",
        expirationSeconds: LIFETIME_S + 60 * (i + 1),
      })),
    ],
  });
  await ctx.kube.waitPodRunning(ns, name);
  return pod;
}

const it = suiteTest("pods").extend("app", { scope: "file" }, async ({ ctx }) => {
  const { mount } = await ctx.standardAuth();
  const ns = await ctx.namespace("pods");
  const uid = await ctx.kube.createServiceAccount(ns, "app");
  const policy = await ctx.policy("pod-app", `path "secret/data/app/*" { capabilities = ["read"] }`);
  const base = { token_policies: [policy], token_ttl: "30m", bound_service_account_names: ["app"], bound_service_account_namespaces: [ns] };
  await writeRole(ctx.vault, mount, "app", base);
  await writeRole(ctx.vault, mount, "aud", { ...base, audience: "vault" });
  await loadPodImage(ctx.info);
  const pod = await startPod(ctx, ns, "app");
  return { mount, ns, uid, policy, pod };
});

function expectLogin(res: VaultResponse<LoginData>, want: { role: string; ns: string; uid: string; policy: string }) {
  expect(res.status, describeResponse(res)).toBe(200);
  const auth = res.body.auth!;
  expect(auth.client_token.length).toBeGreaterThan(20);
  expect(auth.metadata).toEqual({
    role: want.role,
    service_account_name: "app",
    service_account_namespace: want.ns,
    service_account_uid: want.uid,
    service_account_secret_name: "",
  });
  expect([...auth.policies].sort()).toEqual(["default", want.policy].sort());
  expect(auth.lease_duration).toBe(30 * 60);
}

if (skip) {
  test(`apps in pods: ${skip}`, (t) => t.skip(skip)); // a declared skip: the reason reaches results.json and summary.md
}

describe.runIf(!skip)("apps in pods (kubelet-projected tokens)", { timeout: 240_000 }, () => {
  it("the kubelet-projected default token, read inside the pod, logs in to a role bound to the pod's ServiceAccount (200)", async ({
    ctx,
    app: { mount, ns, uid, policy, pod },
  }) => {
    const jwt = await ctx.kube.readPodFile(ns, pod.name, DEFAULT_TOKEN_PATH, { secret: true });
    expect(decodeJwt(jwt)["kubernetes.io"]).toMatchObject({
      namespace: ns,
      pod: { name: pod.name, uid: pod.uid },
      serviceaccount: { name: "app", uid },
    });
    expectLogin(await login(ctx.vault, mount, "app", jwt), { role: "app", ns, uid, policy });
  });

  it("a projected token with audience vault logs in to a role with audience vault (200); the default token is refused by it (403 invalid audience)", async ({
    ctx,
    app: { mount, ns, uid, policy, pod },
  }) => {
    const jwt = await ctx.kube.readPodFile(ns, pod.name, VAULT_TOKEN, { secret: true });
    expect(decodeJwt(jwt).aud).toEqual(["vault"]);
    expectLogin(await login(ctx.vault, mount, "aud", jwt), { role: "aud", ns, uid, policy });
    const dflt = await ctx.kube.readPodFile(ns, pod.name, DEFAULT_TOKEN_PATH, { secret: true });
    expectRefused(await login(ctx.vault, mount, "aud", dflt), 403, "invalid audience (aud) claim");
  });

  it("the pod logs in itself: `<cli> write auth/<mount>/login role=aud jwt=@<projected file>` from inside the pod", async ({
    ctx,
    app: { mount, ns, uid, policy, pod },
    skip: skipTest,
  }) => {
    const addr = vaultAddressForPods(ctx.info);
    if (!addr) return skipTest("the target names no Vault address for pods (vault.addressForPods)");
    const bin = vaultBinary(ctx.info.flavor);
    const r = await ctx.kube.execInPod(ns, pod.name, [
      "env",
      `VAULT_ADDR=${addr}`,
      `BAO_ADDR=${addr}`,
      bin,
      "write",
      "-format=json",
      `auth/${mount}/login`,
      "role=aud",
      `jwt=@${VAULT_TOKEN}`,
    ]);
    expect(r.exitCode, `${bin} write exited ${r.exitCode}: ${r.stderr}`).toBe(0);
    const out = JSON.parse(r.stdout) as LoginData;
    registerSecret(out.auth!.client_token);
    expectLogin({ status: 200, body: out } as VaultResponse<LoginData>, { role: "aud", ns, uid, policy });
    // The token the pod got works from anywhere.
    const self = await ctx.vault.withToken(out.auth!.client_token).read("auth/token/lookup-self");
    expect(self.status).toBe(200);
    expect(self.body.data).toMatchObject({ path: `auth/${mount}/login`, meta: { role: "aud", service_account_namespace: ns } });
  });

  it("the kubelet-projected token carries the requested lifetime (exp - iat = 600) and the pod-bound claims", async ({
    ctx,
    app: { ns, uid, pod },
  }) => {
    const claims = decodeJwt(await ctx.kube.readPodFile(ns, pod.name, VAULT_TOKEN, { secret: true }));
    expect(Number(claims.exp) - Number(claims.iat)).toBe(LIFETIME_S);
    expect(claims.sub).toBe(`system:serviceaccount:${ns}:app`);
    expect(claims["kubernetes.io"]).toMatchObject({
      namespace: ns,
      pod: { name: pod.name, uid: pod.uid },
      serviceaccount: { name: "app", uid },
    });
  });

  it("the pod-bound tokens are refused once the pod is deleted (403 permission denied)", async ({
    ctx,
    app: { mount, ns, uid, policy },
  }) => {
    const pod = await startPod(ctx, ns, "doomed", 6);
    const used = await ctx.kube.readPodFile(ns, pod.name, VAULT_TOKEN, { secret: true });
    const fresh: string[] = [];
    for (let i = 0; i < 6; i++) fresh.push(await ctx.kube.readPodFile(ns, pod.name, `${PROJECTED_TOKEN_DIR}/spare-${i}`, { secret: true }));
    expect(new Set([used, ...fresh]).size, "the kubelet minted one token per projected lifetime").toBe(7);
    for (const jwt of fresh) expect((decodeJwt(jwt)["kubernetes.io"] as { pod: { uid: string } }).pod.uid).toBe(pod.uid);
    expectLogin(await login(ctx.vault, mount, "aud", used), { role: "aud", ns, uid, policy });
    await ctx.kube.deletePod(ns, pod.name);
    expectRefused(
      await refusedWithFreshToken(fresh, (jwt) => login(ctx.vault, mount, "aud", jwt), "a kubelet-projected token of the deleted Pod"),
      403,
      "permission denied",
    );
  });

  it.runIf(inject("slow"))(
    "the kubelet refreshes the projected token at 80% of its lifetime: the new token logs in, the old one is refused once expired (403) (slow: ~11 min; VKC_SLOW=1)",
    { timeout: 15 * 60_000 },
    async ({ ctx, app: { mount, ns, uid, policy, pod } }) => {
      const first = await ctx.kube.readPodFile(ns, pod.name, VAULT_TOKEN, { secret: true });
      const iat = Number(decodeJwt(first).iat) * 1000;
      // The kubelet rotates a token older than 80% of its TTL, checking about once a minute.
      await new Promise((r) => setTimeout(r, Math.max(0, iat + 0.8 * LIFETIME_S * 1000 - Date.now())));
      const next = await waitFor(
        async () => {
          const t = await ctx.kube.readPodFile(ns, pod.name, VAULT_TOKEN, { secret: true });
          return t !== first ? t : undefined;
        },
        { what: "the kubelet rewrites the projected token file", timeoutMs: 150_000, intervalMs: 5_000 },
      );
      expect(Number(decodeJwt(next).iat)).toBeGreaterThan(Number(decodeJwt(first).iat));
      expect(Number(decodeJwt(next).exp) - Number(decodeJwt(next).iat)).toBe(LIFETIME_S);
      expectLogin(await login(ctx.vault, mount, "aud", next), { role: "aud", ns, uid, policy });
      // The old file's token lives out its own lifetime: Vault refuses it past exp plus its 60 s leeway.
      await new Promise((r) => setTimeout(r, Math.max(0, (Number(decodeJwt(first).exp) + 65) * 1000 - Date.now())));
      expectRefused(await login(ctx.vault, mount, "aud", first), 403, "token is expired");
      expectLogin(await login(ctx.vault, mount, "aud", next), { role: "aud", ns, uid, policy });
    },
  );
});
