import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../config.ts";
import { UsageError } from "../errors.ts";

export type Component = "etcd" | "kube-apiserver" | "kube-controller-manager" | "kubectl" | "vault" | "bao";

export interface DownloadPin {
  url: string;
  checksum: string;
  format: "raw" | "tar.gz" | "zip";
  member?: string;
}
export interface BuildPin {
  module: string;
  moduleVersion: string;
  stagingVersion?: string;
  pinRequired?: string[];
  packages: Partial<Record<Component, string>>;
}
export interface ProductPin {
  version: string;
  components: Component[];
  download?: DownloadPin;
  registry?: { pypi: string; wheelTag: string; member: string };
  build?: BuildPin;
  /** Versions other than `version` that were provisioned and run here (selectable, e.g. --vault-version). */
  alsoTested?: string[];
  /** Per-version changes to the build recipe (e.g. other pinRequired modules), keyed by exact version. */
  buildOverrides?: Record<string, Partial<BuildPin>>;
}
export type Pins = Record<"kubernetes" | "etcd" | "vault" | "openbao", ProductPin>;

let cached: Pins | undefined;
export function loadPins(file = join(PACKAGE_ROOT, "fixtures", "versions.json")): Pins {
  if (!cached || file !== join(PACKAGE_ROOT, "fixtures", "versions.json")) {
    const raw = JSON.parse(readFileSync(file, "utf8")) as Pins & { $comment?: string };
    delete (raw as { $comment?: string }).$comment;
    cached = raw;
  }
  return cached;
}

/** The product a component belongs to, e.g. kube-apiserver -> kubernetes. */
export function productOf(component: Component, pins: Pins = loadPins()): { name: keyof Pins; pin: ProductPin } {
  for (const [name, pin] of Object.entries(pins) as [keyof Pins, ProductPin][]) {
    if (pin.components.includes(component)) return { name, pin };
  }
  throw new Error(`no pin for component ${component}`);
}

const GOARCH: Record<string, string> = { x64: "amd64", arm64: "arm64" };
const UNAME: Record<string, string> = { x64: "x86_64", arm64: "arm64" };

/** Fills {version} {minor} {patch} {arch} {uarch} {name} in a pinned template. */
export function expand(template: string, version: string, name: string, arch = process.arch): string {
  const [, minor = "0", patch = "0"] = version.split(".");
  return template
    .replaceAll("{version}", version)
    .replaceAll("{minor}", minor)
    .replaceAll("{patch}", patch)
    .replaceAll("{arch}", GOARCH[arch] ?? arch)
    .replaceAll("{uarch}", UNAME[arch] ?? arch)
    .replaceAll("{name}", name);
}

/** Versions chosen instead of the pins, per product (e.g. --vault-version → { vault: "1.20.4" }). */
export type VersionChoice = Partial<Record<keyof Pins, string>>;

const SEMVER = /^\d+\.\d+\.\d+$/;

/**
 * The pins with a product's version replaced by the chosen one: downloads, builds and the
 * cache (<cache>/<component>/<version>/) then follow it. The build recipe is the pin's, with
 * that version's `buildOverrides` applied. Returns `pins` itself when nothing is chosen.
 */
export function withVersions(pins: Pins, choice: VersionChoice = {}): Pins {
  let out = pins;
  for (const [product, version] of Object.entries(choice) as [keyof Pins, string | undefined][]) {
    if (!version || version === pins[product].version) continue;
    if (!SEMVER.test(version)) throw new UsageError(`${product} version must be X.Y.Z (got "${version}")`);
    const pin = pins[product];
    const override = pin.buildOverrides?.[version];
    out = {
      ...out,
      [product]: { ...pin, version, ...(pin.build ? { build: { ...pin.build, ...override } } : {}) },
    };
  }
  return out;
}
