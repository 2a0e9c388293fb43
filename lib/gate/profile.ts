import { createHash, createPublicKey, randomBytes, X509Certificate } from "node:crypto";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { Teardown } from "../cleanup.ts";
import { httpJson } from "../http.ts";
import { rawGet } from "../kube/client.ts";
import { log } from "../log.ts";
import type { TargetInfo } from "../lifecycle/info.ts";
import {
  applyReviewer,
  authConfigFor,
  disableAuth,
  enableKubernetesAuth,
  removeReviewerBinding,
  reviewerJwt,
  writeAuthConfig,
  writeRole,
  type Clients,
} from "../auth-setup/steps.ts";
import type { VaultClient } from "../vault/client.ts";
import { issuerSettingsFor } from "./predict.ts";
import {
  PROFILE_SCHEMA,
  type AuthMountProfile,
  type IssuerMode,
  type KubeProfile,
  type Profile,
  type RoleProfile,
  type TokenFacts,
  type VaultProfile,
} from "./types.ts";

export interface ProfileOptions {
  fixturesDir: string;
  /**
   * `harness`: Vault belongs to this run; a mount is configured the way the guides do, with the
   * given issuer mode, and recorded. `read`: the user's Vault; kubernetes auth mounts are only read.
   */
  vault: { kind: "harness"; issuerMode: IssuerMode } | { kind: "read"; mounts?: string[] };
}

/** sha256 fingerprints (lower-case hex) of every certificate in a PEM bundle. */
export function pemFingerprints(pem: string | undefined): string[] {
  const blocks = (pem ?? "").match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => {
    try {
      return new X509Certificate(b).fingerprint256.replace(/:/g, "").toLowerCase();
    } catch {
      return "unparsable";
    }
  });
}

/** The `kid` Kubernetes gives a signing key: base64url(sha256(DER SubjectPublicKeyInfo)). */
export function kubernetesKeyId(pem: string): string {
  const der = createPublicKey(pem).export({ type: "spki", format: "der" });
  return createHash("sha256").update(der).digest("base64url");
}

export function pemKeyIds(keys: unknown): string[] {
  if (!Array.isArray(keys)) return [];
  return keys.map((k) => {
    try {
      return kubernetesKeyId(String(k));
    } catch {
      return "unparsable";
    }
  });
}

export function tokenFacts(jwt: string, requestedSeconds: number): TokenFacts {
  const h = decodeProtectedHeader(jwt);
  const c = decodeJwt(jwt) as Record<string, unknown>;
  const iat = Number(c.iat ?? 0);
  const k8s = (c["kubernetes.io"] ?? {}) as Record<string, unknown>;
  const warnafter = typeof k8s.warnafter === "number" ? k8s.warnafter - iat : null;
  const aud = c.aud === undefined ? [] : Array.isArray(c.aud) ? c.aud.map(String) : [String(c.aud)];
  return {
    kid: typeof h.kid === "string" ? h.kid : null,
    alg: String(h.alg ?? ""),
    iss: String(c.iss ?? ""),
    aud,
    requestedSeconds,
    lifetimeSeconds: Number(c.exp ?? 0) - iat,
    warnAfterSeconds: warnafter,
    kubernetesClaims: Object.keys(k8s).sort(),
  };
}

const errorText = (err: unknown) => ((err as Error).message ?? String(err)).split("\n")[0]!.slice(0, 300);

/**
 * Profiles the cluster and Vault of a ready target. Creates only a labelled namespace (with a
 * ServiceAccount, a token Secret and a Pod object), a per-run ClusterRoleBinding and, on a Vault of
 * its own, one auth mount; all removed before it returns.
 */
export async function collectProfile(clients: Clients, o: ProfileOptions): Promise<Profile> {
  const { info, kube } = clients;
  const tag = randomBytes(3).toString("hex");
  const t = new Teardown(`profile ${tag}`);
  try {
    const ns = `vkc-profile-${tag}`;
    await kube.createNamespace(ns, info.runId);
    t.defer(`delete namespace ${ns}`, () => kube.deleteNamespace(ns));
    const saCreated = Date.now();
    await kube.createServiceAccount(ns, "probe");

    const [kubernetes, vault] = await Promise.all([
      kubeProfile(clients, ns, saCreated),
      o.vault.kind === "harness"
        ? harnessVault(clients, ns, tag, o.fixturesDir, o.vault.issuerMode, t)
        : readVault(clients.vault, info, o.vault.mounts),
    ]);
    return {
      schema: PROFILE_SCHEMA,
      createdAt: new Date().toISOString(),
      runId: info.runId,
      target: info.target,
      ...(info.persona ? { persona: info.persona.name } : {}),
      kubernetes,
      vault,
    };
  } finally {
    await t.run();
  }
}

async function kubeProfile(clients: Clients, ns: string, saCreated: number): Promise<KubeProfile> {
  const { info, kube } = clients;
  const bound = await kube.requestToken(ns, "probe", { expirationSeconds: 3600 });
  const boundToken = tokenFacts(bound, 3600);
  const discoveryRes = await rawGet(kube.kc, "/.well-known/openid-configuration").catch(() => undefined);
  const discovery = discoveryRes?.status === 200 ? (discoveryRes.body as { issuer?: string; jwks_uri?: string }) : undefined;
  const jwksRes = await rawGet(kube.kc, "/openid/v1/jwks", 10_000, { accept: "application/jwk-set+json, application/json" }).catch(
    () => undefined,
  );
  const jwks =
    jwksRes?.status === 200
      ? ((jwksRes.body as { keys?: Record<string, unknown>[] }).keys ?? []).map((k) => ({
          kid: String(k.kid ?? ""),
          alg: String(k.alg ?? ""),
          kty: String(k.kty ?? ""),
        }))
      : null;
  const anonymous = await httpJson({
    url: `${info.kube.server.replace(/\/$/, "")}/.well-known/openid-configuration`,
    ca: info.kube.caCertForVault || undefined,
    timeoutMs: 10_000,
  }).then(
    (r) => r.status,
    () => null,
  );

  const podBoundToken = await (async () => {
    try {
      const pod = await kube.createPod(ns, "probe", "probe");
      return tokenFacts(await kube.requestToken(ns, "probe", { expirationSeconds: 3607, boundPod: pod }), 3607);
    } catch (err) {
      return { error: errorText(err) };
    }
  })();
  const longRequest = await kube.requestToken(ns, "probe", { expirationSeconds: 48 * 3600 }).then(
    (jwt) => ({ requestedSeconds: 48 * 3600, grantedSeconds: tokenFacts(jwt, 48 * 3600).lifetimeSeconds }),
    (err) => ({ error: errorText(err) }),
  );
  const legacyIss = await kube
    .legacyToken(ns, "probe", "probe-token")
    .then((l) => String(decodeJwt(l.token).iss ?? ""))
    .catch((err) => {
      log.warn("profile", `no legacy token Secret could be made: ${errorText(err)}`);
      return null;
    });
  // Before 1.24 the token controller gave every new ServiceAccount a Secret within a second or so.
  const autoCreated = await waitForAutoSecret(clients, ns, saCreated);

  return {
    version: info.kube.version,
    server: info.kube.server,
    hostForVault: info.kube.hostForVault,
    caFingerprints: pemFingerprints(info.kube.caCertForVault),
    issuer: {
      discovery: discovery?.issuer ?? null,
      jwksUri: discovery?.jwks_uri ?? null,
      boundToken: boundToken.iss,
      legacyToken: legacyIss,
      configured: info.kube.issuers,
    },
    jwks,
    defaultAudiences: boundToken.aud,
    boundToken,
    podBoundToken,
    longRequest,
    tokenSecretsAutoCreated: autoCreated,
    anonymousDiscoveryStatus: anonymous,
  };
}

async function waitForAutoSecret(clients: Clients, ns: string, since: number): Promise<boolean> {
  const deadline = since + 5000;
  for (;;) {
    const sa = await clients.kube.core.readNamespacedServiceAccount({ namespace: ns, name: "probe" });
    // Our own probe-token Secret is not listed in .secrets; an auto-created one is.
    if ((sa.secrets ?? []).some((s) => s.name && s.name !== "probe-token")) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A Vault of the run's own: configure kubernetes auth as the guides do, then read it back. */
async function harnessVault(
  clients: Clients,
  ns: string,
  tag: string,
  fixturesDir: string,
  mode: IssuerMode,
  t: Teardown,
): Promise<VaultProfile> {
  const { info, kube, vault } = clients;
  const reviewer = await applyReviewer(kube, { fixturesDir, namespace: ns, suffix: `profile-${tag}`, runId: info.runId });
  t.defer(`delete ClusterRoleBinding ${reviewer.bindingName}`, () => removeReviewerBinding(kube, reviewer));
  const jwt = await reviewerJwt(kube, reviewer, "secret");
  const mount = `vkc-profile-${tag}`;
  await enableKubernetesAuth(vault, mount, info.runId);
  t.defer(`disable auth mount ${mount}`, () => disableAuth(vault, mount));
  const iss = await kube.requestToken(ns, "probe", { expirationSeconds: 600 }).then((j) => String(decodeJwt(j).iss));
  const settings = issuerSettingsFor(mode, { discovered: iss, preUpgrade: info.persona?.previousIssuer });
  await writeAuthConfig(vault, mount, authConfigFor(info, jwt, settings));
  await writeRole(vault, mount, "probe", { bound_service_account_names: ["probe"], bound_service_account_namespaces: [ns] });
  const m = await readMount(vault, mount, "harness");
  return { flavor: info.vault.flavor, version: info.vault.version, mounts: m ? [m] : [] };
}

/** The user's Vault: read every kubernetes auth mount (or the named ones); never write. */
async function readVault(vault: VaultClient, info: TargetInfo, only: string[] | undefined): Promise<VaultProfile> {
  const base = { flavor: info.vault.flavor, version: info.vault.version };
  let paths = only?.map((p) => p.replace(/^\/+|\/+$/g, ""));
  if (!paths?.length) {
    const res = await vault.request<{ data?: Record<string, { type?: string }> }>("GET", "sys/auth");
    if (res.status !== 200)
      return { ...base, mounts: [], note: `cannot list auth mounts (GET sys/auth: HTTP ${res.status}); pass --mount PATH` };
    const table = (res.body.data ?? res.body) as Record<string, { type?: string }>;
    paths = Object.entries(table)
      .filter(([, v]) => v && typeof v === "object" && v.type === "kubernetes")
      .map(([k]) => k.replace(/\/+$/, ""));
  }
  const mounts: AuthMountProfile[] = [];
  const problems: string[] = [];
  for (const p of paths) {
    const m = await readMount(vault, p, "read").catch((err) => {
      problems.push(`${p}: ${errorText(err)}`);
      return undefined;
    });
    if (m) mounts.push(m);
  }
  return {
    ...base,
    mounts,
    ...(problems.length ? { note: problems.join("; ") } : !paths.length ? { note: "no kubernetes auth mount found" } : {}),
  };
}

async function readMount(vault: VaultClient, path: string, source: "harness" | "read"): Promise<AuthMountProfile | undefined> {
  const cfg = await vault.request<{ data?: Record<string, unknown> }>("GET", `auth/${path}/config`);
  if (cfg.status !== 200) throw new Error(`GET auth/${path}/config: HTTP ${cfg.status} ${(cfg.body?.errors ?? []).join("; ")}`);
  const d = cfg.body.data ?? {};
  const roles: RoleProfile[] = [];
  const list = await vault.request<{ data?: { keys?: string[] } }>("LIST", `auth/${path}/role`);
  for (const name of list.status === 200 ? (list.body.data?.keys ?? []) : []) {
    const r = await vault.request<{ data?: Record<string, unknown> }>("GET", `auth/${path}/role/${name}`);
    if (r.status !== 200) continue;
    const rd = r.body.data ?? {};
    const arr = (v: unknown) => (Array.isArray(v) ? v.map(String) : v ? [String(v)] : []);
    roles.push({
      name,
      audience: String(rd.audience ?? ""),
      bound_service_account_names: arr(rd.bound_service_account_names),
      bound_service_account_namespaces: arr(rd.bound_service_account_namespaces),
      alias_name_source: String(rd.alias_name_source ?? ""),
    });
  }
  return {
    path,
    source,
    config: {
      kubernetes_host: String(d.kubernetes_host ?? ""),
      issuer: String(d.issuer ?? ""),
      disable_iss_validation: d.disable_iss_validation === true,
      disable_local_ca_jwt: d.disable_local_ca_jwt === true,
      token_reviewer_jwt_set: d.token_reviewer_jwt_set === true,
      caFingerprints: pemFingerprints(typeof d.kubernetes_ca_cert === "string" ? d.kubernetes_ca_cert : undefined),
      pemKeyIds: pemKeyIds(d.pem_keys),
    },
    roles,
  };
}
