/**
 * A component (etcd, kube-apiserver, Vault...) that dies while the suites run must end the run
 * with a failure that names it, not with a minute of connection errors or a hang.
 *
 * The target is started by vitest's globalSetup, which vitest loads through its own module
 * runner: a module-level variable here would not be the one lib/run.ts sees. The process object
 * is shared, so deaths travel as a process event.
 */
export interface ComponentDeath {
  name: string;
  pid?: number;
  /** "killed by SIGKILL", "exited with code 1" */
  how: string;
  logFile?: string;
}

const EVENT = "vkc:component-died";

export function announceDeath(d: ComponentDeath): void {
  process.emit(EVENT as "warning", d as unknown as Error);
}

/** Calls `fn` for every component death announced in this process until the returned function is called. */
export function onComponentDeath(fn: (d: ComponentDeath) => void): () => void {
  const listener = (d: unknown) => fn(d as ComponentDeath);
  process.on(EVENT as "warning", listener);
  return () => process.off(EVENT as "warning", listener);
}

export function describeDeath(d: ComponentDeath): string {
  return `${d.name}${d.pid ? ` (pid ${d.pid})` : ""} ${d.how} while the suites ran; the cases after it could not run${
    d.logFile ? ` (its log: ${d.logFile})` : ""
  }`;
}
