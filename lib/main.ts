#!/usr/bin/env node
// vault-k8s-conformance <command> [options]: the installed package's command. Each subcommand is
// one script of scripts/ (the same one `npm run <script>` runs from a clone), loaded in this
// process with process.argv set so that the script sees only its own arguments.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { COMPILED, PACKAGE_ROOT } from "./config.ts";

const BIN = "vault-k8s-conformance";

interface Command {
  /** The script of scripts/, without extension. */
  script: string;
  /** The npm script of a clone that runs the same script. */
  npm: string;
  summary: string;
}

const COMMANDS: Record<string, Command> = {
  conformance: {
    script: "conformance",
    npm: "conformance",
    summary: "run the conformance suites against a target (reports: junit.xml, results.json, summary.md)",
  },
  profile: { script: "profile", npm: "profile", summary: "record a target's behaviour profile (--out FILE)" },
  diff: { script: "profile-diff", npm: "profile:diff", summary: "compare two behaviour profiles (BEFORE AFTER)" },
  "results-diff": { script: "results-diff", npm: "results:diff", summary: "compare two results.json files (BEFORE AFTER)" },
  audit: { script: "audit", npm: "audit", summary: "report which roles reach which Vault paths (access audit)" },
  "audit-diff": { script: "audit-diff", npm: "audit:diff", summary: "compare two access reports (BEFORE AFTER)" },
  mutation: { script: "mutation", npm: "mutation", summary: "check that the suites catch deliberately broken setups" },
  matrix: { script: "matrix", npm: "matrix", summary: "run the suites against each apiserver persona" },
  "env up": { script: "env-up", npm: "env:up", summary: "start a target and keep it running for repeated runs" },
  "env down": { script: "env-down", npm: "env:down", summary: "stop the target env up started" },
  setup: { script: "setup", npm: "setup", summary: "provision the binaries (vault/bao, etcd, kube-apiserver...) into the cache" },
  bench: { script: "bench", npm: "bench", summary: "measure run times (cold and warm runs, logins)" },
  "gh-report": {
    script: "gh-report",
    npm: "gh:report",
    summary: "for GitHub Actions: annotations, step outputs and summary of a results.json",
  },
};

function version(): string {
  return (JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string }).version;
}

function help(): string {
  const rows = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(14)} ${c.summary}`);
  return (
    `usage: ${BIN} <command> [options]\n` +
    `End-to-end conformance of Vault's (and OpenBao's) Kubernetes auth method against real Kubernetes and real Vault.\n\n` +
    `commands:\n${rows.join("\n")}\n\n` +
    `  ${BIN} <command> --help   that command's options\n` +
    `  ${BIN} --version          the package's version\n` +
    `From a clone of the repository, \`npm run <script> -- [options]\` runs the same commands.\n`
  );
}

function fail(line: string): never {
  process.stderr.write(`error: ${line}\n`);
  process.exit(2);
}

const [first, ...rest] = process.argv.slice(2);
if (first === undefined) {
  process.stderr.write(help());
  process.exit(2);
}
if (first === "--help" || first === "-h" || first === "help") {
  process.stdout.write(help());
  process.exit(0);
}
if (first === "--version" || first === "-v") {
  process.stdout.write(`${version()}\n`);
  process.exit(0);
}

let name = first;
let args = rest;
if (first === "env") {
  const sub = rest[0];
  if (sub !== "up" && sub !== "down") fail(`${BIN} env needs up or down (see ${BIN} --help)`);
  name = `env ${sub}`;
  args = rest.slice(1);
}
const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
if (!command) fail(`unknown command "${first}" (see ${BIN} --help)`);

const script = new URL(`../scripts/${command.script}.${COMPILED ? "js" : "ts"}`, import.meta.url);
// The scripts' help names npm scripts (`npm run conformance -- ...`, `see npm run matrix`); here
// the commands are ours. `npm run audit` must not match inside `npm run audit:diff`.
if (args.includes("--help") || args.includes("-h")) {
  const npmNames = Object.entries(COMMANDS).map(
    ([n, c]) => [new RegExp(`npm run ${c.npm.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?![\\w:-])( -- )?`, "g"), n] as const,
  );
  const ours = (text: string) =>
    npmNames.reduce((t, [re, n]) => t.replace(re, (_m, dashes?: string) => `${BIN} ${n}${dashes ? " " : ""}`), text);
  const write = process.stdout.write.bind(process.stdout) as (chunk: string | Uint8Array, ...more: unknown[]) => boolean;
  process.stdout.write = ((chunk: string | Uint8Array, ...more: unknown[]) =>
    write(typeof chunk === "string" ? ours(chunk) : chunk, ...more)) as typeof process.stdout.write;
}
process.argv = [process.argv[0]!, fileURLToPath(script), ...args];
await import(script.href);
