/**
 * Static reasoning about who a kubernetes auth role lets in, the way the plugin decides it
 * (vault-plugin-auth-kubernetes path_login.go; read for the facts, our own code): the name is
 * checked first, then the namespace (a listed name or glob, or the namespace selector's labels).
 * Globs: a `*` anywhere matches any run of characters (see globMatch; the plugin's docs speak
 * only of leading and trailing stars). Real logins decide; this only chooses candidates and
 * explains outcomes.
 */

export interface RoleShape {
  bound_service_account_names?: string[] | string;
  bound_service_account_namespaces?: string[] | string;
  /** JSON or YAML LabelSelector text as Vault stores it (matchLabels and matchExpressions). */
  bound_service_account_namespace_selector?: string;
  audience?: string;
  alias_name_source?: string;
  token_bound_cidrs?: string[] | string;
  token_policies?: string[];
  policies?: string[];
  token_no_default_policy?: boolean;
}

export interface Identity {
  namespace: string;
  serviceAccount: string;
  /** Labels of the namespace (for selectors); undefined when unknown. */
  namespaceLabels?: Record<string, string>;
}

export type Verdict =
  | { accepted: true; why: string }
  | { accepted: false; error: "service account name not authorized" | "namespace not authorized"; why: string };

export function asList(v: string[] | string | undefined | null): string[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v.map(String).filter((s) => s !== "");
  return String(v)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * One pattern of a bound list against a value, as the plugin matches it (go-glob, measured on
 * Vault 1.21.1 and OpenBao 2.7.2: a `*` anywhere, the middle included, stands for any run of
 * characters; the parts between stars must appear in order, the first as a prefix, the last as a
 * suffix).
 */
export function globMatch(pattern: string, value: string): boolean {
  if (pattern === "*") return true;
  const parts = pattern.split("*");
  if (parts.length === 1) return pattern === value;
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  if (!value.startsWith(first) || value.length < first.length + last.length) return false;
  let at = first.length;
  for (const mid of parts.slice(1, -1)) {
    const i = value.indexOf(mid, at);
    if (i === -1) return false;
    at = i + mid.length;
  }
  return value.length - last.length >= at && value.endsWith(last);
}

export function isGlob(pattern: string): boolean {
  return pattern.includes("*");
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** Parses a role's selector (Vault keeps the text the user gave: JSON, or YAML of the same shape). */
export function parseSelector(text: string | undefined): LabelSelector | undefined {
  if (!text || !text.trim()) return undefined;
  try {
    return JSON.parse(text) as LabelSelector;
  } catch {
    // Vault also takes YAML; a flat "matchLabels:\n  k: v" is all we read without a YAML parser here.
    const labels: Record<string, string> = {};
    let inLabels = false;
    for (const line of text.split("\n")) {
      if (/^\s*matchLabels\s*:\s*$/.test(line)) {
        inLabels = true;
        continue;
      }
      const m = /^\s+([^:#]+):\s*"?([^"#]*)"?\s*$/.exec(line);
      if (inLabels && m) labels[m[1]!.trim()] = m[2]!.trim();
      else if (!/^\s*$/.test(line)) inLabels = false;
    }
    return { matchLabels: labels };
  }
}

/** `team=a,env=prod` -> labels; anything else is malformed. */
export function parseLabelSelector(text: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const part of text.split(",").map((s) => s.trim())) {
    const m = /^([A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?)=([-A-Za-z0-9_.]*)$/.exec(part);
    if (!m) return undefined;
    out[m[1]!] = m[3]!;
  }
  return Object.keys(out).length ? out : undefined;
}

export function selectorMatches(sel: LabelSelector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const vals = e.values ?? [];
    switch (e.operator) {
      case "In":
        if (!has || !vals.includes(labels[e.key]!)) return false;
        break;
      case "NotIn":
        if (has && vals.includes(labels[e.key]!)) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

export function describeSelector(sel: LabelSelector): string {
  const parts = Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel.matchExpressions ?? []) parts.push(`${e.key} ${e.operator} (${(e.values ?? []).join(",")})`);
  return parts.length ? parts.join(", ") : "(empty selector: every namespace)";
}

/** What the plugin would answer for `who` logging in to `role` (identity checks only; audience, CIDRs and TokenReview aside). */
export function predict(role: RoleShape, who: Identity): Verdict {
  const names = asList(role.bound_service_account_names);
  const name = names.find((p) => globMatch(p, who.serviceAccount));
  if (!name) {
    return {
      accepted: false,
      error: "service account name not authorized",
      why: `name ${who.serviceAccount} matches none of [${names.join(", ")}]`,
    };
  }
  const namespaces = asList(role.bound_service_account_namespaces);
  const ns = namespaces.find((p) => globMatch(p, who.namespace));
  const nameWhy = name === who.serviceAccount ? `name ${name}` : `name glob ${name}`;
  if (ns) return { accepted: true, why: `${nameWhy}, ${ns === who.namespace ? `namespace ${ns}` : `namespace glob ${ns}`}` };
  const sel = parseSelector(role.bound_service_account_namespace_selector);
  if (sel && who.namespaceLabels && selectorMatches(sel, who.namespaceLabels))
    return { accepted: true, why: `${nameWhy}, namespace selector ${describeSelector(sel)}` };
  return {
    accepted: false,
    error: "namespace not authorized",
    why: `namespace ${who.namespace} matches none of [${namespaces.join(", ")}]${sel ? ` nor the selector ${describeSelector(sel)}` : ""}`,
  };
}

/**
 * Names a bound pattern would let in that its author may not have meant: for `payments`, the
 * glob-shaped neighbours `payments-vkc` and `vkc-payments` (refused unless a glob widened the
 * role); for `pay*`, `pay-vkc`; for `*-app`, `vkc-app`; for `pay*db`, `pay-vkc-db-vkc` and
 * `vkc-pay-vkc-db`... (whatever the star lets in); for `*`, `vkc-any`. DNS-1123 names.
 */
export function lookalikes(pattern: string, tag = "vkc"): string[] {
  // A star inside the pattern matches too (go-glob): fill it with the tag.
  const core = pattern.replace(/^\*+|\*+$/g, "").replace(/\*+/g, `-${tag}-`);
  const out = new Set<string>();
  if (core === "") out.add(`${tag}-any`);
  else if (pattern.endsWith("*") && !pattern.startsWith("*")) out.add(`${core}${core.endsWith("-") ? "" : "-"}${tag}`);
  else if (pattern.startsWith("*") && !pattern.endsWith("*")) out.add(`${tag}${core.startsWith("-") ? "" : "-"}${core}`);
  else if (pattern.startsWith("*") && pattern.endsWith("*")) out.add(`${tag}-${core}-${tag}`);
  else {
    if (pattern.includes("*")) out.add(core); // `pay*db` -> `pay-vkc-db`, which it lets in
    out.add(`${core}-${tag}`);
    out.add(`${tag}-${core}`);
  }
  return [...out].map(dns1123).filter((n) => n !== "");
}

export function dns1123(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63)
    .replace(/-+$/g, "");
}

/** How to narrow a role that let `who` in, in words a reviewer acts on. */
export function advice(roleName: string, role: RoleShape, who: Identity): string {
  const names = asList(role.bound_service_account_names);
  const name = names.find((p) => globMatch(p, who.serviceAccount));
  const namespaces = asList(role.bound_service_account_namespaces);
  const ns = namespaces.find((p) => globMatch(p, who.namespace));
  if (name && isGlob(name))
    return `replace "${name}" in bound_service_account_names of role ${roleName} with the exact names it is meant for`;
  if (ns && isGlob(ns))
    return `replace "${ns}" in bound_service_account_namespaces of role ${roleName} with the exact namespaces it is meant for`;
  if (ns) return `drop ${ns} from bound_service_account_namespaces of role ${roleName}`;
  if (role.bound_service_account_namespace_selector)
    return `narrow bound_service_account_namespace_selector of role ${roleName} (namespace ${who.namespace} matches it)`;
  return `narrow role ${roleName}: ${who.namespace}/${who.serviceAccount} is not meant to log in`;
}
