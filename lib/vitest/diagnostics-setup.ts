// vitest setupFiles of the conformance project: a diagnostics bundle for every failed case.
import { beforeEach, inject } from "vitest";
import { log } from "../log.ts";
import { resetEvidence, writeDiagnostics } from "./diagnostics.ts";
import { connect } from "../auth-setup/steps.ts";

beforeEach(({ onTestFailed, task }) => {
  resetEvidence();
  onTestFailed(async ({ task: failed }) => {
    try {
      const error = (failed.result?.errors ?? []).map((e) => e.message).join("\n");
      const file = await writeDiagnostics(task.fullName ?? task.name, error, await connect(inject("target")));
      log.info("diagnostics", `wrote ${file}`);
    } catch (err) {
      log.warn("diagnostics", `could not write the diagnostics bundle: ${(err as Error).message}`);
    }
  });
});
