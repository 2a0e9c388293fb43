import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { KubeConfig, VersionApi } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { resolveKind } from "../../lib/binaries/kindcli.ts";
import { loadConfig, PACKAGE_ROOT } from "../../lib/config.ts";
import { loadKindPins, missingCapabilities } from "../../lib/providers/kind-plan.ts";
import type { RunResults } from "../../lib/report/reporter.ts";
import { descendants, fixturesWithCase, liveProcesses, waitForOutput, type script } from "./helpers.ts";

// The kind target's own lifecycle, on a real Docker engine with real kind clusters (the `kind`
// vitest project; kit/ci.sh runs it after the conformance runs, `npm test` never does). Each case
// asserts what a user sees (exit code, output) and that nothing is left: no kind cluster, no
// container, no network but bridge/host/none, no volume, no temp dir of the run, no process.
// Phases are recognised from the run's own log lines and the engine's state, never from sleeps.
// Five cluster starts in all: Ctrl-C during create, Vault start and the suites; --keep; a failing run.
// Without a Docker engine (or the kind CLI, or the kit's images) every case fails with the reason.

const pins = loadKindPins();
const NODE = process.env.VKC_KIND_TEST_NODE_IMAGE || pins.kitImages?.nodeImages["1.36"] || "vkc/kind-node:v1.36.3";
const IMAGES = {
  vault: process.env.VKC_KIND_TEST_VAULT_IMAGE || pins.kitImages?.vaultImages.vault || "vkc/vault:1.21.1",
  openbao: process.env.VKC_KIND_TEST_BAO_IMAGE || pins.kitImages?.vaultImages.openbao || "vkc/openbao:2.7.2",
};
const RUN_ID = /(vkc-\d{14}-[0-9a-f]{6})/;

let work = "";
let kindBin = "";

function cmd(bin: string, args: string[], timeoutMs = 120_000) {
  const r = spawnSync(bin, args, { encoding: "utf8", timeout: timeoutMs });
  return { code: r.status, out: r.stdout ?? "", err: `${r.stderr ?? ""}${r.error ? String(r.error) : ""}` };
}
const lines = (text: string) =>
  text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);

/** Everything a kind run may leave: clusters, containers, networks, volumes, its temp dir, its processes. */
function leftovers(o: { tmp?: string; runId?: string; pids?: number[] } = {}): string[] {
  const out: string[] = [];
  out.push(...lines(cmd(kindBin, ["get", "clusters"]).out).map((c) => `kind cluster ${c}`));
  out.push(...lines(cmd("docker", ["ps", "-a", "--format", "{{.Names}} ({{.Image}}, {{.Status}})"]).out).map((c) => `container ${c}`));
  out.push(
    ...lines(cmd("docker", ["network", "ls", "--format", "{{.Name}}"]).out)
      .filter((n) => !["bridge", "host", "none"].includes(n))
      .map((n) => `network ${n}`),
  );
  out.push(...lines(cmd("docker", ["volume", "ls", "-q"]).out).map((v) => `volume ${v}`));
  // tsx keeps its compile cache in TMPDIR; that is tsx's, not the run's.
  if (o.tmp && existsSync(o.tmp))
    out.push(
      ...readdirSync(o.tmp)
        .filter((n) => !n.startsWith("tsx-"))
        .map((n) => `temp ${n}`),
    );
  if (o.runId) out.push(...liveProcesses(o.runId, o.pids ?? []).map((p) => `process ${p}`));
  return out;
}

type Run = ReturnType<typeof script> & { tmp: string; runId: () => string };
const started: Run[] = [];

/**
 * `npm run conformance -- --target kind ...` as a user runs it: node + tsx, in a process group
 * of its own (so that a Ctrl-C reaches the whole group, as a terminal sends it), with a private
 * TMPDIR to look in afterwards.
 */
function conformance(name: string, args: string[], env: Record<string, string> = {}): Run {
  const tmp = join(work, `tmp-${name}`);
  mkdirSync(tmp, { recursive: true });
  const child = spawn(process.execPath, ["--import", "tsx", join(PACKAGE_ROOT, "scripts", "conformance.ts"), "--target", "kind", ...args], {
    cwd: PACKAGE_ROOT,
    detached: true,
    env: {
      ...process.env,
      KIND_BIN: kindBin,
      TESTCONTAINERS_RYUK_DISABLED: "true",
      TMPDIR: tmp,
      ...Object.fromEntries(
        ["VKC_TARGET", "VKC_FLAVOR", "VKC_VAULT", "VKC_KEEP", "VKC_NODE_IMAGE", "VKC_VAULT_IMAGE", "VKC_KUBE_VERSION"].map((k) => [k, ""]),
      ),
      KIND_EXPERIMENTAL_PROVIDER: "",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const exited = new Promise<number | null>((r) => child.on("exit", (c, sig) => r(c ?? (sig ? -1 : null))));
  const run: Run = {
    child,
    exited,
    output: () => output,
    tmp,
    runId: () => {
      const id = RUN_ID.exec(output)?.[1];
      if (!id) throw new Error(`no run id in the output:\n${output}`);
      return id;
    },
  };
  started.push(run);
  return run;
}

/** Ctrl-C in a terminal: SIGINT to the foreground process group (the script, kind, docker, vitest workers). */
const ctrlC = (run: Run) => process.kill(-run.child.pid!, "SIGINT");

async function poll(what: string, fn: () => boolean, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (!fn()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const tail = (run: Run) => run.output().slice(-4000);
const args = (flavor: "vault" | "openbao", mode: "container" | "in-cluster", reports: string, node = NODE) => [
  "--flavor",
  flavor,
  "--node-image",
  node,
  "--vault-image",
  IMAGES[flavor],
  "--vault",
  mode,
  "--reports",
  join(work, reports),
];

/** A Docker engine, the kind CLI and the kit's images, and an engine with nothing on it; resolves undefined when all is there. */
async function requirements(): Promise<undefined> {
  const info = cmd("docker", ["info", "--format", "{{.ServerVersion}}"], 30_000);
  if (info.code !== 0)
    throw new Error(
      `the kind project needs a running Docker engine, and \`docker info\` failed (${lines(info.err)[0] ?? `exit ${info.code}`}): start one (npm run kit sets one up)`,
    );
  const config = loadConfig({ ...process.env, VKC_TARGET: "kind", VKC_KEEP: "", VKC_KEEP_ON_FAILURE: "" });
  const kind = await resolveKind({
    cacheDir: config.cacheDir,
    version: pins.kind,
    env: process.env,
    install: false,
    ...(config.kindBin ? { kindBin: config.kindBin } : {}),
  });
  if (!kind) throw new Error(`the kind project needs the kind CLI ${pins.kind}: npm run setup -- --target kind, or set KIND_BIN`);
  kindBin = kind.path;
  const missing = [NODE, IMAGES.vault, IMAGES.openbao].filter((i) => cmd("docker", ["image", "inspect", i]).code !== 0);
  if (missing.length) throw new Error(`the kind project needs the images ${missing.join(", ")}: build them with npm run kit`);
  const before = leftovers();
  if (before.length)
    throw new Error(`the engine is not clean before the kind tests (they check that nothing is left): ${before.join("; ")}`);
  return undefined;
}

describe("kind target lifecycle (real Docker engine, real kind clusters)", () => {
  // Never a skip: without what it tests, every case fails with the reason.
  let unusable: Error | undefined;
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "vkc-kind-lifecycle-"));
    unusable = await requirements().catch((err: Error) => err);
  }, 120_000);
  beforeEach(() => {
    if (unusable) throw unusable;
  });

  // A case that failed half-way must not leave its cluster to the next one (or to the machine).
  afterEach(async () => {
    for (const run of started.splice(0)) {
      if (run.child.exitCode === null && run.child.signalCode === null) {
        try {
          process.kill(-run.child.pid!, "SIGINT");
        } catch {
          // gone
        }
        const done = await Promise.race([run.exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 90_000))]);
        if (!done) process.kill(-run.child.pid!, "SIGKILL");
      }
      const id = RUN_ID.exec(run.output())?.[1];
      if (!id) continue;
      if (lines(cmd(kindBin, ["get", "clusters"]).out).includes(id)) cmd(kindBin, ["delete", "cluster", "--name", id]);
      const ids = lines(cmd("docker", ["ps", "-aq", "--filter", `label=vault-k8s-conformance/run=${id}`]).out);
      if (ids.length) cmd("docker", ["rm", "-f", "-v", ...ids]);
      if (cmd("docker", ["network", "inspect", "kind", "--format", "{{len .Containers}}"]).out.trim() === "0")
        cmd("docker", ["network", "rm", "kind"]);
    }
  }, 240_000);
  afterAll(() => work && rmSync(work, { recursive: true, force: true }));

  it("--dry-run prints the kind command, the cluster config and the Vault plan, creates nothing (exit 0)", async () => {
    const run = conformance("dry-run", ["--dry-run", ...args("vault", "in-cluster", "dry-run")]);
    expect(await run.exited, tail(run)).toBe(0);
    const id = run.runId();
    expect(run.output()).toContain(`plan of run ${id} (kind ${pins.kind}):`);
    expect(run.output()).toContain(
      `  kind create cluster --name ${id} --image ${NODE} --config <run dir>/kind-config.yaml --kubeconfig <run dir>/kubeconfig --wait 180s`,
    );
    expect(run.output()).toContain(`  Vault: ${IMAGES.vault} as a Deployment in the cluster`);
    expect(run.output()).toContain(`  afterwards: kind delete cluster --name ${id} (Vault goes with it)`);
    expect(run.output()).toMatch(/kind-config\.yaml:\n\s+apiVersion: kind\.x-k8s\.io\/v1alpha4/);
    expect(leftovers({ tmp: run.tmp, runId: id })).toEqual([]);
    expect(existsSync(join(work, "dry-run"))).toBe(false); // not even a reports dir
  });

  describe("Ctrl-C (SIGINT to the process group) at each phase: exit 130, nothing left", () => {
    it("while the cluster is being created (kind create running, its node container up)", async () => {
      const run = conformance("sigint-create", args("vault", "container", "sigint-create"));
      await waitForOutput(run, /creating cluster vkc-/, 180_000);
      const id = run.runId();
      const node = `${id}-control-plane`;
      await poll(
        `the node container ${node}`,
        () => lines(cmd("docker", ["ps", "-q", "--filter", `name=^${node}$`]).out).length === 1,
        180_000,
      );
      const below = descendants(run.child.pid!);
      expect(
        below.some((p) => p.comm === "kind" && p.cmdline.includes("create cluster")),
        below.map((p) => p.cmdline).join("\n"),
      ).toBe(true);
      expect(run.output()).not.toMatch(/cluster up in/);
      ctrlC(run);
      expect(await run.exited, tail(run)).toBe(130);
      expect(run.output()).toContain("SIGINT received: tearing down");
      expect(leftovers({ tmp: run.tmp, runId: id, pids: below.map((p) => p.pid) })).toEqual([]);
    });

    it("while Vault starts in the cluster (image loaded into the node, Deployment applied; OpenBao)", async () => {
      const run = conformance("sigint-vault", args("openbao", "in-cluster", "sigint-vault"));
      await waitForOutput(run, /cluster up in \S+; starting openbao \S+ in the cluster/, 300_000);
      const id = run.runId();
      const below = descendants(run.child.pid!);
      ctrlC(run);
      const atSignal = run.output();
      expect(await run.exited, tail(run)).toBe(130);
      expect(atSignal).not.toMatch(/ready in/);
      expect(leftovers({ tmp: run.tmp, runId: id, pids: below.map((p) => p.pid) })).toEqual([]);
    });

    it("while the suites run (Vault as a container on kind's network)", async () => {
      const run = conformance("sigint-suites", args("vault", "container", "sigint-suites"));
      await waitForOutput(run, /ready in/, 300_000);
      const id = run.runId();
      // A suite file has reported; the run is not over.
      await waitForOutput(run, /suites\/[\w-]+\.test\.ts/, 240_000);
      expect(run.output()).not.toMatch(/conformance \(kind, vault\): \d+ passed/);
      expect(lines(cmd("docker", ["ps", "-q", "--filter", `label=vault-k8s-conformance/run=${id}`]).out)).toHaveLength(1);
      const below = descendants(run.child.pid!);
      ctrlC(run);
      expect(await run.exited, tail(run)).toBe(130);
      expect(leftovers({ tmp: run.tmp, runId: id, pids: below.map((p) => p.pid) })).toEqual([]);
    });
  });

  it("--keep: cluster and Vault survive the run, which prints how to reach and remove them; doing so leaves nothing", async () => {
    const run = conformance("keep", [...args("vault", "container", "keep"), "--keep", "suites/smoke", "suites/pods"]);
    expect(await run.exited, tail(run)).toBe(0);
    const id = run.runId();
    const out = run.output();
    const addr = new RegExp(`kept kind cluster ${id} and its Vault at (http://\\S+)`).exec(out)?.[1];
    const use = /use them: +export KUBECONFIG=(\S+) VAULT_ADDR=(\S+) VAULT_TOKEN="\$\(cat (\S+)\)"/.exec(out);
    const remove = /remove it: +(.+)$/m.exec(out)?.[1];
    const network = /unless another kind cluster uses it: +(.+)$/m.exec(out)?.[1];
    expect({ addr, use: !!use, remove, network }, out).toEqual({
      addr: expect.any(String),
      use: true,
      remove: expect.any(String),
      network: "docker network rm kind",
    });
    // Pods reached the Vault container at its address on kind's network (TargetInfo vault.addressForPods).
    const results = JSON.parse(readFileSync(join(work, "keep", "results.json"), "utf8")) as RunResults;
    expect(results.cases.find((c) => c.id.includes("the pod logs in itself"))?.status).toBe("passed");

    // Still there: the cluster (its API answers with the printed kubeconfig), the Vault (unsealed), the token file.
    expect(lines(cmd(kindBin, ["get", "clusters"]).out)).toContain(id);
    expect(
      lines(cmd("docker", ["ps", "-q", "--filter", `label=vault-k8s-conformance/run=${id}`, "--filter", "status=running"]).out),
    ).toHaveLength(1);
    const [, kubeconfig, vaultAddr, tokenFile] = use!;
    expect(vaultAddr).toBe(addr);
    const health = (await (await fetch(`${vaultAddr}/v1/sys/health`)).json()) as { initialized: boolean; sealed: boolean };
    expect(health).toMatchObject({ initialized: true, sealed: false });
    expect(statSync(tokenFile!).mode & 0o777).toBe(0o600);
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig!);
    expect((await kc.makeApiClient(VersionApi).getCode()).gitVersion).toMatch(/^v1\.\d+\.\d+/);

    // Follow the printed instructions, as a user would.
    const rm = spawnSync("sh", ["-c", remove!], { encoding: "utf8", timeout: 180_000 });
    expect(rm.status, `${remove}\n${rm.stderr}`).toBe(0);
    const net = spawnSync("sh", ["-c", network!], { encoding: "utf8", timeout: 60_000 });
    expect(net.status, net.stderr).toBe(0);
    expect(leftovers({ tmp: run.tmp, runId: id })).toEqual([]);
  });

  it("a failing run exports the cluster's logs (kind export logs, secrets redacted) into the diagnostics bundle, exits 1, leaves nothing", async () => {
    const fixtures = fixturesWithCase(join(work, "fail"), "zz-fails.yaml", [
      "name: fails on purpose",
      "serviceAccounts: [app]",
      'roles: { app: { bound_service_account_names: [app], bound_service_account_namespaces: ["${namespace}"] } }',
      "logins: [{ role: app, serviceAccount: app, expect: { status: 403, error: permission denied } }]",
      "intent: { app: { login: [{ serviceAccount: app }] } }", // so that only the login above fails
    ]);
    const reports = "fail-reports";
    const run = conformance("fail", [
      ...args("openbao", "in-cluster", reports),
      "--fixtures",
      fixtures,
      "suites/fixture-cases",
      "suites/pods",
    ]);
    expect(await run.exited, tail(run)).toBe(1);
    const id = run.runId();
    expect(run.output()).toMatch(/conformance \(kind, openbao\): \d+ passed, 1 failed/);
    const dir = join(work, reports, "artifacts", id, "diagnostics", "kind-logs");
    expect(run.output()).toContain(`exported cluster logs to ${dir}`);
    // kind's layout: one directory per node with the kubelet's and containerd's logs and the pods' logs.
    const files = readdirSync(dir, { recursive: true }).map(String);
    expect(files).toContain(join(`${id}-control-plane`, "kubelet.log"));
    const podLogs = files.filter((f) => f.includes(join("pods", "vkc-vault-")) && f.endsWith(".log"));
    expect(podLogs.length, files.join("\n")).toBeGreaterThan(0);
    // OpenBao's dev banner prints its root token: never in the bundle.
    for (const f of files.filter((f) => statSync(join(dir, f)).isFile()))
      expect(readFileSync(join(dir, f), "utf8"), f).not.toMatch(/vkc-root-[A-Za-z0-9_-]{8,}/);
    expect(podLogs.map((f) => readFileSync(join(dir, f), "utf8")).join("\n")).toMatch(/Root Token: \[REDACTED\]/);
    // Pods reached the in-cluster Vault at its Service's DNS name (TargetInfo vault.addressForPods).
    const results = JSON.parse(readFileSync(join(work, reports, "results.json"), "utf8")) as RunResults;
    expect(results.cases.find((c) => c.id.includes("the pod logs in itself"))?.status).toBe("passed");
    expect(leftovers({ tmp: run.tmp, runId: id })).toEqual([]);
  });

  describe("bad input on the real engine: one line, exit 2, before any cluster exists", () => {
    it("a node image neither present nor pullable (--node-image vkc/nope:1)", async () => {
      const run = conformance("nope", args("vault", "container", "nope", "vkc/nope:1"));
      expect(await run.exited, tail(run)).toBe(2);
      const errors = run
        .output()
        .split("\n")
        .filter((l) => l.startsWith("error:"));
      expect(errors).toEqual([
        "error: node image vkc/nope:1 is not present and cannot be pulled: build it with `npm run kit` (kit/README.md) or name one with --node-image",
      ]);
      expect(run.output()).not.toMatch(/\n\s+at /);
      // No run id was printed: nothing was started to carry one.
      expect(leftovers({ tmp: run.tmp })).toEqual([]);
    });

    it("privileged containers refused (dockerd told to use plain runc): names the capability and the runc wrapper", async () => {
      // The real dockerd and the real runc, without the kit's wrapper: `docker run` gets `--runtime runc`.
      const bin = join(work, "plain-runc");
      mkdirSync(bin, { recursive: true });
      const docker = lines(cmd("sh", ["-c", "command -v docker"]).out)[0]!;
      writeFileSync(
        join(bin, "docker"),
        `#!/bin/sh\nif [ "$1" = run ]; then shift; exec ${docker} run --runtime runc "$@"; fi\nexec ${docker} "$@"\n`,
        {
          mode: 0o755,
        },
      );
      const run = conformance("plain-runc", args("vault", "container", "plain-runc"), { PATH: `${bin}${delimiter}${process.env.PATH}` });
      expect(await run.exited, tail(run)).toBe(2);
      const bnd = /^CapBnd:\s*([0-9a-f]+)/im.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? "";
      const caps = missingCapabilities(bnd, Number(readFileSync("/proc/sys/kernel/cap_last_cap", "utf8").trim()));
      const errors = run
        .output()
        .split("\n")
        .filter((l) => l.startsWith("error:"));
      expect(errors).toEqual([
        "error: docker refuses privileged containers, which kind's nodes are (docker run --privileged: unable to apply caps: operation not permitted): " +
          `${caps.length ? `this host withholds ${caps.join(", ")}` : "the host withholds a capability"}; ` +
          "install the runc wrapper that drops it with kit/docker/install-engine.sh (kit/README.md), or use --target local",
      ]);
      expect(run.output()).not.toMatch(/\n\s+at /);
      expect(leftovers({ tmp: run.tmp })).toEqual([]);
    });
  });
});
