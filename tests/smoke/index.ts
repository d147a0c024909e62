// Engine smoke stack: the project's own patterns under the real engine (see tests/e2e/smoke.test.ts): a dynamic
// resource loaded through providers/shim.ts that runs programs through host/runner.ts, registered either with the
// generic dynamic type (config typed=false: how stacks before type tokens were made) or with a type token of its own
// and the alias that upgrades the former without a replacement.
import * as pulumi from "@pulumi/pulumi";
import { shim, typed } from "../../providers/shim";

const cfg = new pulumi.Config();
const dir = cfg.require("dir");
const content = cfg.require("content");
const withToken = cfg.getBoolean("typed") ?? true;

class SmokeFile extends pulumi.dynamic.Resource {
  declare readonly sha256: pulumi.Output<string>;
  constructor(name: string, args: { path: string; content: string }, opts?: pulumi.CustomResourceOptions) {
    const props = { ...args, sha256: undefined };
    if (withToken) super(shim("providers/smokeFile"), name, props, typed(opts), "vm-infra", "SmokeFile");
    else super(shim("providers/smokeFile"), name, props, opts);
  }
}

const file = new SmokeFile("file", { path: `${dir}/provider.txt`, content });

export const fileSha256 = file.sha256;
