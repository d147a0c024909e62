// npm run lab:up | lab:down | lab:status, and `node dist/lab/cli.js exec HOST -- CMD ARGS...` to run a command
// inside a lab host's network namespace (for example ssh to a guest).
import { spawnSync } from "./spawn";
import { ensureImage } from "./image";
import { labDown, labStatus, labUp } from "./hosts";
import { HOSTS } from "./layout";

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "up": {
      const img = await ensureImage();
      await labUp();
      console.log(`lab: up; image ${img.qcow2} (${(img.sizeBytes / 2 ** 20).toFixed(0)} MiB, built in ${img.buildSeconds} s)`);
      return printStatus();
    }
    case "down":
      await labDown();
      console.log("lab: down");
      return 0;
    case "status":
      return printStatus();
    case "image": {
      const img = await ensureImage();
      console.log(JSON.stringify(img, null, 2));
      return 0;
    }
    case "exec": {
      const host = HOSTS.find((h) => h.name === rest[0]);
      const sep = rest.indexOf("--");
      if (!host || sep !== 1 || rest.length < 3) {
        console.error("usage: lab exec hv-a|hv-b -- CMD [ARGS...]");
        return 2;
      }
      return spawnSync("ip", ["netns", "exec", host.netns, ...rest.slice(2)]);
    }
    default:
      console.error("usage: lab up|down|status|image|exec");
      return 2;
  }
}

async function printStatus(): Promise<number> {
  for (const s of await labStatus()) {
    console.log(`${s.name}\t${s.up ? "up" : "down"}\tnetns ${s.netns}\t${s.uri}`);
    for (const d of s.domains) console.log(`\t${d}`);
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
