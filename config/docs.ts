// The config's documentation, generated from its schema (config/schema.ts): the README's option tables and the
// descriptions of Pulumi.yaml's config keys. scripts/configDocs.ts writes them; a unit test fails when they drift. Pure.
import { z } from "zod";
import { hostSchema, imageSchema, limitsSchema, migrationSchema, provisionSchema, readinessSchema, vmSchema } from "./schema";

type Meta = { type?: string; description?: string; default?: string };
interface Row { key: string; type: string; default: string; description: string }

/** One schema field -> its row: the rule's type, its default, its description (meta found at any wrapper). */
function row(key: string, field: z.ZodType): Row {
  let s: z.ZodType = field;
  let meta: Meta = {};
  let dflt = "";
  let optional = false;
  for (let depth = 0; depth < 8; depth++) {
    meta = { ...(s.meta() as Meta | undefined), ...meta };
    const def = s._zod.def as { type: string; innerType?: z.ZodType; out?: z.ZodType; defaultValue?: unknown; entries?: Record<string, string> };
    if (def.type === "default") {
      const v = def.defaultValue;
      dflt = v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length > 0 ? "see below" : JSON.stringify(v);
      s = def.innerType!;
    } else if (def.type === "optional") { optional = true; s = def.innerType!; }
    else if (def.type === "pipe") s = def.out!;
    else {
      if (!meta.type) meta.type = def.type === "enum" ? Object.values(def.entries ?? {}).map((v) => JSON.stringify(v)).join(" / ") : def.type;
      break;
    }
  }
  return { key, type: meta.type ?? "", default: dflt || meta.default || (optional ? "none" : "required"), description: meta.description ?? "" };
}

function table(title: string, schema: z.ZodObject): string {
  const esc = (t: string) => t.replace(/\|/g, "\\|");
  const rows = Object.entries(schema.shape).map(([k, f]) => row(k, f as z.ZodType));
  return [`**${title}**`, "", "| option | type | default | what it does |", "|---|---|---|---|",
    ...rows.map((r) => `| \`${r.key}\` | ${esc(r.type)} | ${esc(r.default)} | ${esc(r.description)} |`)].join("\n");
}

/** The README's option tables (between its `<!-- config-options -->` markers). */
export function optionTables(): string {
  return [
    table("`vm-infra:hosts`: host name -> options", hostSchema),
    table("`vm-infra:image`", imageSchema),
    table("`vm-infra:vms`: a list of VMs, each", vmSchema),
    table("`vms[].migration`", migrationSchema),
    table("`vms[].provision` (`true` takes every default)", provisionSchema),
    table("`vm-infra:readiness`", readinessSchema),
    table("`vm-infra:migrationLimits`: moves at once (see Fleet changes)", limitsSchema),
  ].join("\n\n");
}

/** Pulumi.yaml's `config:` block: the engine checks the types; vm-infra checks the rest and the tables document it. */
export function pulumiConfig(): Record<string, unknown> {
  const keys = (s: z.ZodObject) => Object.keys(s.shape).join(", ");
  return {
    "vm-infra:hosts": { type: "object", description: `host name -> {${keys(hostSchema)}} (README: Configuration)` },
    "vm-infra:image": { type: "object", description: `{${keys(imageSchema)}} (README: Configuration)` },
    "vm-infra:vms": { type: "array", items: { type: "object" }, description: `[{${keys(vmSchema)}}] (README: Configuration)` },
    "vm-infra:sshKeys": {
      type: "array", items: { type: "string" }, default: [],
      description: "SSH public keys for VMs that list none of their own (set with `pulumi config set --secret --path 'vm-infra:sshKeys[0]' ...`)",
    },
    "vm-infra:readiness": { type: "object", description: `{${keys(readinessSchema)}} (README: Configuration)` },
    "vm-infra:migrationLimits": { type: "object", default: {}, description: `{${keys(limitsSchema)}}: moves at once (README: Fleet changes)` },
    "vm-infra:provisionSecrets": {
      type: "object", default: {},
      description: "VM name -> {var: value}: secret vars for its playbook (set with `pulumi config set --secret --path 'vm-infra:provisionSecrets.web-1.db_password' ...`)",
    },
  };
}
