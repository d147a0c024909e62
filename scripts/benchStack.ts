// What the benchmark scripts share: a command-line option, and a stack of this project driven through the CLI
// with each command timed.
import * as path from "node:path";
import { parseArgs } from "node:util";
import { run } from "../host/runner";

/** `--name value` from the command line (node:util parseArgs; any other option is refused), or `fallback`. */
export function arg(name: string, fallback: string): string {
  const key = name.replace(/^--/, "");
  const { values } = parseArgs({ options: { [key]: { type: "string" } }, allowPositionals: false });
  return values[key] ?? fallback;
}

export function benchStack(stack: string) {
  const root = path.join(__dirname, "..", ".."); // compiled to dist/scripts
  const common = ["--cwd", root, "--stack", stack, "--non-interactive"];
  const cli = (args: string[], timeoutMs = 60_000) => run("pulumi", [...args, ...common], { timeoutMs });
  return {
    root,
    stack,
    /** Runs a pulumi command on this stack; resolves with its wall time in ms. */
    timed: async (args: string[]): Promise<number> => {
      const t0 = Date.now();
      await cli(args, 60 * 60_000);
      return Date.now() - t0;
    },
    select: () => cli(["stack", "select", "--create"]),
    remove: () => cli(["stack", "rm", "--yes", "--force"]),
    vmsOutput: async () => JSON.parse((await cli(["stack", "output", "vms", "--json"])).stdout) as Record<string, Record<string, unknown>>,
  };
}
