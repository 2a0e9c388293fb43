import { execFile, type ChildProcess } from "node:child_process";
import { constants, accessSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { loadAllYaml, type KubernetesObject } from "@kubernetes/client-node";
import { cached } from "../binaries/cache.ts";
import { onExitSync, onShutdown } from "../cleanup.ts";
import { productOf } from "../binaries/pins.ts";
import type { Config } from "../config.ts";
import { UsageError, errorMessage } from "../errors.ts";
import { log } from "../log.ts";
import { loadCases, unreadableReason } from "./cases.ts";

/**
 * Preflight checks of the fixtures directory, before any target starts: every file a run reads
 * is readable and parses, so that a typo is one line and exit code 2 instead of a failed suite
 * after a minute of start-up.
 *
 *   checkFixtureFiles  cases (readable, YAML, structure; the policy files they name exist),
 *                      manifests/reviewer.yaml, policies/*.hcl: cheap, no binary needed
 *   checkPolicies      the policies' HCL, parsed by the real parser: `vault policy fmt` (or
 *                      `bao policy fmt`) on a private temp copy, offline, no server involved
 */

/** One policy to parse, and how an error about it starts. */
export interface PolicyToCheck {
  /** "invalid case file X: policy "p" (P)" / "invalid policy file P" */
  what: string;
  hcl: string;
}

function readFixture(path: string, fix: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read fixture ${path}: ${unreadableReason(err, path)}: ${fix}`);
  }
}

/** Structure of the fixtures; returns the policies to parse (each file once). Throws UsageError. */
export function checkFixtureFiles(fixturesDir: string): PolicyToCheck[] {
  let isDir = false;
  try {
    isDir = statSync(fixturesDir).isDirectory();
  } catch (err) {
    throw new UsageError(
      `cannot read the fixtures directory ${fixturesDir} (--fixtures / VKC_FIXTURES): ${unreadableReason(err, fixturesDir)}: point it at a copy of the package's fixtures/`,
    );
  }
  if (!isDir)
    throw new UsageError(
      `the fixtures directory ${fixturesDir} (--fixtures / VKC_FIXTURES) is not a directory: point it at a copy of the package's fixtures/`,
    );
  const cases = loadCases(fixturesDir);
  const policiesDir = join(fixturesDir, "policies");
  const policies: PolicyToCheck[] = [];
  const seen = new Set<string>();

  for (const c of cases) {
    for (const [name, file] of Object.entries(c.policies ?? {})) {
      const path = join(policiesDir, file);
      if (/[{\n]/.test(file))
        throw new UsageError(
          `invalid case file ${c.file}: policy "${name}" must be a file name of ${policiesDir}, not inline HCL: put the HCL in a file there and name that`,
        );
      let hcl: string;
      try {
        hcl = readFileSync(path, "utf8");
      } catch (err) {
        throw new UsageError(
          `invalid case file ${c.file}: policy "${name}" names ${path}, which cannot be read (${unreadableReason(err, path)}): add that file or fix the name`,
        );
      }
      if (!seen.has(path)) policies.push({ what: `invalid case file ${c.file}: policy "${name}" (${path})`, hcl });
      seen.add(path);
    }
    if (c.defaultPolicy) policies.push({ what: `invalid case file ${c.file}: defaultPolicy.append`, hcl: c.defaultPolicy.append });
  }

  // Policy files no case names are read by the suites (policy.test.ts: demo-policy.hcl, my-app.hcl).
  let hclFiles: string[] = [];
  try {
    hclFiles = readdirSync(policiesDir)
      .filter((n) => n.endsWith(".hcl"))
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT")
      throw new UsageError(
        `cannot read the policies directory ${policiesDir}: ${unreadableReason(err, policiesDir)}: make it a readable directory`,
      );
  }
  for (const n of hclFiles) {
    const path = join(policiesDir, n);
    if (seen.has(path)) continue;
    seen.add(path);
    policies.push({ what: `invalid policy file ${path}`, hcl: readFixture(path, "make it a readable HCL file, or remove it") });
  }

  // The reviewer every suite applies.
  const reviewer = join(fixturesDir, "manifests", "reviewer.yaml");
  const text = readFixture(reviewer, "restore it (the package's fixtures/manifests/reviewer.yaml is the template)");
  let objs: KubernetesObject[];
  try {
    objs = (loadAllYaml(text) as KubernetesObject[]).filter((o) => o && typeof o === "object");
  } catch (err) {
    throw new UsageError(`invalid YAML in ${reviewer}: ${errorMessage(err).split("\n")[0]}`);
  }
  const kinds = objs.map((o) => o.kind);
  if (!kinds.includes("ServiceAccount") || !kinds.includes("ClusterRoleBinding"))
    throw new UsageError(
      `${reviewer} must hold a ServiceAccount and a ClusterRoleBinding (has: ${kinds.join(", ") || "nothing"}): restore it from the package's fixtures/manifests/reviewer.yaml`,
    );
  return policies;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * The vault (or bao) binary to parse policies with, without provisioning anything: VAULT_BIN /
 * BAO_BIN, the cache, or PATH. Undefined when there is none (the check is then skipped).
 */
export async function policyParser(
  config: Pick<Config, "flavor" | "overrides" | "cacheDir"> & { vault?: Config["vault"] },
): Promise<string | undefined> {
  const c = config.flavor === "openbao" ? "bao" : "vault";
  const override = config.overrides[c];
  if (override && executable(override)) return override;
  const version = (c === "vault" && config.vault?.version) || productOf(c).pin.version;
  const hit = await cached(config.cacheDir, c, version).catch(() => undefined);
  if (hit) return hit.path;
  return (process.env.PATH ?? "")
    .split(delimiter)
    .filter(Boolean)
    .map((d) => join(d, c))
    .find(executable);
}

/** The parser's complaint as one line: "At 1:29: unexpected token while parsing list: RBRACE". */
export function parserMessage(stderr: string): string {
  const text = stderr
    .trim()
    .replace(/^failed to parse policy:\s*/, "")
    .replace(/\b\d+ errors? occurred:/g, "");
  const parts = text
    .split(/(?:^|\n)\s*\*\s*/)
    .map((s) => s.replace(/\s+/g, " ").trim())
    .filter(Boolean);
  const line = parts.reduce((acc, p) => (!acc ? p : acc.endsWith(":") ? `${acc} ${p}` : `${acc}; ${p}`), "");
  return line.replace(/(path "[^"]*": )\1+/g, "$1");
}

type Parse = { ok: true } | { ok: false; message: string } | { ok: undefined; why: string };

function policyFmt(bin: string, file: string, home: string, running: Set<ChildProcess>): Promise<Parse> {
  return new Promise((resolve) => {
    // Minimal environment: the parser needs no address or token, and gets none.
    const child = execFile(
      bin,
      ["policy", "fmt", file],
      { env: { PATH: process.env.PATH ?? "", HOME: home }, timeout: 30_000 },
      (err, _out, stderr) => {
        running.delete(child);
        if (!err) return resolve({ ok: true });
        if (/^\s*failed to parse policy/.test(stderr)) return resolve({ ok: false, message: parserMessage(stderr) });
        resolve({ ok: undefined, why: `${errorMessage(err).split("\n")[0]}${stderr.trim() ? ` (${stderr.trim().split("\n")[0]})` : ""}` });
      },
    );
    running.add(child);
  });
}

/**
 * Parses each policy with `<bin> policy fmt` on a 0600 copy in a private temp dir (fmt rewrites
 * the file it is given; the user's files are never touched). Throws a UsageError naming the first
 * invalid policy. Without a usable binary the check is skipped (debug log): the run then finds
 * the problem when it writes the policy.
 */
export async function checkPolicies(policies: PolicyToCheck[], bin: string | undefined): Promise<void> {
  if (!policies.length) return;
  if (!bin) {
    log.debug("fixtures", `no vault/bao binary at hand: policy HCL not checked before the run`);
    return;
  }
  const work = await mkdtemp(join(tmpdir(), "vkc-policy-check-"));
  // Ctrl-C / SIGTERM exit without running `finally`: the parsers and the temp dir go with the
  // shutdown hooks too (and, last resort, on a plain exit).
  const running = new Set<ChildProcess>();
  let stopped = false;
  const stop = () => {
    stopped = true; // no new parser either
    for (const c of running) c.kill("SIGKILL");
  };
  const unlisten = onShutdown(async () => {
    stop();
    await rm(work, { recursive: true, force: true });
  });
  const forget = onExitSync(() => {
    stop();
    rmSync(work, { recursive: true, force: true });
  });
  try {
    await chmod(work, 0o700);
    const results: Parse[] = new Array(policies.length);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < policies.length && !stopped; i = next++) {
        const file = join(work, `${i}.hcl`);
        await writeFile(file, policies[i]!.hcl, { mode: 0o600 });
        results[i] = await policyFmt(bin, file, work, running);
      }
    };
    await Promise.all([worker(), worker()]); // 2 at a time: ~0.2s each
    if (stopped) return; // shutting down: the process exits, nothing to report
    for (const [i, r] of results.entries())
      if (r.ok === false) throw new UsageError(`${policies[i]!.what} is not a valid policy: ${r.message}: fix the HCL and run again`);
    const failed = results.find((r): r is Extract<Parse, { ok: undefined }> => r.ok === undefined);
    if (failed) log.debug("fixtures", `${bin} policy fmt did not run (${failed.why}): policy HCL not fully checked before the run`);
  } finally {
    unlisten();
    forget();
    await rm(work, { recursive: true, force: true });
  }
}
