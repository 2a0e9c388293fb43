import { appendFile } from "node:fs/promises";
import { loadConfig, processEnv, type Config } from "./config.ts";
import { EXIT, HarnessError, UsageError, describeError } from "./errors.ts";
import { setLogLevel } from "./log.ts";
import { redact } from "./redact.ts";

/**
 * Flags of the scripts. Each flag maps to the environment variable lib/config.ts reads, so a
 * flag and its variable mean the same everywhere (in a child script, and inside vitest's
 * globalSetup and workers: see `childEnv` and `withVitestEnv`).
 */
export interface FlagSpec {
  flag: string;
  env?: string;
  value?: string; // placeholder of the value; absent for boolean flags
  help: string;
}

export const COMMON_FLAGS: FlagSpec[] = [
  { flag: "--target", env: "VKC_TARGET", value: "local|kind|existing", help: "where to run (default local)" },
  { flag: "--flavor", env: "VKC_FLAVOR", value: "vault|openbao", help: "Vault flavor (default vault)" },
  { flag: "--fixtures", env: "VKC_FIXTURES", value: "DIR", help: "your fixtures directory (policies, roles, manifests)" },
  { flag: "--reports", env: "VKC_REPORTS_DIR", value: "DIR", help: "reports directory (default ./reports)" },
  { flag: "--cache-dir", env: "VKC_CACHE_DIR", value: "DIR", help: "binary cache (default ~/.cache/vault-k8s-conformance)" },
  { flag: "--issuer", env: "VKC_ISSUER", value: "URL", help: "local target: the apiserver's --service-account-issuer" },
  {
    flag: "--persona",
    env: "VKC_PERSONA",
    value: "NAME",
    help: "local target: apiserver persona from fixtures/personas/ (see npm run matrix)",
  },
  {
    flag: "--kubeconfig",
    env: "KUBECONFIG",
    value: "FILE[:FILE...]",
    help: "existing target: kubeconfig file(s), merged as kubectl does (default ~/.kube/config, or the pod's ServiceAccount)",
  },
  { flag: "--context", env: "VKC_CONTEXT", value: "NAME", help: "existing target: kubeconfig context" },
  { flag: "--vault", env: "VKC_VAULT", value: "MODE", help: "how Vault runs: kind: container|in-cluster; existing: external|process" },
  {
    flag: "--vault-version",
    env: "VKC_VAULT_VERSION",
    value: "X.Y.Z",
    help: "local target: HashiCorp Vault version to provision (default: the pin in fixtures/versions.json)",
  },
  { flag: "--vault-image", env: "VKC_VAULT_IMAGE", value: "IMAGE", help: "kind target: Vault or OpenBao container image" },
  { flag: "--kube-version", env: "VKC_KUBE_VERSION", value: "X.Y[.Z]", help: "kind target: Kubernetes version (pinned node image)" },
  { flag: "--node-image", env: "VKC_NODE_IMAGE", value: "IMAGE", help: "kind target: an explicit kindest/node image" },
  { flag: "--keep", env: "VKC_KEEP", help: "kind target: keep cluster and Vault afterwards, print how to reach and remove them" },
  {
    flag: "--keep-on-failure",
    env: "VKC_KEEP_ON_FAILURE",
    help: "local target: if the run fails, keep the target up for you to inspect (Ctrl-C or npm run env:down removes it)",
  },
  { flag: "--dry-run", env: "VKC_DRY_RUN", help: "existing/kind: print the plan (and check permissions), create nothing" },
  { flag: "--offline", env: "VKC_OFFLINE", help: "never try release downloads" },
  { flag: "--no-build", env: "VKC_NO_BUILD", help: "never build binaries from Go modules" },
  { flag: "--slow", env: "VKC_SLOW", help: "include slow cases (token expiry, the apiserver's 10 s token cache)" },
  { flag: "--debug", env: "VKC_DEBUG", help: "debug logging and stack traces" },
];

export interface Parsed {
  positionals: string[];
  /** Flags without an env mapping, by flag name. */
  local: Record<string, string | boolean>;
}

/** Parses `argv`; each flag with an env mapping is written into `env` (a copy of the environment, not the process environment). */
export function parseArgs(argv: string[], specs: FlagSpec[], env: Record<string, string | undefined>): Parsed {
  const parsed: Parsed = { positionals: [], local: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      parsed.positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("--")) {
      parsed.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg : arg.slice(0, eq);
    const spec = specs.find((s) => s.flag === name);
    if (!spec) throw new UsageError(`unknown flag ${name} (see --help)`);
    let value: string | boolean = true;
    if (spec.value) {
      const v = eq === -1 ? argv[++i] : arg.slice(eq + 1);
      if (v === undefined || v === "" || (eq === -1 && v.startsWith("--"))) throw new UsageError(`${name} needs a value (${spec.value})`);
      value = v;
    } else if (eq !== -1) {
      throw new UsageError(`${name} takes no value`);
    }
    if (spec.env) env[spec.env] = value === true ? "1" : String(value);
    else parsed.local[name] = value;
  }
  return parsed;
}

/**
 * What each exit code means for one command (README "Exit codes"). 0, 2 and 3 mean the same for
 * every command and have defaults; 1 is the command's own negative verdict. `false`: the command
never exits with that code.
 */
export interface ExitCodes {
  ok?: string | false;
  failed: string | false;
  usage?: string;
  infra?: string;
}

const USAGE = "bad input (flags, config, files, fixtures, credentials, a Vault or cluster that does not answer)";
const INFRA = "no verdict: the target could not start, or an infrastructure call failed";

function exitRows(e: ExitCodes): string[] {
  const rows: [number | string, string | false][] = [
    [EXIT.ok, e.ok ?? "success"],
    [EXIT.failed, e.failed],
    [EXIT.usage, e.usage ? `${USAGE}; ${e.usage}` : USAGE],
    [EXIT.infra, e.infra ? `${INFRA}; ${e.infra}` : INFRA],
    [`${EXIT.interrupted}/${EXIT.terminated}`, "stopped by SIGINT (Ctrl-C) / SIGTERM or SIGHUP, after the teardown"],
  ];
  return rows.filter((r): r is [number | string, string] => r[1] !== false).map(([c, m]) => `  ${String(c).padEnd(8)} ${m}`);
}

export function usage(command: string, summary: string, specs: FlagSpec[], exits?: ExitCodes): string {
  const rows = specs.map((s) => `  ${`${s.flag}${s.value ? ` ${s.value}` : ""}`.padEnd(34)} ${s.help}${s.env ? ` [${s.env}]` : ""}`);
  const codes = exits ? `\nexit codes:\n${exitRows(exits).join("\n")}\n` : "";
  return `usage: ${command}\n${summary}\n\noptions:\n${rows.join("\n")}\n  --help                             this text\n${codes}`;
}

/** Appends to a file the user named (`--markdown "$GITHUB_STEP_SUMMARY"`); one that cannot be written is bad input. */
export async function appendToFile(file: string, text: string, flag: string): Promise<void> {
  try {
    await appendFile(file, text);
  } catch (err) {
    throw new UsageError(`cannot write ${file} (${flag}): ${(err as NodeJS.ErrnoException).code ?? describeError(err)}`, { cause: err });
  }
}

/** Bad input for a command that takes no positional arguments (a stray word is likely a flag without its dashes). */
export function noPositionals(parsed: Parsed, command: string): void {
  if (parsed.positionals.length) throw new UsageError(`${command} takes no positional arguments (got ${parsed.positionals.join(" ")})`);
}

/**
 * Runs a script body: parses flags, loads config, and turns any error into one clear line on
 * stderr and a non-zero exit: 2 for bad input (UsageError), 3 for anything else (EXIT). The body
 * returns the verdict, 0 or 1. Stack traces only with --debug.
 */
export async function runScript(
  o: { command: string; summary: string; flags: FlagSpec[]; exits?: ExitCodes },
  body: (config: Config, parsed: Parsed) => Promise<number | void>,
): Promise<never> {
  const env = processEnv();
  let debug = env.VKC_DEBUG === "1";
  try {
    const argv = process.argv.slice(2);
    if (argv.includes("--help") || argv.includes("-h")) {
      process.stdout.write(usage(o.command, o.summary, o.flags, o.exits));
      process.exit(0);
    }
    const parsed = parseArgs(argv, o.flags, env);
    debug = env.VKC_DEBUG === "1"; // --debug given: a config error shows its stack too
    const config = loadConfig(env);
    debug = config.debug;
    if (debug) setLogLevel("debug");
    const code = await body(config, parsed);
    process.exit(code ?? 0);
  } catch (err) {
    // An error is never a verdict: only a body's return is 1. Not ours (a bug, a library's error): 3.
    const code = err instanceof HarnessError ? err.exitCode : EXIT.infra;
    // Bad input is one line written for the user; its cause (a spawn error...) shows with --debug.
    const line = err instanceof UsageError ? err.message : describeError(err);
    process.stderr.write(redact(`error: ${line}\n`));
    if (err instanceof HarnessError && err.details) process.stderr.write(redact(err.details.replace(/^/gm, "  ") + "\n"));
    if (debug && err instanceof Error && err.stack) {
      process.stderr.write(redact(err.stack) + "\n");
      if (err instanceof UsageError && err.cause !== undefined)
        process.stderr.write(redact(`caused by: ${describeError(err.cause)}`) + "\n");
    }
    process.exit(code);
  }
}
