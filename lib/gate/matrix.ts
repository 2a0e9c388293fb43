import { join } from "node:path";
import type { IssuerMode } from "./types.ts";
import { ISSUER_MODES } from "./predict.ts";

/** Where the issuer-matrix suite (suites/issuer-matrix.test.ts) writes its cells: in the run's artifacts dir. */
export const ISSUER_MATRIX_FILE = "issuer-matrix.json";

/** The issuer-matrix suite's file of a run, from the run's reports dir and run id. */
export function issuerMatrixPath(reportsDir: string, runId: string): string {
  return join(reportsDir, "artifacts", runId, ISSUER_MATRIX_FILE);
}

/** What the issuer-matrix suite wrote for one persona (ISSUER_MATRIX_FILE). */
export interface PersonaCells {
  persona: string;
  flavor: string;
  versions: Record<string, string>;
  issuers: string[];
  discovered: string;
  cells: { mode: IssuerMode; token: string; iss: string; status: number; error?: string; predicted: { status: number; error?: string } }[];
}

export interface PersonaRun {
  persona: string;
  description: string;
  /** The persona's suite run: issuer, login and issuer-matrix suites. */
  totals: { passed: number; failed: number; skipped: number } | null;
  /** Ids of the cases that failed, if any. */
  failedCases?: string[];
  durationMs: number;
  matrix: PersonaCells | null;
  /** Why the run gave no verdict (target did not start, no results). */
  problem?: string;
}

export interface MatrixReport {
  createdAt: string;
  flavor: string;
  modes: readonly IssuerMode[];
  runs: PersonaRun[];
  /** True when every persona's suites passed and every cell matched its prediction. */
  consistent: boolean;
}

const MODE_TEXT: Record<IssuerMode, string> = {
  off: "validation off",
  discovered: "on, issuer = tokens' (discovered)",
  legacy: "on, issuer = kubernetes/serviceaccount",
  "pre-upgrade": "on, issuer = pre-upgrade (kind's)",
};

const TOKEN_SHORT: Record<string, string> = { bound: "bound", legacy: "legacy", "pre-migration": "old-iss" };

export function buildMatrix(flavor: string, runs: PersonaRun[]): MatrixReport {
  const consistent = runs.every(
    (r) => r.totals !== null && r.totals.failed === 0 && r.matrix !== null && r.matrix.cells.every((c) => c.status === c.predicted.status),
  );
  return { createdAt: new Date().toISOString(), flavor, modes: ISSUER_MODES, runs, consistent };
}

/** One cell: each token kind with ✓ (200) or ✗ (the status). */
export function cellText(m: PersonaCells | null, mode: IssuerMode): string {
  if (!m) return "no result";
  const cs = m.cells.filter((c) => c.mode === mode);
  if (!cs.length) return "-";
  return cs
    .map(
      (c) =>
        `${TOKEN_SHORT[c.token] ?? c.token} ${c.status === 200 ? "✓" : `✗${c.status}`}${c.status !== c.predicted.status ? " (!)" : ""}`,
    )
    .join(", ");
}

export function formatMatrixMarkdown(r: MatrixReport): string {
  const lines = [
    `## Kubernetes auth compatibility matrix (${r.flavor}, local target)`,
    "",
    "Which Vault issuer settings accept which tokens, per cluster persona: real logins, each checked against the prediction rules of `profile:diff`. " +
      "`bound` = TokenRequest token, `legacy` = token Secret, `old-iss` = a token issued before the issuer migration; ✓ = 200, ✗403 = rejected.",
    "",
    `| persona | tokens' issuer | ${r.modes.map((m) => MODE_TEXT[m]).join(" | ")} | suites |`,
    `|---|---|${r.modes.map(() => "---").join("|")}|---|`,
  ];
  for (const run of r.runs) {
    const suites = run.totals ? `${run.totals.passed} passed, ${run.totals.failed} failed` : `no verdict: ${run.problem ?? "unknown"}`;
    lines.push(
      `| ${run.persona} | ${run.matrix?.discovered ?? "-"} | ${r.modes.map((m) => cellText(run.matrix, m)).join(" | ")} | ${suites} (${(run.durationMs / 1000).toFixed(1)} s) |`,
    );
  }
  lines.push(
    "",
    r.consistent
      ? "Every cell matched its prediction and every suite passed."
      : "**Not consistent**: a suite failed or a cell disagreed with its prediction (marked (!)).",
  );
  return lines.join("\n") + "\n";
}
