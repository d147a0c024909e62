// A cancelled `vm-infra apply` (SIGTERM/SIGINT) must not start moves that are still waiting for their turn (limits,
// waves). The engine's cancel never reaches a dynamic provider, so the CLI leaves a marker for the stack, and the
// limiter checks it before a waiting move starts. A marker older than the provider process (this update) is stale.
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import * as path from "node:path";

// compiled to dist/providers/migration/cancel.js: the checkout is three levels up
const DIR = path.join(__dirname, "..", "..", "..", ".vm-infra", "cancel");
const file = (stack: string) => path.join(DIR, encodeURIComponent(stack.split("/").pop() ?? stack));

export function markCancelled(stack: string): void {
  try {
    mkdirSync(DIR, { recursive: true });
    writeFileSync(file(stack), `${new Date().toISOString()}\n`);
  } catch {
    /* without the marker, waiting moves still start: the engine finishes them and records them */
  }
}

export function clearCancelled(stack: string): void {
  rmSync(file(stack), { force: true });
}

/** Whether the stack's apply was cancelled after `sinceMs` (the start of this provider process, i.e. this update). */
export function cancelledSince(stack: string | undefined, sinceMs = Date.now() - process.uptime() * 1000): boolean {
  if (!stack) return false;
  const f = file(stack);
  return existsSync(f) && statSync(f).mtimeMs >= sinceMs;
}
