// Pulumi serializes a dynamic provider's functions into state and later runs them in a separate process whose
// working directory is the program directory. Serializing vm-infra's host layer by value would freeze old code into
// every stack's state (read and delete would run the code of the day the resource was created) and trips over
// modules that cannot be serialized. So each provider registered with Pulumi is this small shim: at call time it
// loads the compiled implementation from the vm-infra checkout that runs the program. Everything it captures is a
// string; keep it that way.
import * as pulumi from "@pulumi/pulumi";

export type ProviderModule = { provider: pulumi.dynamic.ResourceProvider };

/** `modulePath` is relative to the vm-infra root, without extension, e.g. "providers/vmPlacement". */
export function shim(modulePath: string): pulumi.dynamic.ResourceProvider {
  const load = (): pulumi.dynamic.ResourceProvider => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const path = require("path") as typeof import("path");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require("fs") as typeof import("fs");
    let dir = process.cwd();
    for (;;) {
      const candidate = path.join(dir, "dist", `${modulePath}.js`);
      if (fs.existsSync(candidate) && fs.existsSync(path.join(dir, "package.json"))) {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        return (require(candidate) as ProviderModule).provider;
      }
      const up = path.dirname(dir);
      if (up === dir) throw new Error(`vm-infra: cannot find dist/${modulePath}.js above ${process.cwd()}; run npm run build`);
      dir = up;
    }
  };
  return {
    check: (olds, news) => {
      const p = load();
      return p.check ? p.check(olds, news) : Promise.resolve({ inputs: news });
    },
    diff: (id, olds, news) => {
      const p = load();
      return p.diff ? p.diff(id, olds, news) : Promise.resolve({});
    },
    create: (inputs) => load().create(inputs),
    read: (id, props) => {
      const p = load();
      return p.read ? p.read(id, props) : Promise.resolve({ id, props });
    },
    update: (id, olds, news) => {
      const p = load();
      if (!p.update) throw new Error(`vm-infra: ${modulePath} has no update`);
      return p.update(id, olds, news);
    },
    delete: (id, props) => {
      const p = load();
      return p.delete ? p.delete(id, props) : Promise.resolve();
    },
  };
}

/**
 * Resource options for a vm-infra dynamic resource registered with a type token of its own
 * (`pulumi-nodejs:dynamic/vm-infra:<Type>`, so previews, JSON results and policies can tell them apart): the alias
 * keeps stacks made with the generic `pulumi-nodejs:dynamic:Resource` token from replacing anything.
 */
export const typed = (opts: pulumi.CustomResourceOptions | undefined): pulumi.CustomResourceOptions =>
  ({ ...opts, aliases: [...(opts?.aliases ?? []), { type: "pulumi-nodejs:dynamic:Resource" }] });
