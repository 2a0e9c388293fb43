/**
 * The audit's lifecycle on one screen: check the intent, attach (read-only) to your cluster and
 * Vault, check the credentials, read roles, ServiceAccounts and namespace labels, build the static
 * access and capability maps, optionally log in for real, compare, write the reports.
 */
import { mkdir, writeFile } from "node:fs/promises";
import type { KubeConfig } from "@kubernetes/client-node";
import { dirname } from "node:path";
import { externalVaultSettings, type Config } from "../config.ts";
import { HarnessError, errorMessage } from "../errors.ts";
import { Kube, rawGet } from "../kube/client.ts";
import { log } from "../log.ts";
import { kubeconfigFrom } from "../providers/existing.ts";
import { redact } from "../redact.ts";
import type { VaultClient } from "../vault/client.ts";
import { closeVaultClient, externalVaultClient, requireAddressAndToken, vaultWhere } from "../vault/external.ts";
import { assertVaultReady } from "../vault/ready.ts";
import {
  AUDIT_SCHEMA,
  addressTowards,
  agrees,
  capabilityMaps,
  checkKubeAccess,
  checkVaultAccess,
  formatPermissions,
  inCidrs,
  kubernetesMounts,
  predictedFromHost,
  probeLogins,
  readCluster,
  readRoles,
  roleDefinition,
  staticAccess,
  type AuditReport,
  type LoginOutcome,
  type Permission,
  type RoleAudit,
  type RoleDefinition,
} from "./audit.ts";
import { formatAuditConsole, formatAuditMarkdown } from "./audit-format.ts";
import { checkIntentNames, compareWithIntent, loadIntent, type Intent } from "./intent.ts";
import { asList, type Identity, type RoleShape } from "./match.ts";

export interface AuditOptions {
  probe: boolean;
  intentFile?: string;
  mounts?: string[];
  concurrency: number;
  /** The JSON report path; the Markdown report goes next to it (`.json` -> `.md`). */
  out: string;
}

export interface AuditResult {
  report: AuditReport;
  deviations: string[];
  disagreements: string[];
  exitCode: number;
}

export function auditPlan(o: AuditOptions, where: { cluster: string; vault: string }): string {
  return [
    `audit plan (${o.probe ? "static and --probe" : "static, read-only"}):`,
    `  on Kubernetes ${where.cluster}: lists namespaces (with labels) and ServiceAccounts; changes nothing`,
    `  on Vault ${where.vault}: reads auth mounts, kubernetes auth roles, secrets mounts and ACL policies;`,
    `    per distinct policy set one orphan token (60 s, exactly those policies), asked about with sys/capabilities-accessor and revoked at once`,
    ...(o.probe
      ? [
          `  --probe: a TokenRequest (600 s) per ServiceAccount and audience, then one real login per (role, ServiceAccount) pair;`,
          `    each first login of a ServiceAccount on a mount creates an identity entity and alias in your Vault, and these stay;`,
          `    every Vault token a login returns is revoked at once`,
        ]
      : [`  no logins, no entities, nothing written`]),
  ].join("\n");
}

/** The audit's lifecycle: every step below is named and small. */
export async function runAudit(config: Config, o: AuditOptions): Promise<AuditResult> {
  const t0 = Date.now();
  // Bad input first: before anything is reached.
  const intent: Intent | undefined = o.intentFile ? loadIntent(o.intentFile) : undefined;
  const a = await attach(config, o);
  try {
    return await audit(a, o, intent, t0);
  } finally {
    await closeVaultClient(a.vault);
  }
}

/** Once attached: permissions, reads, the static maps, the probe, the comparison, the reports. */
async function audit(a: Attached, o: AuditOptions, intent: Intent | undefined, t0: number): Promise<AuditResult> {
  const timings: Record<string, number> = {};
  const timed = async <T>(k: string, fn: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    try {
      return await fn();
    } finally {
      timings[k] = Date.now() - t;
    }
  };
  const mounts = await timed("permissions", () => checkPermissions(a, o));
  const { roles, cluster, auditHost } = await timed("read", async () => {
    const roles: Record<string, Record<string, RoleShape>> = {};
    for (const m of mounts) roles[m] = await readRoles(a.vault, m);
    // The intent's mount and role names against the Vault's: exit 2, before any login.
    if (intent) checkIntentNames(intent, Object.fromEntries(Object.entries(roles).map(([m, r]) => [m, Object.keys(r)])));
    return { roles, cluster: await readCluster(a.kube), auditHost: await addressTowards(a.vaultAddr) };
  });
  const report: AuditReport = {
    schema: AUDIT_SCHEMA,
    generatedAt: new Date().toISOString(),
    mode: o.probe ? "probe" : "static",
    vault: { address: a.vaultAddr, ...(a.vaultVersion ? { version: a.vaultVersion } : {}) },
    kube: { server: a.server, context: a.context, serviceAccounts: cluster.serviceAccounts.length, namespaces: cluster.namespaces },
    identities: cluster.serviceAccounts.map(({ namespace, serviceAccount }) => ({ namespace, serviceAccount })),
    auditHost,
    mounts: {},
    timings,
  };
  await timed("static", () => staticMaps(a.vault, report, roles, cluster.serviceAccounts));
  const disagreements = o.probe ? await timed("probe", () => probe(a, o, report, roles, cluster.serviceAccounts)) : [];
  timings.total = Date.now() - t0;
  const deviations = intent ? compareWithIntent(report, intent) : [];
  await writeReports(report, o, { deviations, disagreements, ...(o.intentFile ? { intentFile: o.intentFile } : {}) });
  return { report, deviations, disagreements, exitCode: deviations.length || disagreements.length ? 1 : 0 };
}

interface Attached {
  vault: VaultClient;
  vaultAddr: string;
  vaultVersion?: string;
  kc: KubeConfig;
  kube: Kube;
  server: string;
  context: string;
}

/**
 * Prints the plan, then checks that both ends answer (one line and exit 2 otherwise). Your Vault is
 * reached as the vault/bao CLI reaches it (VAULT_ADDR, VAULT_TOKEN, VAULT_CACERT, VAULT_CLIENT_CERT,
 * VAULT_NAMESPACE, proxies: lib/vault/env.ts); the caller closes `vault`.
 */
async function attach(config: Config, o: AuditOptions): Promise<Attached> {
  const settings = externalVaultSettings(config);
  requireAddressAndToken(settings, "the audit", { token: "a token that may read auth roles and policies" });
  const { kc } = await kubeconfigFrom(config);
  const server = kc.getCurrentCluster()?.server ?? "?";
  const context = kc.getCurrentContext();
  process.stdout.write(auditPlan(o, { cluster: `${server} (context ${context})`, vault: vaultWhere(settings) }) + "\n");
  const vaultAddr = settings.address;
  const vault = externalVaultClient(settings, { timeoutMs: 15_000 });
  try {
    const health = await assertVaultReady(vault, {
      flavor: config.flavor,
      ...(settings.tokenFrom ? { tokenFrom: settings.tokenFrom } : {}),
      may: "that may read auth roles and policies",
    });
    const version = await rawGet(kc, "/version").catch((err) => {
      throw new HarnessError(`cannot reach the Kubernetes API at ${server} (context ${context}): ${errorMessage(err)}`, { exitCode: 2 });
    });
    if (version.status !== 200)
      throw new HarnessError(
        `the Kubernetes API at ${server} answered /version with HTTP ${version.status}: check the credentials of context ${context}`,
        { exitCode: 2 },
      );
    return { vault, vaultAddr, ...(health.version ? { vaultVersion: health.version } : {}), kc, kube: new Kube(kc), server, context };
  } catch (err) {
    await closeVaultClient(vault);
    throw err;
  }
}

/** The kubernetes auth mounts to audit, once both credentials are known to allow everything; else each missing permission, exit 2. */
async function checkPermissions(a: Attached, o: AuditOptions): Promise<string[]> {
  const checks: Permission[] = [];
  let mounts: string[] = [];
  if (!o.mounts?.length) {
    const caps = await a.vault.write("sys/capabilities-self", { paths: ["sys/auth"] });
    const have = ((caps.body?.data ?? caps.body ?? {}) as Record<string, string[]>)["sys/auth"] ?? [];
    const ok = caps.status === 200 && (have.includes("root") || have.includes("read"));
    const reason = ok ? {} : { reason: `capabilities on sys/auth: ${have.join(", ") || "none"}` };
    checks.push({ what: "read auth mounts (sys/auth; or name them with --mount)", allowed: ok, ...reason });
    if (ok) mounts = await kubernetesMounts(a.vault);
  } else
    mounts = await kubernetesMounts(a.vault, o.mounts).catch((err) => {
      // A token that may not list auth mounts: take the names as given (their roles are checked below).
      if (err instanceof HarnessError && /^cannot list auth mounts/.test(err.message))
        return o.mounts!.map((m) => m.replace(/^\/+|\/+$/g, ""));
      throw err;
    });
  checks.push(...(await checkVaultAccess(a.vault, mounts)));
  const kubeChecks = await checkKubeAccess(a.kc, o.probe).catch((err) => {
    throw new HarnessError(`cannot check permissions on ${a.server}: ${errorMessage(err).split("\n")[0]}`, { exitCode: 2 });
  });
  const denied = [...checks, ...kubeChecks].filter((c) => !c.allowed);
  if (denied.length)
    throw new HarnessError(`the audit's credentials miss ${denied.length} permission(s): ${denied.map((d) => d.what).join("; ")}`, {
      exitCode: 2,
      details: [
        formatPermissions(`capabilities of VAULT_TOKEN at ${a.vaultAddr}:`, checks),
        formatPermissions(`permissions of context ${a.context}:`, kubeChecks),
      ].join("\n"),
    });
  return mounts;
}

/** Per mount and role: the definition, CIDR verdict, static access map and capability map. */
async function staticMaps(
  vault: VaultClient,
  report: AuditReport,
  roles: Record<string, Record<string, RoleShape>>,
  identities: Identity[],
) {
  for (const [m, mountRoles] of Object.entries(roles)) {
    const defs: Record<string, RoleDefinition> = {};
    for (const [name, r] of Object.entries(mountRoles)) defs[name] = roleDefinition(r);
    const caps = await capabilityMaps(vault, m, defs);
    const out: Record<string, RoleAudit> = {};
    for (const [name, r] of Object.entries(mountRoles)) {
      const d = defs[name]!;
      const cidr = d.token_bound_cidrs.length
        ? {
            cidr: {
              bound: d.token_bound_cidrs,
              auditHost: report.auditHost,
              excludesAuditHost: !inCidrs(report.auditHost, d.token_bound_cidrs),
            },
          }
        : {};
      out[name] = { definition: d, ...cidr, ...staticAccess(r, identities), capabilities: caps.maps[name] ?? {} };
    }
    report.mounts[m] = { probedPaths: caps.probedPaths, roles: out };
  }
}

interface Pair {
  mount: string;
  role: string;
  audience?: string;
  who: Identity;
}

/** --probe: a real login per (role, ServiceAccount) pair, recorded per role; returns the disagreements with static reasoning. */
async function probe(
  a: Attached,
  o: AuditOptions,
  report: AuditReport,
  roles: Record<string, Record<string, RoleShape>>,
  identities: Identity[],
): Promise<string[]> {
  const pairs: Pair[] = Object.entries(roles).flatMap(([mount, rs]) =>
    Object.entries(rs).flatMap(([role, r]) =>
      identities.map((who) => ({ mount, role, ...(r.audience ? { audience: String(r.audience) } : {}), who })),
    ),
  );
  log.info("audit", `--probe: ${pairs.length} login(s) over ${identities.length} ServiceAccount(s), concurrency ${o.concurrency}`);
  const deps = { kube: a.kube, vault: a.vault, concurrency: o.concurrency, progress: (msg: string) => log.info("audit", msg) };
  const res = await probeLogins(deps, pairs);
  // A ServiceAccount created moments before the audit may not be in the API server's cache yet
  // (TokenReview then fails: 403 "permission denied"): such refusals of expected logins get one more try.
  const roleOf = (p: Pair) => roles[p.mount]![p.role]!;
  const again = pairs
    .map((p, i) => ({ p, i, r: res.outcomes[i]! }))
    .filter(
      ({ p, r }) =>
        "status" in r && r.status === 403 && /permission denied/.test(r.error ?? "") && !asList(roleOf(p).token_bound_cidrs).length,
    )
    .filter(({ p }) => predictedFromHost(roleOf(p), p.who, false) === "accepted");
  if (again.length) {
    await new Promise((r) => setTimeout(r, 1000));
    const retry = await probeLogins(
      deps,
      again.map((x) => x.p),
    );
    again.forEach((x, j) => (res.outcomes[x.i] = retry.outcomes[j]!));
    res.logins += retry.logins;
    res.revoked += retry.revoked;
  }
  const disagreements: string[] = [];
  pairs.forEach((p, i) => {
    const d = record(report.mounts[p.mount]!.roles[p.role]!, roleOf(p), p.who, res.outcomes[i]!);
    if (d)
      disagreements.push(
        `${p.mount}/${p.role}: ${p.who.namespace}/${p.who.serviceAccount}: static says ${d.predicted}, Vault says ${d.real}`,
      );
  });
  report.probe = { logins: res.logins, revoked: res.revoked, tokenRequests: res.tokenRequests };
  return disagreements;
}

/** One login's outcome into its role's probe record; returns the disagreement, if any. */
function record(
  ra: RoleAudit,
  role: RoleShape,
  who: Identity,
  r: LoginOutcome | { skipped: string },
): { predicted: string; real: string } | undefined {
  ra.probe ??= { accepted: [], refused: {}, skipped: [], disagreements: [] };
  const ref = { namespace: who.namespace, serviceAccount: who.serviceAccount };
  if ("skipped" in r) {
    ra.probe.skipped.push({ ...ref, error: r.skipped });
    return undefined;
  }
  if (r.status === 200) ra.probe.accepted.push(ref);
  else {
    const k = `HTTP ${r.status}: ${r.error ?? ""}`;
    ra.probe.refused[k] = (ra.probe.refused[k] ?? 0) + 1;
  }
  const predicted = predictedFromHost(role, who, ra.cidr?.excludesAuditHost === true);
  if (agrees(predicted, r.status, r.error)) return undefined;
  const real = r.status === 200 ? "accepted" : `HTTP ${r.status} ${r.error ?? ""}`.trim();
  ra.probe.disagreements.push({ ...ref, predicted, real });
  return { predicted, real };
}

/** The JSON and Markdown reports, and the console table. */
async function writeReports(
  report: AuditReport,
  o: AuditOptions,
  x: { deviations: string[]; disagreements: string[]; intentFile?: string },
) {
  await mkdir(dirname(o.out), { recursive: true });
  await writeFile(o.out, redact(JSON.stringify(report, null, 2)) + "\n");
  const md = o.out.replace(/\.json$/i, "") + ".md";
  await writeFile(md, redact(formatAuditMarkdown(report, x)));
  process.stdout.write(redact(formatAuditConsole(report, { ...x, files: [o.out, md] })));
}
