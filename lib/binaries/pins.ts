import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../config.ts";

export type Component = "etcd" | "kube-apiserver" | "kube-controller-manager" | "kubectl" | "vault" | "bao";
export const COMPONENTS: readonly Component[] = ["etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "vault", "bao"];

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
