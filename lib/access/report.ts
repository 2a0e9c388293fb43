import type { AccessMap, CapabilityMap, IdentityRecord } from "./probe.ts";

/** What the probe cases attach to their test (vitest task meta), for the reporter to collect. */
declare module "vitest" {
  interface TaskMeta {
    vkcAccess?: AccessMap;
    vkcCapabilities?: CapabilityMap;
    vkcIdentity?: IdentityRecord;
  }
}

/** Format marker of access.json (schemas/access.v1.schema.json). */
export const ACCESS_SCHEMA = "vault-k8s-conformance/access/v1";

export interface AccessReport {
  schema: typeof ACCESS_SCHEMA;
  /** Format version of access.json (the v of `schema`). */
  version: 1;
  access: AccessMap[];
  capabilities: CapabilityMap[];
  identity: IdentityRecord[];
}

export function collectAccess(metas: Iterable<Record<string, unknown>>): AccessReport {
  const r: AccessReport = { schema: ACCESS_SCHEMA, version: 1, access: [], capabilities: [], identity: [] };
  for (const m of metas) {
    if (m.vkcAccess) r.access.push(m.vkcAccess as AccessMap);
    if (m.vkcCapabilities) r.capabilities.push(m.vkcCapabilities as CapabilityMap);
    if (m.vkcIdentity) r.identity.push(m.vkcIdentity as IdentityRecord);
  }
  const byCaseRole = (a: { case: string; role: string }, b: { case: string; role: string }) =>
    a.case.localeCompare(b.case) || a.role.localeCompare(b.role);
  r.access.sort(byCaseRole);
  r.capabilities.sort(byCaseRole);
  r.identity.sort(byCaseRole);
  return r;
}

const esc = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

/** The maps as markdown tables for summary.md. */
export function accessMarkdown(r: AccessReport): string {
  if (!r.access.length && !r.capabilities.length && !r.identity.length) return "";
  const lines: string[] = [];
  if (r.access.length) {
    lines.push("### Access map (who can log in as what)", "", "| case | role | accepted | refused | verdict |", "|---|---|---|---|---|");
    for (const a of r.access) {
      const refused = Object.entries(a.refused)
        .sort((x, y) => y[1] - x[1])
        .map(([e, n]) => `${n} × ${e}`)
        .join("<br>");
      const accepted = a.accepted.length ? a.accepted.join("<br>") : "nobody";
      const verdict = a.deviations.length
        ? `**${a.deviations.length} deviation(s)**<br>${a.deviations.map(esc).join("<br>")}`
        : "as intended";
      lines.push(
        `| ${esc(a.case)} | ${esc(a.role)}${a.cidrBound ? ` (from ${a.cidrBound.join(", ")} only; static)` : ""} | ${esc(accepted)} | ${esc(refused)} | ${verdict} |`,
      );
    }
    lines.push("");
  }
  if (r.capabilities.length) {
    lines.push(
      "### Capability map (what each role's token can do beyond Vault's default policy)",
      "",
      "| case | role | path | capabilities |",
      "|---|---|---|---|",
    );
    for (const c of r.capabilities) {
      const granted = Object.entries(c.added ?? c.granted);
      for (const [i, [p, caps]] of granted.entries())
        lines.push(`| ${i === 0 ? esc(c.case) : ""} | ${i === 0 ? esc(c.role) : ""} | \`${esc(p)}\` | ${caps.join(", ")} |`);
      const note = `${granted.length ? "" : "nothing beyond the default policy; "}${c.probed} paths probed via ${esc(c.via)}, ${c.checks.length} real requests: ${
        c.deviations.length ? `**${c.deviations.map(esc).join("; ")}**` : "nothing beyond intent"
      }`;
      lines.push(granted.length ? `| | | (${note}) | |` : `| ${esc(c.case)} | ${esc(c.role)} | (${note}) | |`);
    }
    lines.push("");
  }
  if (r.identity.length) {
    lines.push(
      "### Identity continuity (ServiceAccount deleted and recreated)",
      "",
      "| case | role | identity | alias source | entity | verdict |",
      "|---|---|---|---|---|---|",
    );
    for (const i of r.identity)
      lines.push(
        `| ${esc(i.case)} | ${esc(i.role)} | ${esc(i.identity)} | ${i.aliasNameSource} | ${i.sameEntity ? "same entity" : "new entity"} (${i.before.entityId.slice(0, 8)} -> ${i.after.entityId.slice(0, 8)}) | ${i.deviations.length ? `**${esc(i.deviations.join("; "))}**` : "as intended"} |`,
      );
    lines.push("");
  }
  return lines.join("\n");
}
