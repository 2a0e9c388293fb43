import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Teardown } from "../cleanup.ts";
import { freePort } from "../ports.ts";
import { pidAlive, StartedProcess } from "../process.ts";
import { registerSecret } from "../redact.ts";

const alive = pidAlive;

describe("local processes", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "vkc-proc-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("stop() kills the whole process group, children included", async () => {
    const p = await StartedProcess.start({
      name: "sleeper",
      command: "sh",
      args: ["-c", "sleep 300 & echo child=$!; wait"],
      env: { PATH: process.env.PATH },
      logFile: join(dir, "sleeper.log"),
    });
    const child = await new Promise<number>((resolve) => {
      const t = setInterval(() => {
        const m = /child=(\d+)/.exec(p.tail());
        if (m) {
          clearInterval(t);
          resolve(Number(m[1]));
        }
      }, 20);
    });
    expect(alive(child)).toBe(true);
    await p.stop(1000);
    expect(p.running).toBe(false);
    await new Promise((r) => setTimeout(r, 100));
    expect(alive(child)).toBe(false);
  });

  it("writes a redacted log with 0600 permissions and reports an early exit with its log tail", async () => {
    const secret = registerSecret("super-secret-root-token-42");
    const p = await StartedProcess.start({
      name: "leaky",
      command: "sh",
      args: ["-c", `echo "Root Token: ${secret}"; echo boom >&2; exit 3`],
      env: { PATH: process.env.PATH },
      logFile: join(dir, "leaky.log"),
    });
    await p.exited;
    const log = await readFile(join(dir, "leaky.log"), "utf8");
    expect(log).toContain("Root Token: [REDACTED]");
    expect(log).not.toContain(secret);
    expect((await stat(join(dir, "leaky.log"))).mode & 0o777).toBe(0o600);
    const err = p.exitedError("start");
    expect(err.message).toMatch(/^leaky exited with code 3 during start \(log: .*leaky.log\)$/);
    expect(err.details).toContain("boom");
  });

  it("a missing binary is a clear error naming the component", async () => {
    await expect(
      StartedProcess.start({ name: "etcd", command: join(dir, "no-such-etcd"), args: [], env: {}, logFile: join(dir, "x.log") }),
    ).rejects.toThrowError(/^etcd: could not start .*no-such-etcd: spawn .* ENOENT$/);
  });
});

describe("teardown", () => {
  it("runs cleanups once, in reverse order, and keeps going past a failing one", async () => {
    const order: string[] = [];
    const t = new Teardown("t");
    t.defer("a", () => order.push("a"));
    t.defer("b", () => {
      throw new Error("b failed");
    });
    t.defer("c", async () => order.push("c"));
    await Promise.all([t.run(), t[Symbol.asyncDispose]()]);
    await t.run();
    expect(order).toEqual(["c", "a"]);
    expect(() => t.defer("late", () => undefined)).toThrowError(/after teardown started/);
  });
});

describe("ports", () => {
  it("hands out distinct free ports", async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    expect(new Set(ports).size).toBe(20);
  });
});
