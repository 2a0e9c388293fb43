/**
 * The profile of a cluster and a Vault as they matter to Vault's kubernetes auth: plain JSON,
 * written by `npm run profile`, compared by `npm run profile:diff`. It never holds a token, a
 * key or a certificate: tokens appear as decoded claims, keys and certificates as fingerprints.
 */

export const PROFILE_SCHEMA = "vault-k8s-conformance/profile/v1";

export interface Profile {
  schema: typeof PROFILE_SCHEMA;
  createdAt: string;
  runId: string;
  target: string;
  /** The local target's persona, when one was used. */
  persona?: string;
  kubernetes: KubeProfile;
  vault: VaultProfile;
  /** Per-case results, when profiled together with the suites (`--with-suites`). */
  cases?: { totals: { passed: number; failed: number; skipped: number }; results: { id: string; status: string }[] };
}

export interface KubeProfile {
  /** gitVersion, e.g. "v1.36.3". */
  version: string;
  /** The API server as the harness reached it. */
  server: string;
  /** kubernetes_host as Vault reaches it. */
  hostForVault: string;
  /** sha256 fingerprints (hex, lower case) of the CA certificates Vault must trust for the API server. */
  caFingerprints: string[];
  issuer: {
    /** `issuer` of /.well-known/openid-configuration, or null when discovery is unavailable. */
    discovery: string | null;
    /** `jwks_uri` of the discovery document, or null. */
    jwksUri: string | null;
    /** `iss` of a freshly minted bound (TokenRequest) token. */
    boundToken: string;
    /** `iss` of a legacy Secret token (`kubernetes/serviceaccount` on every version so far), or null if none could be made. */
    legacyToken: string | null;
    /** The apiserver's --service-account-issuer values when known (local/kind targets), first = signing. */
    configured: string[];
  };
  /** Keys of the service-account JWKS (/openid/v1/jwks), or null when not readable. */
  jwks: { kid: string; alg: string; kty: string }[] | null;
  /** The `aud` a TokenRequest gets by default (the apiserver's --api-audiences, else its issuer). */
  defaultAudiences: string[];
  /** Claims of a fresh bound token (never the token). */
  boundToken: TokenFacts;
  /** A token bound to a Pod, requested for 3607 s (what kubelet asks for): extended to a year when the apiserver extends expiration. */
  podBoundToken: TokenFacts | { error: string };
  /** A TokenRequest for 48 h: what the cluster grants (capped by --service-account-max-token-expiration). */
  longRequest: { requestedSeconds: number; grantedSeconds: number } | { error: string };
  /** Whether a new ServiceAccount gets a token Secret by itself (true before 1.24). */
  tokenSecretsAutoCreated: boolean;
  /** HTTP status of /.well-known/openid-configuration without credentials (200 = anonymous discovery allowed). */
  anonymousDiscoveryStatus: number | null;
}

export interface TokenFacts {
  /** Kubernetes `kid` header: base64url(sha256(DER SubjectPublicKeyInfo)) of the signing key. */
  kid: string | null;
  alg: string;
  iss: string;
  aud: string[];
  requestedSeconds: number;
  /** exp - iat. */
  lifetimeSeconds: number;
  /** `kubernetes.io.warnafter` - iat, when the apiserver extended the token's expiry; else null. */
  warnAfterSeconds: number | null;
  /** The `kubernetes.io` claim names present (namespace, serviceaccount, pod, node, ...). */
  kubernetesClaims: string[];
}

export interface VaultProfile {
  flavor: string;
  version: string;
  /**
   * Kubernetes auth mounts as read back. `source: "harness"` = configured by the profiler on a
   * Vault it owns (see `--vault-issuer`); `"read"` = read-only from the user's Vault.
   */
  mounts: AuthMountProfile[];
  /** Why no mount could be read (permissions), if so. */
  note?: string;
}

export interface AuthMountProfile {
  path: string;
  source: "harness" | "read";
  config: {
    kubernetes_host: string;
    issuer: string;
    disable_iss_validation: boolean;
    disable_local_ca_jwt: boolean;
    token_reviewer_jwt_set: boolean;
    /** sha256 fingerprints of the certificates in kubernetes_ca_cert ([] when unset). */
    caFingerprints: string[];
    /** Kubernetes-style key ids of pem_keys ([] when unset: TokenReview is the only signature check). */
    pemKeyIds: string[];
  };
  roles: RoleProfile[];
}

export interface RoleProfile {
  name: string;
  audience: string;
  bound_service_account_names: string[];
  bound_service_account_namespaces: string[];
  alias_name_source: string;
}

/** The Vault issuer settings the matrix and the diff reason about. */
export type IssuerMode = "off" | "discovered" | "legacy" | "pre-upgrade";

/** One predicted or observed login outcome. */
export interface LoginOutcome {
  ok: boolean;
  status: number;
  /** Vault's error substring for a rejection ("invalid issuer (iss) claim", ...). */
  error?: string;
}
