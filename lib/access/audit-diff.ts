/**
 * Two audits side by side (before and after an upgrade, or a change of roles or policies): who
 * gained or lost access to which role, which namespaces a role newly reaches, and capabilities
 * gained or lost per role. Anything gained is what a reviewer must look at: exit 1.
 */
import { readFileSync } from "node:fs";
import { UsageError, errorMessage } from "../errors.ts";
import { AUDIT_SCHEMA, effectiveAccepted, idKey, type AuditReport, type RoleAudit } from "./audit.ts";

export interface RoleDiff {
  mount: string;
  role: string;
  change: "added" | "removed" | "changed";
  identitiesGained: string[];
  identitiesLost: string[];
  namespacesGained: string[];
  namespacesLost: string[];
  /** `<capability> on <path>`. */
  capabilitiesGained: string[];
  capabilitiesLost: string[];
}

export interface AuditDiff {
  roles: RoleDiff[];
  gained: number;
  lost: number;
}

export function parseAudit(text: string, file: string): AuditReport {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${file} is not JSON: ${errorMessage(err).split("\n")[0]}`);
  }
  if (
    !doc ||
    typeof doc !== "object" ||
    (doc as { schema?: unknown }).schema !== AUDIT_SCHEMA ||
    typeof (doc as AuditReport).mounts !== "object"
  )
    throw new UsageError(`${file} is not an audit (${AUDIT_SCHEMA}) written by npm run audit`);
  return doc as AuditReport;
}

export function loadAudit(file: string): AuditReport {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${errorMessage(err).split("\n")[0]}`);
  }
  return parseAudit(text, file);
}

function capSet(r: RoleAudit | undefined): Set<string> {
  const s = new Set<string>();
  for (const [p, c] of Object.entries(r?.capabilities ?? {})) for (const cap of c.capabilities) s.add(`${cap} on ${p}`);
  return s;
}

const minus = (a: Set<string>, b: Set<string>) => [...a].filter((x) => !b.has(x)).sort();

export function diffAudits(before: AuditReport, after: AuditReport): AuditDiff {
  const roles: RoleDiff[] = [];
  const keys = new Set<string>();
  for (const r of [before, after])
    for (const [m, mount] of Object.entries(r.mounts)) for (const role of Object.keys(mount.roles)) keys.add(`${m}\u0000${role}`);
  for (const k of [...keys].sort()) {
    const [mount, role] = k.split("\u0000") as [string, string];
    const a = before.mounts[mount]?.roles[role];
    const b = after.mounts[mount]?.roles[role];
    const ids = (r: RoleAudit | undefined) => new Set(r ? effectiveAccepted(r).map(idKey) : []);
    const nss = (r: RoleAudit | undefined) => new Set(r ? effectiveAccepted(r).map((i) => i.namespace) : []);
    const d: RoleDiff = {
      mount,
      role,
      change: !a ? "added" : !b ? "removed" : "changed",
      identitiesGained: minus(ids(b), ids(a)),
      identitiesLost: minus(ids(a), ids(b)),
      namespacesGained: minus(nss(b), nss(a)),
      namespacesLost: minus(nss(a), nss(b)),
      capabilitiesGained: minus(capSet(b), capSet(a)),
      capabilitiesLost: minus(capSet(a), capSet(b)),
    };
    const any = d.identitiesGained.length + d.identitiesLost.length + d.capabilitiesGained.length + d.capabilitiesLost.length;
    if (any || d.change !== "changed") roles.push(d);
  }
  return {
    roles,
    gained: roles.reduce((n, r) => n + r.identitiesGained.length + r.capabilitiesGained.length, 0),
    lost: roles.reduce((n, r) => n + r.identitiesLost.length + r.capabilitiesLost.length, 0),
  };
}

export function formatAuditDiff(d: AuditDiff, names: { before: string; after: string }, maxPerList = 20): string {
  const list = (sign: string, what: string, xs: string[]) =>
    xs.length
      ? [
          `    ${sign} ${what}: ${xs.slice(0, maxPerList).join(", ")}${xs.length > maxPerList ? `, ... (${xs.length - maxPerList} more)` : ""}`,
        ]
      : [];
  const out = [`audit diff ${names.before} -> ${names.after}: ${d.gained} gained, ${d.lost} lost`];
  for (const r of d.roles) {
    out.push(`  ${r.mount}/${r.role}${r.change === "changed" ? "" : ` (${r.change})`}:`);
    out.push(
      ...list("+", "namespaces", r.namespacesGained),
      ...list("+", "identities", r.identitiesGained),
      ...list("+", "capabilities", r.capabilitiesGained),
      ...list("-", "namespaces", r.namespacesLost),
      ...list("-", "identities", r.identitiesLost),
      ...list("-", "capabilities", r.capabilitiesLost),
    );
  }
  if (!d.roles.length) out.push("  no role gained or lost anything");
  return out.join("\n") + "\n";
}
