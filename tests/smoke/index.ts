// Engine smoke stack: the project's own patterns under the real engine (see tests/e2e/smoke.test.ts).
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { shim } from "../../providers/shim";

const cfg = new pulumi.Config();
const dir = cfg.require("dir");
const content = cfg.require("content");

class SmokeFile extends pulumi.dynamic.Resource {
  declare readonly sha256: pulumi.Output<string>;
  constructor(name: string, args: { path: string; content: string }, opts?: pulumi.CustomResourceOptions) {
    super(shim("providers/smokeFile"), name, { ...args, sha256: undefined }, opts);
  }
}

// A constant script: the value reaches it only through the environment.
const stamp = new command.local.Command("stamp", {
  create: 'printf "%s" "$SMOKE_CONTENT" > "$SMOKE_DIR/command.txt"',
  delete: 'rm -f "$SMOKE_DIR/command.txt"',
  interpreter: ["/bin/sh", "-c"],
  environment: { SMOKE_DIR: dir, SMOKE_CONTENT: content },
  triggers: [content],
}, { deleteBeforeReplace: true }); // same path both times: the old delete must not run after the new create

const file = new SmokeFile("file", { path: `${dir}/provider.txt`, content }, { dependsOn: [stamp] });

export const fileSha256 = file.sha256;
export const stampStdout = stamp.stdout;
