/**
 * An intent file: who is meant to log in as what, and what each role is meant to be able to do.
 *
 *   mounts:
 *     kubernetes:
 *       roles:
 *         payments:
 *           login:
 *             - { serviceAccount: payments, namespace: prod }
 *             - { serviceAccount: "web-*", namespaceSelector: "team=web" }
 *           capabilities:
 *             "secret/data/payments/*": [read]
 *
 * Login entries take the plugin's glob shapes (`*`, `pre*`, `*suf`); `namespaceSelector` is
 * `k=v[,k=v]` over namespace labels. Capability patterns are Vault policy paths (`+`, trailing
 * `*`); the most specific pattern decides, as in a policy. A role without `capabilities` is not
 * checked for them; `capabilities: {}` means it is meant to have none.
 */
import { readFileSync } from "node:fs";
import { loadYaml } from "@kubernetes/client-node";
import { UsageError, errorMessage } from "../errors.ts";
import { effectiveAccepted, idKey, type AuditReport } from "./audit.ts";
import { VAULT_CAPABILITIES, capabilitiesBeyond, intentCovers, validPathPattern } from "./capabilities.ts";
import { globMatch, parseLabelSelector } from "./match.ts";

export { parseLabelSelector };

export interface IntentLogin {
  serviceAccount: string;
  namespace?: string;
  namespaceSelector?: Record<string, string>;
}

export interface IntentRole {
  login: IntentLogin[];
  capabilities?: Record<string, string[]>;
}

export interface Intent {
  file: string;
  mounts: Record<string, { roles: Record<string, IntentRole> }>;
}

const CAPS = new Set<string>(VAULT_CAPABILITIES);

function fail(file: string, where: string, what: string): never {
  throw new UsageError(`intent ${file}: ${where}: ${what}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function onlyKeys(file: string, where: string, o: Record<string, unknown>, allowed: string[]): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) fail(file, where, `unknown key "${k}" (allowed: ${allowed.join(", ")})`);
}

/** Parses and checks an intent document; every problem is one line (a UsageError: exit 2). */
export function parseIntent(text: string, file = "(intent)"): Intent {
  let doc: unknown;
  try {
    doc = loadYaml(text);
  } catch (err) {
    fail(file, "YAML", errorMessage(err).split("\n")[0]!);
  }
  if (!isObject(doc)) fail(file, "top level", "must be a mapping with `mounts`");
  onlyKeys(file, "top level", doc, ["mounts"]);
  if (!isObject(doc.mounts) || Object.keys(doc.mounts).length === 0) fail(file, "mounts", "must map at least one auth mount to its roles");
  const intent: Intent = { file, mounts: {} };
  for (const [mountRaw, m] of Object.entries(doc.mounts)) {
    const mount = mountRaw.replace(/^\/+|\/+$/g, "");
    const wm = `mounts.${mountRaw}`;
    if (!mount || /\s/.test(mount)) fail(file, wm, "malformed mount path");
    if (!isObject(m)) fail(file, wm, "must be a mapping with `roles`");
    onlyKeys(file, wm, m, ["roles"]);
    if (!isObject(m.roles)) fail(file, `${wm}.roles`, "must map role names to their intent");
    const roles: Record<string, IntentRole> = {};
    for (const [roleRaw, r] of Object.entries(m.roles)) {
      const wr = `${wm}.roles.${roleRaw}`;
      const role = roleRaw.toLowerCase(); // Vault stores role names in lower case
      if (!isObject(r)) fail(file, wr, "must be a mapping with `login` (and optionally `capabilities`)");
      onlyKeys(file, wr, r, ["login", "capabilities"]);
      const login: IntentLogin[] = [];
      if (r.login !== undefined && r.login !== null) {
        if (!Array.isArray(r.login)) fail(file, `${wr}.login`, "must be a list of {serviceAccount, namespace | namespaceSelector}");
        r.login.forEach((e, i) => {
          const we = `${wr}.login[${i}]`;
          if (!isObject(e)) fail(file, we, "must be {serviceAccount, namespace} or {serviceAccount, namespaceSelector}");
          onlyKeys(file, we, e, ["serviceAccount", "namespace", "namespaceSelector"]);
          if (typeof e.serviceAccount !== "string" || !e.serviceAccount) fail(file, we, "needs serviceAccount (a name or glob)");
          const hasNs = e.namespace !== undefined;
          const hasSel = e.namespaceSelector !== undefined;
          if (hasNs === hasSel) fail(file, we, "needs exactly one of namespace and namespaceSelector");
          if (hasNs) {
            if (typeof e.namespace !== "string" || !e.namespace) fail(file, we, "namespace must be a name or glob");
            login.push({ serviceAccount: e.serviceAccount, namespace: e.namespace });
          } else {
            const sel = typeof e.namespaceSelector === "string" ? parseLabelSelector(e.namespaceSelector) : undefined;
            if (!sel) fail(file, we, `namespaceSelector must be "key=value[,key=value]" (got ${JSON.stringify(e.namespaceSelector)})`);
            login.push({ serviceAccount: e.serviceAccount, namespaceSelector: sel });
          }
        });
      }
      let capabilities: Record<string, string[]> | undefined;
      if (r.capabilities !== undefined && r.capabilities !== null) {
        if (!isObject(r.capabilities)) fail(file, `${wr}.capabilities`, "must map Vault path patterns to capability lists");
        capabilities = {};
        for (const [path, caps] of Object.entries(r.capabilities)) {
          const wp = `${wr}.capabilities."${path}"`;
          const bad = path.includes("{{") ? "templated paths cannot be checked" : validPathPattern(path.replace(/^\/+/, ""));
          if (bad) fail(file, wp, `malformed path: ${bad}`);
          if (!Array.isArray(caps)) fail(file, wp, "must be a list of capabilities");
          for (const c of caps)
            if (typeof c !== "string" || !CAPS.has(c))
              fail(file, wp, `"${String(c)}" is not a Vault capability (${VAULT_CAPABILITIES.join(", ")})`);
          capabilities[path.replace(/^\/+/, "")] = [...new Set(caps as string[])].sort();
        }
      }
      if (roles[role]) fail(file, wr, `role ${role} is listed twice (role names are case-insensitive)`);
      roles[role] = { login, ...(capabilities ? { capabilities } : {}) };
    }
    intent.mounts[mount] = { roles };
  }
  return intent;
}

export function loadIntent(path: string): Intent {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read intent ${path}: ${errorMessage(err).split("\n")[0]}`);
  }
  return parseIntent(text, path);
}

/** Intent mounts and roles the Vault does not have: one line, exit 2. */
export function checkIntentNames(intent: Intent, have: Record<string, string[]>): void {
  for (const [mount, m] of Object.entries(intent.mounts)) {
    if (!have[mount])
      throw new UsageError(
        `intent ${intent.file}: mounts.${mount}: Vault has no kubernetes auth mount ${mount}/ (has: ${Object.keys(have).join(", ") || "none"})`,
      );
    for (const role of Object.keys(m.roles))
      if (!have[mount]!.includes(role))
        throw new UsageError(
          `intent ${intent.file}: mounts.${mount}.roles.${role}: mount ${mount}/ has no role ${role} (has: ${have[mount]!.join(", ") || "none"})`,
        );
  }
}

/** Whether an intent login entry covers an identity. */
export function loginCovers(
  e: IntentLogin,
  who: { namespace: string; serviceAccount: string; namespaceLabels?: Record<string, string> },
): boolean {
  if (!globMatch(e.serviceAccount, who.serviceAccount)) return false;
  if (e.namespace !== undefined) return globMatch(e.namespace, who.namespace);
  const labels = who.namespaceLabels ?? {};
  return Object.entries(e.namespaceSelector ?? {}).every(([k, v]) => labels[k] === v);
}

function describeLogin(e: IntentLogin): string {
  return `${
    e.namespace ??
    `{${Object.entries(e.namespaceSelector ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(",")}}`
  }/${e.serviceAccount}`;
}

// ---- comparing an audit with an intent -----------------------------------------------------------

/**
 * Deviations of an audit from an intent, one line each: an accepted identity the intent does not
 * name, an intended identity (an existing ServiceAccount an entry covers) that is refused, a
 * capability beyond intent (path, capability, the policy granting it). Roles of a mount the intent
 * names but not the role itself are meant to let nobody in. Mounts the intent does not name are
 * not checked.
 */
export function compareWithIntent(report: AuditReport, intent: Intent): string[] {
  const out: string[] = [];
  const labelsOf = (ns: string) => report.kube.namespaces[ns] ?? {};
  for (const [mount, m] of Object.entries(intent.mounts)) {
    const am = report.mounts[mount];
    if (!am) continue;
    for (const [role, r] of Object.entries(am.roles)) {
      const ir = m.roles[role];
      const login = ir?.login ?? [];
      const accepted = effectiveAccepted(r);
      const acceptedKeys = new Set(accepted.map(idKey));
      const how = r.probe && !r.cidr?.excludesAuditHost ? "accepts" : "would accept";
      for (const who of accepted) {
        if (!login.some((e) => loginCovers(e, { ...who, namespaceLabels: labelsOf(who.namespace) }))) {
          const why = r.accepted.find((a) => idKey(a) === idKey(who))?.why;
          out.push(`${mount}/${role}: ${how} ${idKey(who)}${why ? ` (${why})` : ""}, which the intent does not name`);
        }
      }
      // Every existing ServiceAccount an intent entry covers must get in.
      for (const e of login) {
        const covered = report.identities.filter((who) => loginCovers(e, { ...who, namespaceLabels: labelsOf(who.namespace) }));
        for (const who of covered)
          if (!acceptedKeys.has(idKey(who)))
            out.push(`${mount}/${role}: refuses ${idKey(who)}, which the intent names (${describeLogin(e)})`);
      }
      if (ir?.capabilities) {
        for (const [path, c] of Object.entries(r.capabilities)) {
          const extra = capabilitiesBeyond(c.capabilities, intentCovers(ir.capabilities, path));
          for (const cap of extra) {
            const by = c.grantedBy[cap] ?? [];
            out.push(
              `${mount}/${role}: ${cap} on ${path} is beyond the intent, granted by ${by.length ? `policy ${by.join(", ")}` : "the combination of its policies"}`,
            );
          }
        }
      }
    }
  }
  return out;
}
