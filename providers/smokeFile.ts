// A tiny provider used by the engine smoke stack: it proves that a vm-infra dynamic provider can run external
// programs through host/runner.ts under the real engine (create, read, update, delete, all through argv arrays).
import * as pulumi from "@pulumi/pulumi";
import { run } from "../host/runner";

export interface SmokeFileInputs {
  path: string;
  content: string;
}

export const provider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: SmokeFileInputs) {
    await run("tee", ["--", inputs.path], { timeoutMs: 10_000, input: inputs.content });
    const sum = await sha256(inputs.path);
    return { id: inputs.path, outs: { ...inputs, sha256: sum } };
  },
  async read(id: string, props: SmokeFileInputs & { sha256: string }) {
    try {
      return { id, props: { ...props, sha256: await sha256(id) } };
    } catch {
      return { id: "", props: {} };
    }
  },
  async diff(_id, olds: SmokeFileInputs, news: SmokeFileInputs) {
    const replaces = olds.path !== news.path ? ["path"] : [];
    return { changes: replaces.length > 0 || olds.content !== news.content, replaces };
  },
  async update(_id: string, _olds: SmokeFileInputs, news: SmokeFileInputs) {
    return { outs: (await provider.create(news)).outs };
  },
  async delete(id: string) {
    await run("rm", ["-f", "--", id], { timeoutMs: 10_000 });
  },
};

async function sha256(path: string): Promise<string> {
  const { stdout } = await run("sha256sum", ["--", path], { timeoutMs: 10_000 });
  return stdout.split(" ")[0];
}
