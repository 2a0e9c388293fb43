import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { loadYaml } from "@kubernetes/client-node";
import { VAULT_CAPABILITIES, validPathPattern as pathProblem } from "../access/capabilities.ts";
import { UsageError } from "../errors.ts";

/**
 * User-defined conformance cases (fixtures/cases/*.yaml): the policies, roles and expected
 * outcomes of *your* setup, run by suites/fixture-cases.test.ts against a real target.
 */
export interface Expect {
  status: number;
  error?: string;
  policies?: string[];
  data?: Record<string, unknown>;
  /** A successful login's token lease may not exceed this many seconds. */
  maxLeaseSeconds?: number;
}
export interface CaseFile {
  file: string;
  name: string;
  mounts?: Record<string, { type: "kv"; version?: 1 | 2 }>;
  seed?: { path: string; body: Record<string, unknown> }[];
  policies?: Record<string, string>;
  serviceAccounts?: string[];
  roles?: Record<string, Record<string, unknown>>;
  /** Extra fields for the auth mount's config (e.g. issuer settings); host, CA and reviewer JWT come from the target. */
  authConfig?: Record<string, unknown>;
  /**
   * The reviewer as the case sets it up: `bind: false` skips its ClusterRoleBinding;
   * `deleteServiceAccount` deletes it after configuring Vault; `readNamespaces: true` also lets it
   * get namespaces (what bound_service_account_namespace_selector needs; not in system:auth-delegator).
   */
  reviewer?: { bind?: boolean; deleteServiceAccount?: boolean; readNamespaces?: boolean };
  /** HCL appended to Vault's `default` policy for the case (restored afterwards; run such cases alone). */
  defaultPolicy?: { append: string };
  /** `namespace: other` logs in from a second namespace of the case, where the ServiceAccount is created too. */
  logins?: { role: string; serviceAccount: string; namespace?: "other"; audiences?: string[]; expect: Expect }[];
  requests?: { as: string; method: string; path: string; body?: Record<string, unknown>; expect: Expect }[];
  /**
   * What each role is meant to allow, declared once (see lib/access/intent.ts): who may log in
   * (default: the identities of the case's logins that expect 200) and what its token may do
   * beyond Vault's stock `default` policy (explicit: the policy files are what is under test).
   */
  intent?: Record<string, RoleIntent>;
}

export interface LoginIntent {
  serviceAccount: string;
  /** A namespace of the case: "${namespace}" (the default) or "${other}", or any literal name. */
  namespace?: string;
  /** Instead of a namespace: namespaces whose labels match (k=v[,k=v]). */
  namespaceSelector?: string;
}
export interface RoleIntent {
  login?: LoginIntent[];
  /** Path pattern (Vault's `*` suffix glob and `+` segment) -> capabilities. */
  capabilities?: Record<string, string[]>;
  /** The role is meant to alias entities by name: a recreated ServiceAccount keeps its entity. */
  aliasByName?: boolean;
}

/** A Vault path pattern as an intent may write it (capabilities.ts's rule, and no leading or double slash). */
export function validPathPattern(p: string): boolean {
  return typeof p === "string" && !p.startsWith("/") && !p.includes("//") && !p.includes("{{") && pathProblem(p) === undefined;
}

function checkIntent(doc: CaseFile, file: string): void {
  if (doc.intent === undefined) return;
  check(doc.intent && typeof doc.intent === "object" && !Array.isArray(doc.intent), file, "`intent` must map role names to their intent");
  for (const [role, ri] of Object.entries(doc.intent)) {
    check(
      doc.roles?.[role] !== undefined,
      file,
      `intent names unknown role "${role}" (roles: ${Object.keys(doc.roles ?? {}).join(", ") || "none"})`,
    );
    check(
      ri && typeof ri === "object" && !Array.isArray(ri),
      file,
      `intent of role "${role}" must be a mapping (login, capabilities, aliasByName)`,
    );
    for (const k of Object.keys(ri))
      check(
        ["login", "capabilities", "aliasByName"].includes(k),
        file,
        `intent of role "${role}": unknown key "${k}" (allowed: login, capabilities, aliasByName)`,
      );
    if (ri.login !== undefined) {
      check(Array.isArray(ri.login), file, `intent.${role}.login must be a list of {serviceAccount, namespace | namespaceSelector}`);
      for (const l of ri.login)
        check(
          l && typeof l.serviceAccount === "string" && l.serviceAccount !== "" && !(l.namespace && l.namespaceSelector),
          file,
          `intent.${role}.login: each entry needs serviceAccount and at most one of namespace, namespaceSelector`,
        );
    }
    if (ri.capabilities !== undefined) {
      check(
        ri.capabilities && typeof ri.capabilities === "object" && !Array.isArray(ri.capabilities),
        file,
        `intent.${role}.capabilities must map paths to capability lists`,
      );
      for (const [path, caps] of Object.entries(ri.capabilities)) {
        check(
          validPathPattern(path),
          file,
          `intent.${role}.capabilities: malformed path "${path}" (segments, "+" for one segment, "*" only at the end, no leading "/")`,
        );
        check(Array.isArray(caps), file, `intent.${role}.capabilities."${path}" must be a list of capabilities`);
        for (const c of caps)
          check(
            (VAULT_CAPABILITIES as readonly string[]).includes(c),
            file,
            `intent.${role}.capabilities."${path}": "${c}" is not a Vault capability (${VAULT_CAPABILITIES.join(", ")})`,
          );
      }
    }
    check(ri.aliasByName === undefined || typeof ri.aliasByName === "boolean", file, `intent.${role}.aliasByName must be true or false`);
  }
}

function check(cond: unknown, file: string, what: string): asserts cond {
  if (!cond) throw new UsageError(`invalid case file ${file}: ${what}`);
}

/** Why `path` could not be read, in words ("permission denied", "it is a directory", "a dangling symlink to X"). */
export function unreadableReason(err: unknown, path: string): string {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === "ENOENT") {
    try {
      if (lstatSync(path).isSymbolicLink()) return `it is a dangling symlink to ${readlinkSync(path)}`;
    } catch {
      // not there at all
    }
    return "it does not exist";
  }
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  if (code === "EISDIR") return "it is a directory";
  if (code === "ENOTDIR") return "a part of the path is not a directory";
  if (code === "ELOOP") return "too many levels of symlinks";
  return (err instanceof Error ? err.message : String(err)).split("\n")[0]!;
}

export function loadCases(fixturesDir: string): CaseFile[] {
  const dir = join(fixturesDir, "cases");
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((n) => /\.ya?ml$/.test(n))
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return []; // no cases directory: nothing user-defined to run
    throw new UsageError(
      `cannot read the case directory ${dir}: ${unreadableReason(err, dir)}: make it a readable directory, or remove it`,
    );
  }
  return names.map((n) => {
    const file = join(dir, n);
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new UsageError(`cannot read case file ${file}: ${unreadableReason(err, file)}: make it a readable YAML file, or remove it`);
    }
    let doc: CaseFile;
    try {
      doc = loadYaml<CaseFile>(text);
    } catch (err) {
      throw new UsageError(`invalid YAML in ${file}: ${(err as Error).message.split("\n")[0]}`);
    }
    check(doc && typeof doc === "object", file, "not a mapping");
    check(typeof doc.name === "string", file, "`name` is required");
    check(
      doc.policies === undefined || (typeof doc.policies === "object" && !Array.isArray(doc.policies) && doc.policies !== null),
      file,
      "`policies` must map policy names to file names of the policies directory",
    );
    for (const [name, f] of Object.entries(doc.policies ?? {}))
      check(typeof f === "string" && f !== "", file, `policy "${name}" must name a file of ${join(fixturesDir, "policies")}`);
    check(
      doc.defaultPolicy === undefined || typeof doc.defaultPolicy?.append === "string",
      file,
      "`defaultPolicy.append` must be policy HCL (a string)",
    );
    for (const l of doc.logins ?? []) {
      check(doc.roles?.[l.role] !== undefined, file, `login uses unknown role "${l.role}"`);
      check(typeof l.expect?.status === "number", file, `login for role "${l.role}" needs expect.status`);
    }
    for (const r of doc.requests ?? []) {
      check(
        (doc.logins ?? []).some((l) => l.role === r.as),
        file,
        `request "${r.method} ${r.path}" uses "${r.as}", which no login defines`,
      );
      check(typeof r.expect?.status === "number", file, `request "${r.method} ${r.path}" needs expect.status`);
    }
    checkIntent(doc, file);
    return { ...doc, file };
  });
}

/** Replaces ${namespace} (and friends) in role fields. */
export function substitute<T>(value: T, vars: Record<string, string>): T {
  return JSON.parse(JSON.stringify(value).replace(/\$\{(\w+)\}/g, (m, k: string) => vars[k] ?? m)) as T;
}

/** Maps a request path's first segment (a logical mount name of the case) to this run's mount. */
export function mapPath(path: string, mounts: Record<string, string>): string {
  const [first, ...rest] = path.split("/");
  return first && mounts[first] ? [mounts[first], ...rest].join("/") : path;
}
