// One audit line per action that changes a host: what, which VM, which host, when, outcome. JSON lines appended to
// $VM_INFRA_AUDIT_LOG (default .vm-infra/audit.log in the vm-infra checkout). Never carries secrets.
import { appendFileSync, mkdirSync } from "node:fs";
import * as path from "node:path";

export interface AuditEntry {
  action: string;
  vm: string;
  host: string;
  outcome: "ok" | "failed";
  detail?: string;
}

export function audit(e: AuditEntry): void {
  // compiled to dist/providers/audit.js: the checkout is two levels up
  const file = process.env.VM_INFRA_AUDIT_LOG ?? path.join(__dirname, "..", "..", ".vm-infra", "audit.log");
  const line = JSON.stringify({ time: new Date().toISOString(), ...e });
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    appendFileSync(file, line + "\n", { mode: 0o640 });
  } catch {
    /* auditing must never break an operation; the engine log still has the step */
  }
}
