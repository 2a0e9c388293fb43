/**
 * Which paths to ask Vault about, and what a token (or a set of policies) may do there. Shared by
 * the conformance probe (suites/) and `npm run audit`: the path set is built from the Vault itself
 * (its secrets mounts, the text of the given policies, sensitive sys paths, the auth mount), and
 * capabilities always come from Vault (`sys/capabilities-self`), never from our reading of a policy.
 */
import { HarnessError } from "../errors.ts";
import { registerSecret } from "../redact.ts";
import { describeResponse, type VaultClient } from "../vault/client.ts";

/** A path segment standing for "some name" where a policy has `+` or `*`. */
const SAMPLE_SEGMENT = "vkc-probe";

/** Every capability Vault's ACL knows (`root` is only ever reported, never written in a policy). */
export const VAULT_CAPABILITIES = ["create", "read", "update", "patch", "delete", "list", "sudo", "deny", "subscribe", "recover"] as const;

/** sys paths whose capabilities say whether a role could escalate or read the configuration. */
const SENSITIVE_SYS_PATHS = [
  "sys/",
  "sys/policies/acl",
  "sys/policies/acl/default",
  "sys/policies/acl/vkc-probe",
  "sys/mounts",
  "sys/mounts/vkc-probe",
  "sys/auth",
  "sys/seal",
  "sys/raw",
  "sys/raw/vkc-probe",
  "sys/audit",
  "sys/leases/lookup",
  "sys/capabilities",
];

/** Mount types that are Vault's own (their paths are listed explicitly, not sampled). */
const SYSTEM_MOUNT_TYPES = new Set(["system", "identity", "cubbyhole", "ns_system", "ns_identity", "ns_cubbyhole", "token"]);

export interface SecretsMount {
  /** Path with a trailing slash, e.g. `secret/`. */
  path: string;
  type: string;
  /** kv version ("1" or "2") when the type is kv. */
  version?: string;
}

/** `path "..."` strings of a policy, in HCL (`path "x" { ... }`) or JSON (`{"path": {"x": {...}}}`). */
export function policyPaths(text: string): string[] {
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) {
    try {
      const doc = JSON.parse(trimmed) as { path?: Record<string, unknown> | Record<string, unknown>[] };
      const p = doc.path;
      if (Array.isArray(p)) return p.flatMap((o) => Object.keys(o));
      if (p && typeof p === "object") return Object.keys(p);
      return [];
    } catch {
      // not JSON after all: fall through to HCL
    }
  }
  const out: string[] = [];
  // Comments may hold `path "..."` text (ours mark a run): drop them before matching.
  const code = stripHclComments(text);
  for (const m of code.matchAll(/\bpath\s+"((?:[^"\\]|\\.)*)"/g)) out.push(m[1]!.replace(/\\(.)/g, "$1"));
  return out;
}

/** HCL without its comments (`#`, `//`, `/* *\/`), leaving strings intact (a path may hold `/*`). */
function stripHclComments(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      const start = i;
      for (i++; i < text.length && text[i] !== '"' && text[i] !== "\n"; i++) if (text[i] === "\\") i++;
      out += text.slice(start, i + 1);
    } else if (c === "#" || (c === "/" && text[i + 1] === "/")) {
      while (i < text.length && text[i] !== "\n") i++;
      out += "\n";
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end === -1 ? text.length : end + 1;
      out += " ";
    } else out += c;
  }
  return out;
}

/** A policy path with `+` segments and a trailing `*` replaced by a sample name (undefined for templated paths). */
export function samplePath(pattern: string, sample = SAMPLE_SEGMENT): string | undefined {
  if (pattern.includes("{{")) return undefined;
  let p = pattern
    .split("/")
    .map((s) => (s === "+" ? sample : s))
    .join("/");
  if (p.endsWith("*")) p = p.slice(0, -1) + sample;
  return p.replace(/^\/+/, "");
}

/** `a/b/c` -> [`a/`, `a/b/`] (directories a LIST or a parent read would use), plus `a/b` (the parent itself). */
export function parentsOf(path: string): string[] {
  const segs = path.replace(/\/+$/, "").split("/");
  const out: string[] = [];
  for (let i = 1; i < segs.length; i++) out.push(segs.slice(0, i).join("/") + "/");
  if (segs.length > 1) out.push(segs.slice(0, -1).join("/"));
  return out;
}

/**
 * The paths to probe for one policy path pattern: a sample of what it matches, the pattern's own
 * prefix, its parents, and a sibling outside it (which a tight policy must refuse).
 */
export function expandPolicyPath(pattern: string, sample = SAMPLE_SEGMENT): string[] {
  const s = samplePath(pattern, sample);
  if (s === undefined || s === "") return [];
  const out = new Set<string>([s]);
  if (pattern.endsWith("*")) {
    const prefix = samplePath(pattern.slice(0, -1), sample);
    if (prefix) out.add(prefix);
  }
  for (const p of parentsOf(s)) out.add(p);
  // A sibling outside what the pattern matches: next to the path, or next to a glob's directory.
  const base = pattern.endsWith("*") ? (samplePath(pattern.slice(0, -1), sample) ?? "") : s;
  const dir = base.replace(/\/+$/, "").split("/").slice(0, -1).join("/");
  out.add(dir ? `${dir}/${sample}-sibling` : `${sample}-sibling`);
  return [...out].filter((p) => p !== "" && p !== "/");
}

/** Paths to sample under one secrets mount (kv v2 has data/ and metadata/ beneath its root). */
export function mountSamplePaths(m: SecretsMount, sample = SAMPLE_SEGMENT): string[] {
  const root = m.path.endsWith("/") ? m.path : `${m.path}/`;
  if (SYSTEM_MOUNT_TYPES.has(m.type)) return [root];
  const out = [root, `${root}${sample}`];
  if ((m.type === "kv" || m.type === "generic") && m.version === "2")
    out.push(`${root}data/`, `${root}data/${sample}`, `${root}metadata/`, `${root}metadata/${sample}`, `${root}config`);
  return out;
}

/** The auth-mount, token and identity paths every probe asks about. */
export function fixedPaths(authMount: string, roles: string[] = []): string[] {
  const a = authMount.replace(/^\/+|\/+$/g, "");
  return [
    ...SENSITIVE_SYS_PATHS,
    `sys/auth/${a}`,
    `auth/${a}/config`,
    `auth/${a}/role`,
    `auth/${a}/role/`,
    ...roles.map((r) => `auth/${a}/role/${r}`),
    "auth/token/create",
    "auth/token/create-orphan",
    "auth/token/lookup",
    "identity/entity",
    "identity/entity/id",
    "identity/group",
    "cubbyhole/",
    `cubbyhole/${SAMPLE_SEGMENT}`,
  ];
}

/** Sorts and de-duplicates, dropping templated and empty paths. */
export function normalizePaths(paths: Iterable<string>): string[] {
  const out = new Set<string>();
  for (const p of paths) {
    const q = p.replace(/^\/+/, "");
    if (q && !q.includes("{{")) out.add(q);
  }
  return [...out].sort();
}

/** Secrets mounts of a Vault (sys/mounts); a token that may not read them is an error naming the path. */
async function secretsMounts(vault: VaultClient): Promise<SecretsMount[]> {
  const res = await vault.read<{ data?: Record<string, any> } & Record<string, any>>("sys/mounts");
  if (res.status !== 200)
    throw new HarnessError(`cannot list secrets mounts: GET sys/mounts: ${describeResponse(res)} (the token needs read on sys/mounts)`);
  const table = (res.body.data ?? res.body) as Record<string, any>;
  return Object.entries(table)
    .filter(([k, v]) => k.endsWith("/") && v && typeof v === "object" && typeof v.type === "string")
    .map(([k, v]) => ({ path: k, type: String(v.type), ...(v.options?.version ? { version: String(v.options.version) } : {}) }));
}

/** The text of an ACL policy (sys/policies/acl/<name>); undefined when it does not exist. */
async function policyText(vault: VaultClient, name: string): Promise<string | undefined> {
  const res = await vault.read<{ data?: { policy?: string } }>(`sys/policies/acl/${encodeURIComponent(name)}`);
  if (res.status === 404) return undefined;
  if (res.status !== 200)
    throw new HarnessError(
      `cannot read policy ${name}: GET sys/policies/acl/${name}: ${describeResponse(res)} (the token needs read on sys/policies/acl/*)`,
    );
  return res.body.data?.policy ?? "";
}

/**
 * The path set to probe, built from the Vault itself: every secrets mount root with sample
 * children, every path of every given policy with parents and siblings (`+`/`*` sampled,
 * templated paths skipped), sensitive sys paths, the auth mount's config and roles, token and
 * identity endpoints, and cubbyhole. Sorted and de-duplicated.
 */
export async function probePaths(vault: VaultClient, o: { policies: string[]; authMount: string; roles?: string[] }): Promise<string[]> {
  const paths: string[] = [];
  for (const m of await secretsMounts(vault)) paths.push(...mountSamplePaths(m));
  const names = [...new Set(o.policies)].filter((p) => p !== "root");
  const texts = await Promise.all(names.map((n) => policyText(vault, n)));
  for (const t of texts) for (const p of policyPaths(t ?? "")) paths.push(...expandPolicyPath(p));
  paths.push(...fixedPaths(o.authMount, o.roles ?? []));
  return normalizePaths(paths);
}

/** capabilities-self answers `{data: {path: caps}}` (and the same at top level); take `data` when present. */
export function capabilitiesFromBody(body: unknown, paths: string[]): Record<string, string[]> {
  const b = (body ?? {}) as Record<string, unknown>;
  const table = (b.data && typeof b.data === "object" ? b.data : b) as Record<string, unknown>;
  const out: Record<string, string[]> = {};
  for (const p of paths) {
    const v = table[p];
    out[p] = Array.isArray(v) ? v.map(String).sort() : [];
  }
  return out;
}

/** What the client's token may do on each path: one POST sys/capabilities-self. */
async function capabilitiesOf(vault: VaultClient, paths: string[]): Promise<Record<string, string[]>> {
  if (paths.length === 0) return {};
  const res = await vault.write("sys/capabilities-self", { paths });
  if (res.status !== 200) throw new HarnessError(`POST sys/capabilities-self: ${describeResponse(res)}`);
  return capabilitiesFromBody(res.body, paths);
}

/**
 * What the token with `accessor` may do on each path, asked with another token (`root`): one
 * POST sys/capabilities-accessor. For tokens that may not ask themselves (a login of a role with
 * `token_no_default_policy` has no `default`, which is what allows sys/capabilities-self).
 */
export async function capabilitiesOfAccessor(root: VaultClient, accessor: string, paths: string[]): Promise<Record<string, string[]>> {
  if (paths.length === 0) return {};
  const res = await root.write("sys/capabilities-accessor", { accessor, paths });
  if (res.status !== 200)
    throw new HarnessError(
      `POST sys/capabilities-accessor: ${describeResponse(res)} (the token needs update on sys/capabilities-accessor)`,
    );
  return capabilitiesFromBody(res.body, paths);
}

/**
 * What a token holding exactly `policies` may do on each path: a 60-second orphan token with those
 * policies (and `default` only when listed) is asked about by accessor (`sys/capabilities-accessor`,
 * with `root`'s token: a token without `default` may not call capabilities-self) and revoked at
 * once (`auth/token/revoke-accessor`). No token is created for an empty list (Vault would give the
 * new token the parent's policies) or for one holding `root` (answered as `root` everywhere).
 */
export async function capabilitiesForPolicies(root: VaultClient, policies: string[], paths: string[]): Promise<Record<string, string[]>> {
  const list = [...new Set(policies)].sort();
  if (list.includes("root")) return Object.fromEntries(paths.map((p) => [p, ["root"]]));
  if (list.length === 0) return Object.fromEntries(paths.map((p) => [p, ["deny"]]));
  if (paths.length === 0) return {};
  const res = await root.write<{ auth?: { client_token?: string; accessor?: string } }>("auth/token/create-orphan", {
    policies: list,
    no_default_policy: !list.includes("default"),
    ttl: "60s",
    explicit_max_ttl: "60s",
    renewable: false,
    display_name: "vkc-capabilities",
    meta: { purpose: "vault-k8s-conformance capabilities probe" },
  });
  const token = registerSecret(res.body?.auth?.client_token);
  const accessor = res.body?.auth?.accessor;
  if (res.status !== 200 || !token || !accessor)
    throw new HarnessError(
      `cannot create a token with policies [${list.join(", ")}] to ask its capabilities: POST auth/token/create-orphan: ${describeResponse(res)} (the token needs sudo on auth/token/create-orphan)`,
    );
  try {
    const caps = await root.write("sys/capabilities-accessor", { accessor, paths });
    if (caps.status === 200) return capabilitiesFromBody(caps.body, paths);
    // A caller that may not ask by accessor: the token itself can, if it holds `default`.
    if (list.includes("default")) return await capabilitiesOf(root.withToken(token), paths);
    throw new HarnessError(
      `POST sys/capabilities-accessor: ${describeResponse(caps)} (the token needs update on sys/capabilities-accessor)`,
    );
  } finally {
    const r = await root.write("auth/token/revoke-accessor", { accessor }).catch(() => undefined);
    if (!r || r.status >= 300)
      await root
        .withToken(token)
        .write("auth/token/revoke-self", {})
        .catch(() => undefined);
  }
}

/** `+` is one whole segment; `*` only at the end (Vault's rules for a policy path). */
export function validPathPattern(p: string): string | undefined {
  if (p === "") return "empty path";
  if (p.includes("{{")) return undefined;
  if (/\s/.test(p)) return "whitespace in path";
  const star = p.indexOf("*");
  if (star !== -1 && star !== p.length - 1) return "`*` is only allowed at the end of a path";
  for (const seg of p.replace(/\*$/, "").split("/")) if (seg.includes("+") && seg !== "+") return "`+` must be a whole path segment";
  return undefined;
}

/** Whether a Vault policy path pattern matches a concrete path (`+` one segment, trailing `*` any suffix). */
export function pathMatches(pattern: string, path: string): boolean {
  const glob = pattern.endsWith("*");
  const pat = glob ? pattern.slice(0, -1) : pattern;
  const ps = pat.split("/");
  const vs = path.split("/");
  for (let i = 0; i < ps.length; i++) {
    const last = i === ps.length - 1;
    const seg = ps[i]!;
    const val = vs[i];
    if (val === undefined) return false;
    if (last && glob) {
      // The final pattern segment is a prefix of the path's remainder (which may span segments).
      const rest = vs.slice(i).join("/");
      return seg === "+" ? false : rest.startsWith(seg);
    }
    if (seg === "+") {
      if (val === "" && !last) return false;
      continue;
    }
    if (seg !== val) return false;
  }
  return glob ? false : vs.length === ps.length;
}

/**
 * Vault's priority between two patterns matching one path (docs: "Priority matching"): returns
 * > 0 when `a` wins. The first wildcard later wins; no trailing `*` wins; fewer `+` wins; longer
 * wins; lexicographically larger wins.
 */
export function comparePriority(a: string, b: string): number {
  const firstWild = (p: string) => {
    const i = p.search(/\+|\*/);
    return i === -1 ? Number.MAX_SAFE_INTEGER : i;
  };
  const fa = firstWild(a);
  const fb = firstWild(b);
  if (fa !== fb) return fa - fb;
  const ga = a.endsWith("*") ? 1 : 0;
  const gb = b.endsWith("*") ? 1 : 0;
  if (ga !== gb) return gb - ga;
  const plus = (p: string) => p.split("/").filter((s) => s === "+").length;
  if (plus(a) !== plus(b)) return plus(b) - plus(a);
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The intent pattern that decides a path, as Vault picks between policy paths; undefined if none matches. */
export function decidingPattern(patterns: string[], path: string): string | undefined {
  let best: string | undefined;
  for (const p of patterns) if (pathMatches(p, path) && (best === undefined || comparePriority(p, best) > 0)) best = p;
  return best;
}

/**
 * The capabilities an intent allows on a path: the most specific matching pattern decides, as in a
 * Vault policy (so a narrower `deny` overrides a wider grant). `deny`, or no match, allows nothing.
 */
export function intentCovers(intent: Record<string, string[]>, path: string): string[] {
  const p = decidingPattern(Object.keys(intent), path);
  if (p === undefined) return [];
  const caps = intent[p] ?? [];
  if (caps.includes("deny")) return [];
  return [...new Set(caps)].sort();
}

/** Capabilities in `actual` beyond what `allowed` permits (`root` is beyond anything short of itself; `deny` grants nothing). */
export function capabilitiesBeyond(actual: string[], allowed: string[]): string[] {
  if (actual.includes("root")) return allowed.includes("root") ? [] : ["root"];
  return actual.filter((c) => c !== "deny" && !allowed.includes(c));
}
