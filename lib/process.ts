import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, readFileSync, type WriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { redact } from "./redact.ts";
import { HarnessError } from "./errors.ts";
import { log } from "./log.ts";

export interface ProcessSpec {
  /** Human name used in every message: "kube-apiserver". */
  name: string;
  command: string;
  args: string[];
  env: Record<string, string | undefined>;
  cwd?: string;
  /** Where stdout+stderr go, redacted, line by line. */
  logFile: string;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

// Every live process group we started, so that even an unexpected exit of the harness
// (an uncaught error, process.exit) kills them: 'exit' handlers run synchronously.
const live = new Map<number, string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const pid of live.keys()) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  });
}

/**
 * A running local process in its own process group (so its children die with it), with a
 * redacted log file and an in-memory tail for error messages.
 */
export class StartedProcess implements AsyncDisposable {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  readonly exited: Promise<ExitInfo>;
  #exit: ExitInfo | undefined;
  #tail: string[] = [];
  #stopping = false;
  #child: ChildProcess;
  #out: WriteStream;

  private constructor(spec: ProcessSpec, child: ChildProcess, out: WriteStream) {
    this.name = spec.name;
    this.logFile = spec.logFile;
    this.#child = child;
    this.#out = out;
    if (child.pid === undefined) throw new Error("no pid");
    this.pid = child.pid;
    live.set(this.pid, spec.name);
    let partial = "";
    const onData = (chunk: Buffer) => {
      const text = partial + chunk.toString("utf8");
      const lines = text.split("\n");
      partial = lines.pop() ?? "";
      for (const raw of lines) this.#line(raw);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    this.exited = new Promise<ExitInfo>((resolve) => {
      child.on("exit", (code, signal) => {
        if (partial) this.#line(partial);
        partial = "";
        this.#exit = { code, signal };
        live.delete(this.pid);
        if (!this.#stopping) log.debug(this.name, `exited (code ${code}, signal ${signal})`);
        // Let pending writes flush before anyone reads the log file.
        out.end(() => resolve({ code, signal }));
      });
    });
  }

  static async start(spec: ProcessSpec): Promise<StartedProcess> {
    installExitHook();
    await mkdir(dirname(spec.logFile), { recursive: true });
    const out = createWriteStream(spec.logFile, { flags: "a", mode: 0o600 });
    const child = spawn(spec.command, spec.args, {
      env: Object.fromEntries(Object.entries(spec.env).filter(([, v]) => v !== undefined)) as Record<string, string>,
      cwd: spec.cwd,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const spawnError = await new Promise<Error | undefined>((resolve) => {
      child.once("error", (err) => resolve(err));
      child.once("spawn", () => resolve(undefined));
    });
    if (spawnError || child.pid === undefined) {
      out.end();
      throw new HarnessError(`${spec.name}: could not start ${spec.command}: ${spawnError?.message ?? "no pid"}`, {
        cause: spawnError,
      });
    }
    return new StartedProcess(spec, child, out);
  }

  #line(raw: string): void {
    const line = redact(raw);
    this.#out.write(line + "\n");
    this.#tail.push(line);
    if (this.#tail.length > 200) this.#tail.splice(0, this.#tail.length - 200);
  }

  get exitInfo(): ExitInfo | undefined {
    return this.#exit;
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  /** stop() was called: an exit from now on is expected, not a death. */
  get stopRequested(): boolean {
    return this.#stopping;
  }

  /** "killed by SIGKILL" / "exited with code 1" once exited. */
  get how(): string {
    const e = this.#exit;
    return e ? (e.signal ? `killed by ${e.signal}` : `exited with code ${e.code}`) : "is running";
  }

  tail(lines = 30): string {
    return this.#tail.slice(-lines).join("\n");
  }

  /** An error for "this process exited while we needed it", with its log tail. */
  exitedError(during: string): HarnessError {
    const how = this.#exit ? this.how : "is not running";
    return new HarnessError(`${this.name} ${how} during ${during} (log: ${this.logFile})`, {
      details: `last lines of ${this.name}'s log:\n${this.tail(25)}`,
    });
  }

  /** SIGTERM to the whole group, SIGKILL after `graceMs`. Idempotent. */
  async stop(graceMs = 5000): Promise<void> {
    this.#stopping = true;
    if (this.#exit) return;
    const signalGroup = (sig: NodeJS.Signals) => {
      try {
        process.kill(-this.pid, sig);
      } catch {
        // the group is gone already
      }
    };
    signalGroup("SIGTERM");
    const timer = setTimeout(() => signalGroup("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
    // Reap stragglers in the group (children that ignored SIGTERM).
    signalGroup("SIGKILL");
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/**
 * Is `pid` a live process? A zombie (exited, not yet reaped; common for orphans in containers
 * whose PID 1 reaps nothing) is not: /proc tells the difference where it exists.
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true; // no /proc here (macOS): kill(0) is all we know
  }
}
