// npm run setup: provision the binaries of the local target explicitly (npm test and
// npm run conformance also do it on first use).
import { COMMON_FLAGS, noPositionals, runScript } from "../lib/cli.ts";
import { UsageError } from "../lib/errors.ts";
import type { Component } from "../lib/binaries/index.ts";
import { formatDuration } from "../lib/log.ts";
import { kindCliFor, provisionComponents } from "../lib/providers/provision.ts";

await runScript(
  {
    command: "npm run setup -- [--flavor vault|openbao|all] [--kubectl] [--offline] [--no-build] | --target kind [--kube-version X.Y]",
    summary: "Provisions etcd, kube-apiserver, kube-controller-manager and Vault/OpenBao into the cache and prints where each came from.",
    flags: [
      ...COMMON_FLAGS.filter((f) => f.flag !== "--flavor"),
      { flag: "--flavor", value: "vault|openbao|all", help: "which Vault flavor(s) to provision (default: the configured flavor)" },
      { flag: "--kubectl", help: "also provision kubectl" },
    ],
    exits: { ok: "every binary is in the cache", failed: false, infra: "a download or build failed" },
  },
  async (config, parsed) => {
    noPositionals(parsed, "setup");
    if (config.target === "kind") {
      // The kind target needs only the kind CLI of the node image's release (Docker is the user's).
      const cli = await kindCliFor(config, { install: true });
      const t0 = Date.now();
      const kind = (await cli.resolve())!;
      process.stdout.write(
        `kind ${cli.version} (${kind.source}) ${kind.path}, for ${cli.node.image}\nprovisioned in ${formatDuration(Date.now() - t0)}\n`,
      );
      return;
    }
    const flavor = String(parsed.local["--flavor"] ?? config.flavor);
    if (!["vault", "openbao", "all"].includes(flavor))
      throw new UsageError(`--flavor must be one of vault, openbao, all (got "${flavor}")`);
    const components: Component[] = ["etcd", "kube-apiserver", "kube-controller-manager"];
    if (parsed.local["--kubectl"]) components.push("kubectl");
    if (flavor !== "openbao") components.push("vault");
    if (flavor !== "vault") components.push("bao");
    const t0 = Date.now();
    // --vault-version applies to HashiCorp Vault whatever the configured flavor (--flavor all).
    const bins = await provisionComponents(config, components, { versions: config.vault.version ? { vault: config.vault.version } : {} });
    const rows = components
      .map((c) => bins[c]!)
      .map((b) => `${b.component.padEnd(24)} ${b.version.padEnd(8)} ${b.source.padEnd(18)} ${b.path}`);
    process.stdout.write(
      `${"component".padEnd(24)} ${"version".padEnd(8)} ${"source".padEnd(18)} path\n${rows.join("\n")}\nprovisioned in ${formatDuration(Date.now() - t0)} (cache: ${config.cacheDir})\n`,
    );
  },
);
