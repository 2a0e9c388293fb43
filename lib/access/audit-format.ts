/** The audit as a compact console table and as Markdown (fit for $GITHUB_STEP_SUMMARY). */
import { formatDuration } from "../log.ts";
import type { AuditReport, RoleAudit } from "./audit.ts";

interface Extra {
  deviations: string[];
  disagreements: string[];
  intentFile?: string;
  files?: string[];
}

const WRITE = new Set(["create", "update", "patch", "delete", "sudo", "root"]);

function counts(r: Record<string, number>): string {
  const e = Object.entries(r).sort(([a], [b]) => a.localeCompare(b));
  return e.length ? e.map(([k, v]) => `${v} ${shortReason(k)}`).join(", ") : "0";
}

function shortReason(k: string): string {
  return k
    .replace(/^HTTP (\d+): /, "$1 ")
    .replace("service account name not authorized", "name")
    .replace("namespace not authorized", "namespace");
}

function probeCell(r: RoleAudit): string {
  if (!r.probe) return "-";
  const p = r.probe;
  const parts = [p.disagreements.length ? `${p.disagreements.length} DISAGREE` : "agrees"];
  if (p.skipped.length) parts.push(`${p.skipped.length} skipped`);
  return `${p.accepted.length} in; ${parts.join(", ")}`;
}

/** Paths with any capability, and those some policy other than `default` grants (writable ones counted apart). */
function capsCell(r: RoleAudit): string {
  const paths = Object.entries(r.capabilities);
  const own = paths.filter(([, c]) => Object.values(c.grantedBy).some((by) => by.length === 0 || by.some((p) => p !== "default")));
  const writes = own.filter(([, c]) => c.capabilities.some((x) => WRITE.has(x))).length;
  return `${paths.length} paths, ${own.length} beyond default (${writes} writable)`;
}

function acceptedCell(r: RoleAudit): string {
  const n = r.accepted.length;
  if (r.cidr?.excludesAuditHost) return `${n} (from inside ${r.cidr.bound.join(",")} only)`;
  return String(n);
}

function rows(report: AuditReport): string[][] {
  const out: string[][] = [];
  for (const [m, mount] of Object.entries(report.mounts))
    for (const [name, r] of Object.entries(mount.roles))
      out.push([m, name, r.definition.shape, acceptedCell(r), counts(r.refused), probeCell(r), capsCell(r)]);
  return out;
}

const HEAD = ["mount", "role", "shape", "accepted", "refused", "probe", "capabilities"];

function verdict(report: AuditReport, x: Extra): string {
  const parts: string[] = [];
  if (report.mode === "probe")
    parts.push(x.disagreements.length ? `${x.disagreements.length} static/probe disagreement(s)` : "static and probe agree");
  if (x.intentFile)
    parts.push(x.deviations.length ? `${x.deviations.length} deviation(s) from ${x.intentFile}` : `matches ${x.intentFile}`);
  return parts.join("; ");
}

export function formatAuditConsole(report: AuditReport, x: Extra): string {
  const table = [HEAD, ...rows(report)];
  const widths = HEAD.map((_, i) => Math.min(48, Math.max(...table.map((r) => r[i]!.length))));
  const line = (r: string[]) =>
    r
      .map((c, i) => (c.length > widths[i]! ? c.slice(0, widths[i]! - 1) + "…" : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  const roles = table.length - 1;
  const out = [
    `audit (${report.mode}) of ${report.kube.serviceAccounts} ServiceAccounts in ${Object.keys(report.kube.namespaces).length} namespaces, ${roles} role(s) in ${Object.keys(report.mounts).length} kubernetes auth mount(s), from ${report.auditHost} in ${formatDuration(report.timings.total ?? 0)}`,
    line(table[0]!),
    ...table.slice(1).map(line),
  ];
  for (const d of x.disagreements.slice(0, 20)) out.push(`DISAGREE ${d}`);
  if (x.disagreements.length > 20) out.push(`... and ${x.disagreements.length - 20} more disagreement(s) (see the reports)`);
  for (const d of x.deviations.slice(0, 30)) out.push(`DEVIATION ${d}`);
  if (x.deviations.length > 30) out.push(`... and ${x.deviations.length - 30} more deviation(s) (see the reports)`);
  const v = verdict(report, x);
  if (v) out.push(v);
  if (x.files?.length) out.push(`written: ${x.files.join(", ")}`);
  return out.join("\n") + "\n";
}

/** For a table cell: `|` escaped (also inside code spans, as GFM tables need). */
const esc = (s: string) => s.replace(/\|/g, "\\|");
/** For prose in a table cell: also `*` and `_`, which globs are full of. */
const escText = (s: string) => esc(s).replace(/([*_])/g, "\\$1");

export function formatAuditMarkdown(report: AuditReport, x: Extra, maxIdentities = 50): string {
  const out: string[] = [
    `# Audit: who can log in as what`,
    "",
    `${report.mode === "probe" ? "Static and real logins" : "Static (no logins)"}, ${report.generatedAt}: Kubernetes ${esc(report.kube.server)} (context ${esc(report.kube.context)}), ${report.kube.serviceAccounts} ServiceAccounts in ${Object.keys(report.kube.namespaces).length} namespaces; Vault ${esc(report.vault.address)}${report.vault.version ? ` ${report.vault.version}` : ""}; audited from ${report.auditHost}.`,
    "",
  ];
  const v = verdict(report, x);
  if (v) out.push(`**${v}**`, "");
  out.push(
    `| ${HEAD.join(" | ")} |`,
    `|${HEAD.map(() => "---").join("|")}|`,
    ...rows(report).map((r) => `| ${r.map(escText).join(" | ")} |`),
    "",
  );
  if (x.disagreements.length) out.push("## Static and real logins disagree", "", ...x.disagreements.map((d) => `- ${escText(d)}`), "");
  if (x.deviations.length)
    out.push(`## Deviations from ${x.intentFile ?? "the intent"}`, "", ...x.deviations.map((d) => `- ${escText(d)}`), "");
  for (const [m, mount] of Object.entries(report.mounts)) {
    for (const [name, r] of Object.entries(mount.roles)) {
      const d = r.definition;
      out.push(`## ${m}/${name}`, "");
      out.push(
        `- names: ${d.names.map((n) => `\`${n}\``).join(", ") || "(none)"}; namespaces: ${d.namespaces.map((n) => `\`${n}\``).join(", ") || "(none)"}${d.selector ? `; selector \`${esc(d.selector)}\`` : ""}${d.audience ? `; audience \`${d.audience}\`` : ""}`,
        `- policies: ${d.policies.join(", ") || "(none)"}`,
      );
      if (r.cidr)
        out.push(
          `- token_bound_cidrs ${r.cidr.bound.join(", ")}: ${r.cidr.excludesAuditHost ? `exclude this host (${r.cidr.auditHost}); the identities below get in only from inside them` : `include this host (${r.cidr.auditHost})`}`,
        );
      out.push(`- refused: ${counts(r.refused)}`, "");
      if (r.accepted.length) {
        out.push("| accepted | why |", "|---|---|");
        for (const a of r.accepted.slice(0, maxIdentities)) out.push(`| ${a.namespace}/${a.serviceAccount} | ${escText(a.why)} |`);
        if (r.accepted.length > maxIdentities) out.push(`| ... | and ${r.accepted.length - maxIdentities} more (in the JSON report) |`);
        out.push("");
      }
      const caps = Object.entries(r.capabilities);
      if (caps.length) {
        out.push("| path | capabilities | granted by |", "|---|---|---|");
        for (const [p, c] of caps)
          out.push(
            `| \`${esc(p)}\` | ${c.capabilities.join(", ")} | ${esc(
              Object.entries(c.grantedBy)
                .map(([cap, by]) => `${cap}: ${by.join(", ") || "(combination)"}`)
                .join("; "),
            )} |`,
          );
        out.push("");
      }
    }
  }
  return out.join("\n") + "\n";
}
