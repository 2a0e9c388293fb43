import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../lib/config.ts";

// Bad input gets one clear line on stderr and a non-zero exit, never a stack trace.
function run(scriptName: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(PACKAGE_ROOT, "scripts", scriptName), ...args], {
    cwd: PACKAGE_ROOT,
    env: { ...process.env, VKC_TARGET: "", VKC_FLAVOR: "", KIND_EXPERIMENTAL_PROVIDER: "", ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.replace(/^npm warn.*\n/gm, "") };
}

// The docker checks see only the PATH a case gives them, so these pass whether or not this machine
// has Docker (installed, running): a directory without docker, or a docker whose daemon is down
// (it answers `docker info` as the real CLI does then: a blank line, the reason on stderr, exit 1).
const bins = mkdtempSync(join(tmpdir(), "vkc-cli-"));
const noDocker = join(bins, "no-docker");
const dockerDown = join(bins, "docker-down");
mkdirSync(noDocker);
mkdirSync(dockerDown);
writeFileSync(
  join(dockerDown, "docker"),
  '#!/bin/sh\necho\necho "Cannot connect to the Docker daemon at ${DOCKER_HOST:-unix:///var/run/docker.sock}. Is the docker daemon running?" >&2\nexit 1\n',
  { mode: 0o755 },
);

describe("command-line errors", () => {
  afterAll(() => rmSync(bins, { recursive: true, force: true }));

  it.each([
    ["conformance.ts", ["--bogus"], {}, "error: unknown flag --bogus (see --help)"],
    ["conformance.ts", ["--flavor"], {}, "error: --flavor needs a value (vault|openbao)"],
    ["conformance.ts", ["--flavor", "consul"], {}, 'error: flavor (VKC_FLAVOR / --flavor) must be one of vault, openbao (got "consul")'],
    [
      "conformance.ts",
      ["--target", "minikube"],
      {},
      'error: target (VKC_TARGET / --target) must be one of local, kind, existing (got "minikube")',
    ],
    // No Docker: the kind target says so and what to do instead, before installing kind.
    [
      "env-up.ts",
      [],
      { VKC_TARGET: "kind", PATH: noDocker },
      "error: the kind target needs docker, which is not on PATH: install Docker (or Podman with KIND_EXPERIMENTAL_PROVIDER=podman), or use --target local (no Docker needed)",
    ],
    [
      "conformance.ts",
      ["--target", "kind"],
      { DOCKER_HOST: "unix:///nonexistent/docker.sock", PATH: dockerDown },
      "error: docker is installed but not usable (docker info: Cannot connect to the Docker daemon at unix:///nonexistent/docker.sock. Is the docker daemon running?): start it, or use --target local",
    ],
    [
      "conformance.ts",
      ["--target", "kind", "--kube-version", "1.29"],
      {},
      "error: no kind node image is pinned for Kubernetes 1.29 (pinned: 1.37, 1.36, 1.35, 1.34, 1.23); pass a full version such as 1.29.0 or --node-image",
    ],
    [
      "conformance.ts",
      ["--target", "kind", "--vault", "process"],
      {},
      'error: --vault (VKC_VAULT) for the kind target must be one of container, in-cluster (got "process")',
    ],
    [
      "conformance.ts",
      ["--keep"],
      {},
      "error: --keep (VKC_KEEP) applies to the kind target; for a local target that stays up, use npm run env:up",
    ],
    ["env-down.ts", ["--file"], {}, "error: --file needs a value (FILE)"],
    [
      "conformance.ts",
      ["--target", "kind", "--keep-on-failure"],
      {},
      "error: --keep-on-failure (VKC_KEEP_ON_FAILURE) applies to the local target; for kind use --keep, an existing target is yours and stays anyway",
    ],
  ])("%s %j -> exit 2 and one line", (scriptName, args, env, line) => {
    const r = run(scriptName, args, env);
    expect(r.stderr.trim()).toBe(line);
    expect(r.code).toBe(2);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("a bad binary override names the variable to fix (exit 2)", () => {
    const r = run("setup.ts", ["--flavor", "openbao"], { TEST_ASSET_ETCD: "/nonexistent/etcd" });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("TEST_ASSET_ETCD");
  });

  it("--debug adds the stack trace below the same one line (exit 2 still)", () => {
    const r = run("conformance.ts", ["--debug", "--flavor", "consul"]);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split("\n");
    expect(lines[0]).toBe('error: flavor (VKC_FLAVOR / --flavor) must be one of vault, openbao (got "consul")');
    expect(r.stderr).toMatch(/\n\s+at .*config\.ts/);
  });

  it("--help prints usage and exits 0", () => {
    const r = run("conformance.ts", ["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("usage: npm run conformance");
    expect(r.stdout).toContain("--flavor vault|openbao");
  });
});
