// Lines a dynamic provider prints reach `pulumi up` / `preview` output as info diagnostics. Written synchronously:
// stdout is a pipe, and an asynchronous write can still be queued when the engine shuts the provider down.
import { writeSync } from "node:fs";

export const say = (line: string): void => {
  try {
    writeSync(1, `${line}\n`);
  } catch {
    /* the engine is gone (a killed up): the work goes on, and the audit log still records it */
  }
};

export const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));
