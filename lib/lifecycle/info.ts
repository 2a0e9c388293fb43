import { readFile } from "node:fs/promises";
import type { Flavor, TargetName } from "../config.ts";
import { UsageError } from "../errors.ts";

/**
 * Everything a suite needs to know about a ready target, as plain JSON: vitest's globalSetup
 * hands it to the suites through provide/inject, and `npm run env:up` writes it to a file.
 * Secrets are never inline: the kubeconfig and the Vault token are 0600 files referenced by path.
 */
export interface TargetInfo {
  runId: string;
  target: TargetName;
  flavor: Flavor;
  kube: {
    /** 0600 self-contained kubeconfig at `context`: cluster-admin (local, kind) or the user's credential (existing, exec plugins kept). */
    kubeconfigPath: string;
    context?: string;
    /** The API server as the harness reaches it. */
    server: string;
    /** What Vault must use as kubernetes_host (differs from `server` when Vault runs elsewhere). */
    hostForVault: string;
    /** PEM CA that Vault must use as kubernetes_ca_cert. */
    caCertForVault: string;
    /** The apiserver's --service-account-issuer values, first = the one new tokens carry; empty when unknown. */
    issuers: string[];
    /** The apiserver's --api-audiences; empty when unknown. */
    apiAudiences: string[];
    version: string;
    /**
     * Local target only: the 0600 service-account signing key, so a suite can mint what the API
     * server signed before an issuer migration (the server itself still validates it).
     */
    saSigningKeyFile?: string;
    /**
     * Local target with a persona's `retiredSigningKey`: the 0600 key the API server no longer signs
     * with but still trusts (a second --service-account-key-file), to mint tokens from before a rotation.
     */
    saRetiredSigningKeyFile?: string;
  };
  /** Local target: the persona it runs, and the issuer before the change the persona shows. */
  persona?: { name: string; previousIssuer?: string };
  vault: {
    address: string;
    /** 0600 file holding a token with root (or equivalent) policy. */
    tokenFile: string;
    /** PEM CA bundle to trust instead of the system roots (VAULT_CACERT, VAULT_CAPATH, ...). */
    caCertFile?: string;
    /**
     * An external Vault's client conventions (lib/vault/external.ts), as the run reached it:
     * mutual TLS (0600 PEM files), the name its certificate must match, verification off
     * (VAULT_SKIP_VERIFY), the namespace every request goes to, a 0600 file with the proxy URL.
     */
    clientCertFile?: string;
    clientKeyFile?: string;
    tlsServerName?: string;
    tlsSkipVerify?: boolean;
    namespace?: string;
    proxyFile?: string;
    flavor: Flavor;
    version: string;
    /** True when Vault is known to run outside any pod (it then has no pod CA or JWT to fall back on). */
    outsideCluster?: boolean;
    /**
     * Vault's address as the cluster's pods reach it (kind: the in-cluster Service's DNS name, or
     * the container's address on kind's network); absent when the harness does not know one.
     */
    addressForPods?: string;
  };
  /** Version of every component, e.g. { kubernetes: "v1.36.3", etcd: "3.6.8", vault: "1.21.4" }. */
  versions: Record<string, string>;
  /** Per-run artifacts (component logs, diagnostics); never holds secrets. */
  artifactsDir: string;
  /** Component name -> log file. */
  logs: Record<string, string>;
  /** Local target: component name -> pid (process group leader), for diagnostics and leak checks. */
  pids?: Record<string, number>;
}

/** A TargetInfo file (env:up's, or the one a script hands its suites). */
export async function readTargetInfo(path: string): Promise<TargetInfo> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as TargetInfo;
  } catch (err) {
    throw new UsageError(`cannot read target info ${path}: ${(err as Error).message}`, { cause: err });
  }
}
