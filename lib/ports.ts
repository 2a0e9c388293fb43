import { createServer } from "node:net";

/**
 * A free TCP port on 127.0.0.1, chosen by the kernel. A port can still be taken between this
 * call and the component's bind; the local provider retries such a start (see `portsInUse`).
 */
const handedOut = new Set<number>();

export async function freePort(host = "127.0.0.1"): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await kernelPort(host);
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error("could not find a free port on " + host);
}

function kernelPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error("no port assigned"))));
    });
  });
}

/**
 * Which of `ports` another process holds now: a bind on each one, judged by the error's code
 * (EADDRINUSE), not by any message. Asked after a component exited during its start, it tells a
 * port clash (someone took the port first) from any other failure.
 */
export async function portsInUse(ports: number[], host = "127.0.0.1"): Promise<number[]> {
  const held = await Promise.all(ports.map((p) => bindRefused(p, host)));
  return ports.filter((_, i) => held[i]);
}

function bindRefused(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", (err: NodeJS.ErrnoException) => resolve(err.code === "EADDRINUSE"));
    srv.listen(port, host, () => srv.close(() => resolve(false)));
  });
}
