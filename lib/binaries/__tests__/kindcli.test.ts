import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { install } from "../cache.ts";
import { resolveKind } from "../kindcli.ts";

// Where the kind CLI comes from: KIND_BIN, the cache, PATH, or a Go install (not run here: it
// needs the network; `npm run setup -- --target kind` does it for real).
describe("resolveKind", () => {
  let dir: string;
  let bin: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "vkc-kindcli-"));
    bin = join(dir, "bin");
    await import("node:fs/promises").then((fs) => fs.mkdir(bin));
    await writeFile(join(bin, "kind"), "#!/bin/sh\necho kind v0.0.0\n");
    await chmod(join(bin, "kind"), 0o755);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("KIND_BIN wins over everything", async () => {
    expect(await resolveKind({ cacheDir: join(dir, "c1"), version: "v0.33.0", kindBin: "/opt/kind", env: { PATH: bin } })).toEqual({
      path: "/opt/kind",
      source: "env",
    });
  });
  it("then kind on PATH, when not asked to install", async () => {
    expect(await resolveKind({ cacheDir: join(dir, "c1"), version: "v0.33.0", env: { PATH: bin } })).toEqual({
      path: "kind",
      source: "path",
    });
    expect(await resolveKind({ cacheDir: join(dir, "c1"), version: "v0.33.0", env: { PATH: "/nonexistent" } })).toBeUndefined();
  });
  it("a cached kind of the wanted version comes before PATH", async () => {
    const cache = join(dir, "c2");
    const path = await install(cache, "kind", "v0.33.0", Buffer.from("#!/bin/sh\n"), "build");
    expect(await resolveKind({ cacheDir: cache, version: "v0.33.0", env: { PATH: bin } })).toEqual({ path, source: "cache" });
    expect(await resolveKind({ cacheDir: cache, version: "v0.22.0", env: { PATH: bin } })).toEqual({ path: "kind", source: "path" });
  });
  it("installing without a Go toolchain is a clear error naming the alternatives", async () => {
    await expect(
      resolveKind({ cacheDir: join(dir, "c3"), version: "v0.33.0", env: { PATH: "/nonexistent" }, install: true }),
    ).rejects.toThrow(/cannot install kind v0.33.0: no Go toolchain on PATH; install kind .* or set KIND_BIN/);
  });
});
