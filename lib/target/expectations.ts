import type { Flavor } from "../config.ts";

/**
 * Expectations that differ by Vault flavor or version, in one place, keyed by the version the
 * target reports. Suites ask here instead of branching on versions themselves. Each entry says
 * where the difference comes from.
 */
export interface Expectations {
  /** Substring of the 400 for a role without bound namespaces (and no selector). */
  roleNeedsNamespaces: string;
  /** Substring of the 400 for an invalid alias_name_source. */
  badAliasSource: string;
  /** Substring of the 400 for token_ttl > token_max_ttl. */
  ttlAboveMax: string;
  /** Substring of the 400 for garbage pem_keys. */
  badPemKeys: string;
  /** Status and substring for a caller outside token_bound_cidrs. */
  cidrRejected: { status: number; error: string };
  /** A role written without `audience`: 200 with this warning, or 204 and no warning (undefined). */
  noAudienceWarning: string | undefined;
  /** Does the config endpoint refuse a kubernetes_ca_cert holding no certificate? */
  garbageCaRejected: boolean;
  /** Status and substring for an unparsable JWT. */
  malformedJwt: { status: number; error: string };
}

const base: Expectations = {
  roleNeedsNamespaces: `"bound_service_account_namespaces" can not be empty if "bound_service_account_namespace_selector" is not set`,
  badAliasSource: "invalid alias_name_source, must be one of: serviceaccount_uid, serviceaccount_name",
  ttlAboveMax: "'token_ttl' cannot be greater than 'token_max_ttl'",
  garbageCaRejected: true,
  badPemKeys: "data does not contain any valid RSA or ECDSA public keys",
  noAudienceWarning: "does not have an audience configured",
  cidrRejected: { status: 403, error: "permission denied" },
  malformedJwt: { status: 403, error: "permission denied" },
};

/** HashiCorp Vault 1.21 bundles vault-plugin-auth-kubernetes 0.23.x; OpenBao 2.x its own port. */
export function expectationsFor(flavor: Flavor, _version: string): Expectations {
  switch (flavor) {
    case "vault":
      return base;
    case "openbao":
      // OpenBao's port predates the plugin's CA validation (0.19): a CA without certificates
      // is stored, and logins then fail at TLS time. Seen on OpenBao 2.7.2.
      // Its pem_keys parser and role endpoint also predate HashiCorp's wording and the
      // missing-audience warning (plugin 0.22.3). Seen on OpenBao 2.7.2.
      return { ...base, garbageCaRejected: false, badPemKeys: "data does not contain any valid public keys", noAudienceWarning: undefined };
  }
}
