import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { createProxy } from "proxy";
import { Agent, ProxyAgent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HarnessError } from "../../errors.ts";
import { httpJson } from "../../http.ts";
import { generatePki, type Pki } from "../../providers/pki.ts";
import { VaultClient } from "../client.ts";
import type { VaultSettings } from "../env.ts";
import { noProxyMatches, proxyFor, vaultDispatcher } from "../transport.ts";

describe("proxyFor: Go's ProxyFromEnvironment", () => {
  const p = { httpsProxy: "http://proxy:3128", httpProxy: "http://plain:3128" };

  it("picks the proxy by scheme, with no fallback from https to HTTP_PROXY", () => {
    expect(proxyFor("https://vault.example.com:8200", p)).toBe("http://proxy:3128");
    expect(proxyFor("http://vault.example.com:8200", p)).toBe("http://plain:3128");
    expect(proxyFor("https://vault.example.com", { httpProxy: "http://plain:3128" })).toBeUndefined();
    expect(proxyFor("https://vault.example.com", { httpsProxy: "proxy:3128" })).toBe("http://proxy:3128");
  });

  it("never proxies localhost or loopback", () => {
    for (const a of ["https://localhost:8200", "https://127.0.0.1:8200", "https://127.1.2.3", "https://[::1]:8200"])
      expect(proxyFor(a, p)).toBeUndefined();
    expect(proxyFor("https://10.0.0.1:8200", p)).toBe("http://proxy:3128");
  });

  it("NO_PROXY: hosts, subdomains, leading dots, ports, IPs, CIDRs, *", () => {
    const m = (host: string, port: number, np: string) => noProxyMatches(host, port, np);
    expect(m("vault.example.com", 8200, "example.com")).toBe(true);
    expect(m("vault.example.com", 8200, ".example.com")).toBe(true);
    expect(m("vault.example.com", 8200, "*.example.com")).toBe(true);
    expect(m("example.com", 8200, ".example.com")).toBe(true);
    expect(m("notexample.com", 8200, "example.com")).toBe(false);
    expect(m("vault.example.com", 8200, "other.com, vault.example.com:8200")).toBe(true);
    expect(m("vault.example.com", 8201, "vault.example.com:8200")).toBe(false);
    expect(m("10.1.2.3", 8200, "10.0.0.0/8")).toBe(true);
    expect(m("11.1.2.3", 8200, "10.0.0.0/8")).toBe(false);
    expect(m("192.0.2.2", 8200, "192.0.2.2")).toBe(true);
    expect(m("fd00::2", 8200, "fd00::/64")).toBe(true);
    expect(m("fd00::2", 8200, "[fd00:0::2]:8200")).toBe(true);
    expect(m("anything", 1, "*")).toBe(true);
    expect(m("anything", 1, "")).toBe(false);
    expect(proxyFor("https://vault.svc.cluster.local:8200", { ...p, noProxy: ".svc.cluster.local,10.96.0.0/12" })).toBeUndefined();
  });

  it("VAULT_PROXY_ADDR sends everything through the proxy, NO_PROXY and loopback included", () => {
    expect(proxyFor("https://127.0.0.1:8200", { vaultProxy: "http://corp:1", noProxy: "*" })).toBe("http://corp:1");
  });

  it("builds a ProxyAgent only when the address is proxied", async () => {
    const base = { tls: { rejectUnauthorized: true }, proxy: { httpsProxy: "http://proxy:3128", noProxy: "internal" } };
    const direct = vaultDispatcher({ ...base, address: "https://vault.internal:8200" });
    const viaProxy = vaultDispatcher({ ...base, address: "https://vault.example.com:8200" });
    expect(direct).toBeInstanceOf(Agent);
    expect(viaProxy).toBeInstanceOf(ProxyAgent);
    await Promise.all([direct.close(), viaProxy.close()]);
  });
});

describe("httpJson through a dispatcher (local TLS server with client certificates, local CONNECT proxy)", () => {
  let pki: Pki;
  let server: Server;
  let plain: Server;
  let proxy: Server;
  let origin: string;
  const connects: string[] = [];
  const seen: { ns?: string; token?: string; clientCert: boolean; method?: string; body: string }[] = [];

  beforeAll(async () => {
    pki = await generatePki({ ipAddresses: [], dnsNames: ["localhost", "vault.test"] });
    server = createHttpsServer(
      { cert: pki.servingCert, key: pki.servingKey, ca: pki.caCert, requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        let body = "";
        req.on("data", (c) => (body += c));
        req.on("end", () => {
          seen.push({
            ns: req.headers["x-vault-namespace"] as string | undefined,
            token: req.headers["x-vault-token"] as string | undefined,
            clientCert: (req.socket as unknown as { authorized: boolean }).authorized,
            method: req.method,
            body,
          });
          if (req.url === "/slow") return; // never answers
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ data: { path: req.url } }));
        });
      },
    );
    plain = createHttpServer((_req, res) => res.writeHead(404, { "content-type": "text/plain" }).end("no such thing"));
    proxy = createProxy(createHttpServer());
    proxy.on("connect", (req) => connects.push(req.url ?? ""));
    await Promise.all([server, plain, proxy].map((s) => new Promise<void>((r) => s.listen(0, "127.0.0.1", r))));
    origin = `https://localhost:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const s of [server, plain, proxy]) {
      s?.closeAllConnections?.();
      await new Promise((r) => s?.close(r));
    }
  });

  const settings = (over: Partial<VaultSettings> = {}): Pick<VaultSettings, "address" | "tls" | "proxy"> => ({
    address: origin,
    tls: { ca: [pki.caCert], cert: pki.adminCert, key: pki.adminKey, rejectUnauthorized: true },
    proxy: {},
    ...over,
  });

  it("sends with the client certificate, the namespace header and a body", async () => {
    const dispatcher = vaultDispatcher(settings());
    const vault = new VaultClient({ address: origin, token: "s.t", namespace: "team-a", dispatcher });
    const res = await vault.write("secret/data/x", { a: 1 });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ data: { path: "/v1/secret/data/x" } });
    expect(seen.at(-1)).toEqual({ ns: "team-a", token: "s.t", clientCert: true, method: "POST", body: '{"a":1}' });
    // (LIST goes to the real Vault in scripts/__tests__/vault-conventions.e2e.test.ts: Node's HTTP parser rejects it.)
    expect((await vault.delete("secret/data/x")).status).toBe(200);
    expect(seen.at(-1)?.method).toBe("DELETE");
    expect((await vault.withNamespace(undefined).read("sys/health")).status).toBe(200);
    expect(seen.at(-1)?.ns).toBeUndefined();
    await dispatcher.close();
  });

  it("fails with one error naming method and URL: unknown CA, no client certificate, timeout", async () => {
    const noCa = vaultDispatcher(settings({ tls: { cert: pki.adminCert, key: pki.adminKey, rejectUnauthorized: true } }));
    const e1 = await httpJson({ url: `${origin}/v1/sys/health`, dispatcher: noCa }).catch((e) => e);
    expect(e1).toBeInstanceOf(HarnessError);
    expect(e1.message).toMatch(new RegExp(`^GET ${origin}/v1/sys/health: .*(certificate|CERT)`, "i"));

    const noClient = vaultDispatcher(settings({ tls: { ca: [pki.caCert], rejectUnauthorized: true } }));
    const e2 = await httpJson({ method: "PUT", url: `${origin}/v1/sys/health`, body: {}, dispatcher: noClient }).catch((e) => e);
    expect(e2).toBeInstanceOf(HarnessError);
    expect(e2.message).toMatch(new RegExp(`^PUT ${origin}/v1/sys/health: .*requires a client certificate`));

    const ok = vaultDispatcher(settings());
    const e3 = await httpJson({ url: `${origin}/slow`, dispatcher: ok, timeoutMs: 300 }).catch((e) => e);
    expect(e3.message).toBe(`GET ${origin}/slow: no response within 300ms`);
    await Promise.all([noCa.close(), noClient.close(), ok.destroy()]);
  });

  it("skip-verify connects to an untrusted server; a server name not in the certificate fails, the right one works", async () => {
    const skip = vaultDispatcher(settings({ tls: { cert: pki.adminCert, key: pki.adminKey, rejectUnauthorized: false } }));
    expect((await httpJson({ url: `${origin}/v1/sys/health`, dispatcher: skip })).status).toBe(200);
    const ip = origin.replace("localhost", "127.0.0.1");
    const byIp = vaultDispatcher(settings({ address: ip }));
    const err = await httpJson({ url: `${ip}/v1/sys/health`, dispatcher: byIp }).catch((e) => e);
    expect(err.message).toMatch(/IP: 127\.0\.0\.1 is not in the cert's list|ERR_TLS_CERT_ALTNAME_INVALID/);
    const named = vaultDispatcher(settings({ address: ip, tls: { ...settings().tls, servername: "vault.test" } }));
    expect((await httpJson({ url: `${ip}/v1/sys/health`, dispatcher: named })).status).toBe(200);
    await Promise.all([skip.close(), byIp.close(), named.close()]);
  });

  it("tunnels through a CONNECT proxy (VAULT_PROXY_ADDR), TLS and client certificate end to end", async () => {
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const d = vaultDispatcher(settings({ proxy: { vaultProxy: proxyUrl } }));
    const before = connects.length;
    const res = await httpJson({ url: `${origin}/v1/sys/health`, dispatcher: d });
    expect(res.status).toBe(200);
    expect(seen.at(-1)?.clientCert).toBe(true);
    expect(connects.slice(before)).toEqual([`localhost:${new URL(origin).port}`]);
    await d.close();
  });

  it("keeps the response contract for plain http (text bodies) and rejects ca with a dispatcher", async () => {
    const url = `http://127.0.0.1:${(plain.address() as AddressInfo).port}/x`;
    const d = vaultDispatcher({ address: url, tls: { rejectUnauthorized: true }, proxy: {} });
    const res = await httpJson({ url, dispatcher: d });
    expect(res).toMatchObject({ status: 404, body: "no such thing", text: "no such thing" });
    expect(res.headers["content-type"]).toBe("text/plain");
    await expect(httpJson({ url, dispatcher: d, ca: "x" })).rejects.toThrow(
      /TLS options go in the request \(ca\/cert\/key\) or the dispatcher/,
    );
    await d.close();
  });
});
