// npm run lab:up | lab:down | lab:status, and `node dist/lab/cli.js exec HOST -- CMD ARGS...` to run a command
// inside a lab host's network namespace (for example ssh to a guest).
import { spawnSync } from "./spawn";
import { ensureImage } from "./image";
import { labDown, labLeaks, labStatus, labUp } from "./hosts";
import { HOSTS, OPS, sshUri } from "./layout";

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "up": {
      const img = await ensureImage();
      await labUp();
      console.log(`lab: up; image ${img.qcow2} (${(img.sizeBytes / 2 ** 20).toFixed(0)} MiB, built in ${img.buildSeconds} s)`);
      return printStatus();
    }
    case "down": {
      await labDown();
      console.log("lab: down");
      if (rest[0] !== "--check") return 0;
      const leaks = await labLeaks();
      for (const l of leaks) console.error(`lab: left behind: ${l}`);
      console.log(leaks.length === 0 ? "lab: nothing left behind (netns, run directory, definitions, pools, libvirtd, qemu, dnsmasq)" : `lab: ${leaks.length} leak(s)`);
      return leaks.length === 0 ? 0 : 1;
    }
    case "status":
      return printStatus();
    case "image": {
      const img = await ensureImage();
      console.log(JSON.stringify(img, null, 2));
      return 0;
    }
    case "exec": {
      const netns = rest[0] === "ops" ? OPS.netns : HOSTS.find((h) => h.name === rest[0])?.netns;
      const sep = rest.indexOf("--");
      if (!netns || sep !== 1 || rest.length < 3) {
        console.error("usage: lab exec hv-a|hv-b|ops -- CMD [ARGS...]   (ops: the remote topology's operator namespace)");
        return 2;
      }
      return spawnSync("ip", ["netns", "exec", netns, ...rest.slice(2)]);
    }
    default:
      console.error("usage: lab up|down [--check]|status|image|exec");
      return 2;
  }
}

async function printStatus(): Promise<number> {
  for (const s of await labStatus()) {
    console.log(`${s.name}\t${s.up ? "up" : "down"}\tnetns ${s.netns}\t${s.uri}`);
    const h = HOSTS.find((x) => x.name === s.name);
    if (h) console.log(`\tfrom ${OPS.netns}: ${sshUri(h)}`);
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
