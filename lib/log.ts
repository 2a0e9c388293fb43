import { redact } from "./redact.ts";

/**
 * The harness's own progress log, on stderr so that stdout stays clean for machine output.
 * Every line is redacted. `--debug` (config.debug) adds the debug lines.
 */
export type Level = "debug" | "info" | "warn" | "error";

let threshold: Level = "info";
const order: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export function setLogLevel(level: Level): void {
  threshold = level;
}

function emit(level: Level, scope: string, msg: string): void {
  if (order[level] < order[threshold]) return;
  const tag = level === "info" ? "" : `${level.toUpperCase()} `;
  process.stderr.write(redact(`[vkc] ${tag}${scope ? `${scope}: ` : ""}${msg}`) + "\n");
}

export const log = {
  debug: (scope: string, msg: string) => emit("debug", scope, msg),
  info: (scope: string, msg: string) => emit("info", scope, msg),
  warn: (scope: string, msg: string) => emit("warn", scope, msg),
  error: (scope: string, msg: string) => emit("error", scope, msg),
};

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - m * 60)).padStart(2, "0")}s`;
}
