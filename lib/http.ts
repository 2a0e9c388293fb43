import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { traced, tracing, type TraceKind } from "./bench.ts";
import { HarnessError } from "./errors.ts";

export interface HttpRequest {
  method?: string;
  url: string;
  headers?: Record<string, string>;
  body?: unknown;
  /** PEM CA bundle to trust (https). */
  ca?: string;
  /** PEM client certificate and key (https). */
  cert?: string;
  key?: string;
  timeoutMs?: number;
  /** Label of this call in a VKC_TRACE_FILE trace (default: "vault" for /v1/ paths, else "http"). */
  traceKind?: TraceKind;
}

export interface HttpResponse<T = unknown> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON when the body is JSON, else the text (or undefined for an empty body). */
  body: T;
  text: string;
}

/**
 * One small HTTP(S) client for the harness's own calls (Vault's API, apiserver health).
 * Node 20's fetch cannot take a per-request CA, so this uses node:http(s). Every call is bounded
 * by a timeout; a connection failure becomes an error that names the method and URL.
 */
export function httpJson<T = unknown>(req: HttpRequest): Promise<HttpResponse<T>> {
  if (!tracing()) return send<T>(req);
  return traced(req.traceKind ?? (new URL(req.url).pathname.startsWith("/v1/") ? "vault" : "http"), () => send<T>(req));
}

function send<T>(req: HttpRequest): Promise<HttpResponse<T>> {
  const url = new URL(req.url);
  const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
  const headers: Record<string, string> = { accept: "application/json", ...req.headers };
  if (payload) {
    headers["content-type"] = "application/json";
    headers["content-length"] = String(payload.length);
  }
  const timeoutMs = req.timeoutMs ?? 15_000;
  const method = req.method ?? "GET";
  return new Promise((resolve, reject) => {
    const opts = { method, headers, ca: req.ca, cert: req.cert, key: req.key, timeout: timeoutMs };
    const r = (url.protocol === "https:" ? httpsRequest : httpRequest)(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let body: unknown = text === "" ? undefined : text;
        // Some servers (etcd) send JSON as text/plain: parse whatever looks like JSON.
        if (/json/.test(String(res.headers["content-type"] ?? "")) || /^\s*[[{]/.test(text)) {
          try {
            body = JSON.parse(text);
          } catch {
            // keep text
          }
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: body as T, text });
      });
    });
    r.on("timeout", () => r.destroy(new Error(`no response within ${timeoutMs}ms`)));
    r.on("error", (err) => reject(new HarnessError(`${method} ${url.origin}${url.pathname}: ${err.message}`, { cause: err })));
    if (payload) r.write(payload);
    r.end();
  });
}
