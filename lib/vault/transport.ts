import { isIP } from "node:net";
import { Agent, ProxyAgent, type Dispatcher } from "undici";
import { UsageError } from "../errors.ts";
import type { ProxyEnv, VaultSettings, VaultTls } from "./env.ts";

/**
 * The transport of the harness's Vault calls, from VaultSettings: an undici dispatcher (a
 * maintained client's agent: TLS, client certificates, CONNECT tunnels and keep-alive are
 * undici's), chosen for Vault's address the way the vault/bao CLIs choose, i.e. Go's
 * http.ProxyFromEnvironment:
 *
 * - VAULT_PROXY_ADDR / VAULT_HTTP_PROXY: every request through that proxy, NO_PROXY ignored;
 * - else HTTPS_PROXY for an https address, HTTP_PROXY for http (no fallback from one to the
 *   other, unlike undici's EnvHttpProxyAgent), unless NO_PROXY matches the host;
 * - localhost and loopback IPs are never proxied (Go's rule);
 * - NO_PROXY: comma-separated "*", host names (a match includes subdomains; a leading "." or "*."
 *   is ignored), IPs, CIDR ranges (10.0.0.0/8), each optionally with ":port".
 *
 * The choice is made once for the address (the harness talks to one Vault; it follows no
 * redirects), so a ProxyAgent or a plain Agent is returned and nothing re-reads process.env.
 */
export function vaultDispatcher(s: Pick<VaultSettings, "address" | "tls" | "proxy">, o: { connections?: number } = {}): Dispatcher {
  const tls = connectOptions(s.tls);
  const proxy = proxyFor(s.address, s.proxy);
  if (!proxy) return new Agent({ connect: tls, ...(o.connections ? { connections: o.connections } : {}) });
  // requestTls: TLS to Vault inside the tunnel. The proxy's own TLS (an https:// proxy) uses the system roots.
  return new ProxyAgent({ uri: proxy, requestTls: tls, ...(o.connections ? { connections: o.connections } : {}) });
}

/** Node tls.connect options from VaultTls (undefined fields left out so Node's defaults apply). */
export function connectOptions(t: VaultTls): {
  ca?: string[];
  cert?: string;
  key?: string;
  servername?: string;
  rejectUnauthorized: boolean;
} {
  return {
    ...(t.ca ? { ca: t.ca } : {}),
    ...(t.cert !== undefined ? { cert: t.cert, key: t.key } : {}),
    ...(t.servername ? { servername: t.servername } : {}),
    rejectUnauthorized: t.rejectUnauthorized,
  };
}

/** The proxy URL a request to `target` goes through, or undefined for a direct connection. */
export function proxyFor(target: string | URL, p: ProxyEnv): string | undefined {
  const url = typeof target === "string" ? new URL(target) : target;
  if (p.vaultProxy) return normalizeProxy(p.vaultProxy);
  const proxy = url.protocol === "https:" ? p.httpsProxy : url.protocol === "http:" ? p.httpProxy : undefined;
  if (!proxy) return undefined;
  const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  const port = Number(url.port) || (url.protocol === "https:" ? 443 : 80);
  if (host === "localhost" || isLoopback(host)) return undefined;
  if (noProxyMatches(host, port, p.noProxy ?? "")) return undefined;
  return normalizeProxy(proxy);
}

/** Go accepts "host:port" as a proxy and means http://host:port. */
function normalizeProxy(v: string): string {
  const u = v.includes("://") ? v : `http://${v}`;
  if (!URL.canParse(u)) throw new UsageError(`the proxy "${v.replace(/\/\/[^/@]*@/, "//<redacted>@")}" is not a URL: use http://host:port`);
  return u;
}

/** NO_PROXY as golang.org/x/net/http/httpproxy matches it. */
export function noProxyMatches(host: string, port: number, noProxy: string): boolean {
  for (const raw of noProxy.split(",")) {
    let entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === "*") return true;
    if (entry.includes("/")) {
      if (isIP(host) && inCidr(host, entry)) return true;
      continue;
    }
    let entryPort: number | undefined;
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(entry);
    if (m) [entry, entryPort] = [m[1]!, Number(m[2])];
    entry = entry.replace(/^\[|\]$/g, "");
    if (entryPort !== undefined && entryPort !== port) continue;
    if (isIP(entry)) {
      if (isIP(host) && canonicalIp(entry) === canonicalIp(host)) return true;
      continue;
    }
    const domain = entry.replace(/^\*?\./, "");
    if (host === domain || host.endsWith(`.${domain}`)) return true;
  }
  return false;
}

function isLoopback(host: string): boolean {
  const v = isIP(host);
  if (v === 4) return host.startsWith("127.");
  if (v === 6) {
    const big = ipToBigInt(host);
    return big === 1n || (big >> 32n === 0xffffn && big >> 24n === 0xffff7fn); // ::1, ::ffff:127.x
  }
  return false;
}

function canonicalIp(ip: string): string {
  return ipToBigInt(ip).toString(16) + `/${isIP(ip)}`;
}

function inCidr(host: string, cidr: string): boolean {
  const [net, bitsText] = cidr.split("/");
  const bits = Number(bitsText);
  if (!net || !isIP(net) || !Number.isInteger(bits) || isIP(net) !== isIP(host)) return false;
  const width = isIP(net) === 4 ? 32 : 128;
  if (bits < 0 || bits > width) return false;
  const shift = BigInt(width - bits);
  return ipToBigInt(net) >> shift === ipToBigInt(host) >> shift;
}

function ipToBigInt(ip: string): bigint {
  if (isIP(ip) === 4) return ip.split(".").reduce((acc, o) => (acc << 8n) + BigInt(Number(o)), 0n);
  // IPv6: expand "::" and an embedded IPv4 tail.
  let text = ip.toLowerCase().replace(/%.*$/, "");
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = ipToBigInt(v4[1]!);
    text = text.slice(0, -v4[1]!.length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return groups.reduce((acc, g) => (acc << 16n) + BigInt(parseInt(g || "0", 16)), 0n);
}
