/**
 * A component (etcd, kube-apiserver, Vault...) that dies while the suites run must end the run
 * with a failure that names it, not with a minute of connection errors or a hang. The target's
 * owner passes its `watch` to lib/run.ts, which cancels the run and makes this the verdict.
 */
export interface ComponentDeath {
  name: string;
  pid?: number;
  /** "killed by SIGKILL", "exited with code 1" */
  how: string;
  logFile?: string;
}

export function describeDeath(d: ComponentDeath): string {
  return `${d.name}${d.pid ? ` (pid ${d.pid})` : ""} ${d.how} while the suites ran; the cases after it could not run${
    d.logFile ? ` (its log: ${d.logFile})` : ""
  }`;
}
