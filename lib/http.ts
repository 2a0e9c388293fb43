import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { request as undiciRequest, type Dispatcher } from "undici";
import { HarnessError } from "./errors.ts";
import { span, tracing, type SpanName } from "./trace.ts";

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
  /**
   * An undici dispatcher to send the request through (lib/vault/transport.ts: TLS options, client
   * certificates, a proxy). Exclusive with ca/cert/key, which the dispatcher carries instead.
   */
  dispatcher?: Dispatcher;
  /** Label of this call in a VKC_TRACE_FILE trace (default: "vault" for /v1/ paths, else "http"). */
  traceKind?: SpanName;
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
 * Node 20's fetch cannot take a per-request CA, so this uses node:http(s), or undici when the
 * request carries a dispatcher (Vault's client conventions: lib/vault/transport.ts). Every call is
 * bounded by a timeout; a connection failure becomes an error that names the method and URL.
 */
export function httpJson<T = unknown>(req: HttpRequest): Promise<HttpResponse<T>> {
  if (!tracing()) return send<T>(req);
  return span(req.traceKind ?? (new URL(req.url).pathname.startsWith("/v1/") ? "vault" : "http"), () => send<T>(req));
}

function send<T>(req: HttpRequest): Promise<HttpResponse<T>> {
  if (req.dispatcher) return sendVia<T>(req, req.dispatcher);
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
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parseBody(text, res.headers["content-type"]) as T, text });
      });
    });
    r.on("timeout", () => r.destroy(new Error(`no response within ${timeoutMs}ms`)));
    r.on("error", (err) => reject(new HarnessError(`${method} ${url.origin}${url.pathname}: ${err.message}`, { cause: err })));
    if (payload) r.write(payload);
    r.end();
  });
}

/** JSON when the body is JSON (by content type, or by its look: etcd sends JSON as text/plain), else the text. */
function parseBody(text: string, contentType: string | string[] | undefined): unknown {
  if (/json/.test(String(contentType ?? "")) || /^\s*[[{]/.test(text)) {
    try {
      return JSON.parse(text);
    } catch {
      // keep text
    }
  }
  return text === "" ? undefined : text;
}

/** The same request through an undici dispatcher: same response shape, timeout and error. */
async function sendVia<T>(req: HttpRequest, dispatcher: Dispatcher): Promise<HttpResponse<T>> {
  const url = new URL(req.url);
  const method = req.method ?? "GET";
  if (req.ca !== undefined || req.cert !== undefined || req.key !== undefined)
    throw new HarnessError(`${method} ${url.origin}${url.pathname}: TLS options go in the request (ca/cert/key) or the dispatcher`);
  const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
  const headers: Record<string, string> = { accept: "application/json", ...req.headers };
  if (payload) headers["content-type"] = "application/json";
  const timeoutMs = req.timeoutMs ?? 15_000;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error(`no response within ${timeoutMs}ms`)), timeoutMs);
  try {
    const res = await undiciRequest(url, { method, headers, body: payload, dispatcher, signal: abort.signal });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, body: parseBody(text, res.headers["content-type"]) as T, text };
  } catch (err) {
    const cause = abort.signal.aborted ? abort.signal.reason : err;
    let msg = transportMessage(cause);
    // undici's SocketError: a TLS server that rejects the client's certificate closes the
    // connection after the handshake, and the alert is lost; nothing was read.
    const e = cause as { code?: string; socket?: { bytesRead?: number } } | undefined;
    if (url.protocol === "https:" && e?.code === "UND_ERR_SOCKET" && e.socket?.bytesRead === 0)
      msg += ` (the server closed the TLS connection without a response: a server that requires a client certificate does this when none, or an untrusted one, is sent)`;
    throw new HarnessError(`${method} ${url.origin}${url.pathname}: ${msg}`, { cause });
  } finally {
    clearTimeout(timer);
  }
}

/** undici's error message, plus the TLS code when the message alone does not say what failed. */
function transportMessage(err: unknown): string {
  const e = err as Error & { code?: string; cause?: Error & { code?: string } };
  const inner = e?.cause && typeof e.cause === "object" ? e.cause : undefined;
  const msg = e instanceof Error ? e.message : String(err);
  const code = e?.code ?? inner?.code;
  if (inner?.message && !msg.includes(inner.message)) return `${msg}: ${inner.message}`;
  return code && /SSL|TLS|CERT/.test(code) && !msg.includes(code) ? `${msg} (${code})` : msg;
}
