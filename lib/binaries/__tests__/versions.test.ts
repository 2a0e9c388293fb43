import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COMMON_FLAGS, parseArgs } from "../../cli.ts";
import { loadConfig } from "../../config.ts";
import { HarnessError, UsageError } from "../../errors.ts";
import { versionChoice } from "../../lifecycle/start.ts";
import { cachePath } from "../cache.ts";
import { wrapperGoMod } from "../gobuild.ts";
import { provision } from "../index.ts";
import { loadPins, withVersions, type Pins } from "../pins.ts";
import { zip } from "./archives.ts";

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const PIN = loadPins().vault.version;

describe("--vault-version: flag and config", () => {
  it("the flag sets VKC_VAULT_VERSION, which becomes config.vault.version", () => {
    const env: Record<string, string | undefined> = { HOME: "/h" };
    parseArgs(["--vault-version", "1.19.4"], COMMON_FLAGS, env);
    expect(env.VKC_VAULT_VERSION).toBe("1.19.4");
    expect(loadConfig(env, "/").vault).toEqual({ mode: "process", version: "1.19.4" });
    expect(versionChoice(loadConfig(env, "/"))).toEqual({ vault: "1.19.4" });
  });
  it("unset: no version in the config, the pin is used", () => {
    const c = loadConfig({ HOME: "/h" }, "/");
    expect(c.vault.version).toBeUndefined();
    expect(versionChoice(c)).toEqual({});
  });
  it.each([
    [{ VKC_VAULT_VERSION: "1.20" }, /must be X\.Y\.Z.*got "1\.20"/],
    [{ VKC_VAULT_VERSION: "v1.20.4" }, /must be X\.Y\.Z/],
    [{ VKC_VAULT_VERSION: "1.19.4", VKC_FLAVOR: "openbao" }, /applies to --flavor vault/],
    [{ VKC_VAULT_VERSION: "1.19.4", VKC_TARGET: "kind" }, /--vault-image/],
    [{ VKC_VAULT_VERSION: "1.19.4", VKC_TARGET: "existing" }, /needs --vault process/],
  ])("bad input %j is a one-line UsageError (exit 2)", (extra, message) => {
    const err = (() => {
      try {
        loadConfig({ HOME: "/h", ...extra }, "/");
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain("\n");
  });
  it("existing target with --vault process accepts it", () => {
    expect(loadConfig({ HOME: "/h", VKC_TARGET: "existing", VKC_VAULT: "process", VKC_VAULT_VERSION: "1.19.4" }, "/").vault.version).toBe(
      "1.19.4",
    );
  });
});

describe("withVersions()", () => {
  const pins = loadPins();
  it("no choice, or the pinned version itself, returns the pins unchanged", () => {
    expect(withVersions(pins)).toBe(pins);
    expect(withVersions(pins, { vault: PIN })).toBe(pins);
  });
  it("replaces only the chosen product's version and leaves the loaded pins alone", () => {
    const p = withVersions(pins, { vault: "1.19.4" });
    expect(p.vault.version).toBe("1.19.4");
    expect(p.vault.build).toEqual(pins.vault.build);
    expect(p.kubernetes).toBe(pins.kubernetes);
    expect(loadPins().vault.version).toBe(PIN);
  });
  it("applies that version's buildOverrides to the build recipe, and the wrapper module follows", () => {
    const base: Pins = structuredClone(pins);
    base.vault.buildOverrides = { "1.18.0": { pinRequired: ["github.com/hashicorp/vault/sdk"] } };
    const p = withVersions(base, { vault: "1.18.0" });
    expect(p.vault.build!.pinRequired).toEqual(["github.com/hashicorp/vault/sdk"]);
    expect(p.vault.build!.module).toBe(pins.vault.build!.module);
    expect(withVersions(base, { vault: "1.19.4" }).vault.build!.pinRequired).toEqual(pins.vault.build!.pinRequired);
    const goMod = `module github.com/hashicorp/vault\n\nrequire (\n\tgithub.com/hashicorp/vault/api v1.16.0\n\tgithub.com/hashicorp/vault/sdk v0.15.2\n)\n`;
    const mod = wrapperGoMod("vault", p.vault, goMod);
    expect(mod).toContain("require github.com/hashicorp/vault v1.18.0");
    expect(mod).toContain("replace github.com/hashicorp/vault/sdk => github.com/hashicorp/vault/sdk v0.15.2");
    expect(mod).not.toContain("vault/api =>");
  });
  it("a version that is not X.Y.Z is a UsageError", () => {
    expect(() => withVersions(pins, { vault: "latest" })).toThrowError(UsageError);
  });
  it("the pins file lists only well-formed versions as also tested", () => {
    for (const v of pins.vault.alsoTested ?? []) expect(v).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

describe("provision() with a chosen version", () => {
  let dir: string;
  let server: Server;
  let base: string;
  const files = new Map<string, Buffer>();
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "vkc-ver-"));
    server = createServer((req, res) => {
      const body = files.get(req.url ?? "");
      if (body === undefined) res.writeHead(404).end("not found");
      else res.writeHead(200).end(body);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const addr = server.address();
    base = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  });
  afterAll(async () => {
    server.close();
    await rm(dir, { recursive: true, force: true });
  });
  const pins = (): Pins => {
    const p = structuredClone(loadPins());
    p.vault.download = {
      url: `${base}/vault/{version}/vault.zip`,
      checksum: `${base}/vault/{version}/SUMS`,
      format: "zip",
      member: "vault",
    };
    return p;
  };

  it("downloads the chosen version into its own cache dir; the pin's version is a separate entry", async () => {
    const z = zip({ vault: "VAULT-1.19.4" });
    files.set("/vault/1.19.4/vault.zip", z);
    files.set("/vault/1.19.4/SUMS", Buffer.from(`${sha(z)}  vault.zip\n`));
    const cacheDir = join(dir, "cache");
    const o = { cacheDir, overrides: {}, offline: false, noBuild: true, env: {}, pins: pins() };
    const r = await provision(["vault"], { ...o, versions: { vault: "1.19.4" } });
    expect(r.vault).toMatchObject({ version: "1.19.4", source: "download", path: cachePath(cacheDir, "vault", "1.19.4") });
    expect(await readFile(r.vault!.path, "utf8")).toBe("VAULT-1.19.4");
    const again = await provision(["vault"], { ...o, versions: { vault: "1.19.4" } });
    expect(again.vault).toMatchObject({ version: "1.19.4", source: "cache" });
    // The pin (not downloadable here, builds off) is not satisfied by the other version's binary.
    const err = await provision(["vault"], o).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HarnessError);
    expect((err as Error).message).toContain(`no vault ${PIN} binary`);
  });
  it("a version with no release and no build names that version in its one-line error", async () => {
    const err = await provision(["vault"], {
      cacheDir: join(dir, "none"),
      overrides: {},
      offline: false,
      noBuild: true,
      env: {},
      pins: pins(),
      versions: { vault: "1.0.99" },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HarnessError);
    expect((err as HarnessError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(/^no vault 1\.0\.99 binary: set VAULT_BIN/);
    expect((err as Error).message).toContain("HTTP 404");
  });
});
