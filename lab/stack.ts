// Prepares a stack of this project to run against the lab: the lab up, its image and SSH key, and the stack's
// config (plain values in Pulumi.<stack>.yaml, the key list as a Pulumi secret). Used by scripts/devUp.ts and tests.
import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import YAML from "yaml";
import { run } from "../host/runner";
import { ensureImage, Image, imageKey } from "./image";
import { labUp } from "./hosts";
import { HOSTS, LAB_DIR, migrationUri, sshUri, uri } from "./layout";

/**
 * local: hosts over their unix sockets, guests from inside the hosts' namespaces (pulumi runs in the root namespace);
 * remote: hosts over qemu+libssh with verified host keys, guests through their hypervisor's sshd (pulumi runs in the
 * operator namespace, lab/remote.ts).
 */
export type Topology = "local" | "remote";

export const KEY_PATH = path.join(LAB_DIR, "keys", "id_ed25519");

export async function ensureKey(): Promise<string> {
  if (!existsSync(KEY_PATH)) {
    await mkdir(path.dirname(KEY_PATH), { recursive: true, mode: 0o700 });
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "vm-infra-lab", "-f", KEY_PATH], { timeoutMs: 30_000 });
  }
  return readFileSync(`${KEY_PATH}.pub`, "utf8").trim();
}

export async function ensureLab(): Promise<{ image: Image; publicKey: string }> {
  const image = await ensureImage();
  await labUp();
  return { image, publicKey: await ensureKey() };
}

export function labHostsConfig(topology: Topology = "local"): Record<string, unknown> {
  return Object.fromEntries(
    HOSTS.map((h) => [h.name, {
      uri: topology === "remote" ? sshUri(h) : uri(h), pool: "default", network: "lab", domainType: "qemu",
      ...(topology === "remote" ? { guestJump: true } : { guestNetns: h.netns }),
      migrationUri: migrationUri(h), sharedPool: "shared",
    }]),
  );
}

export function labImageConfig(image: Image): Record<string, unknown> {
  return {
    volume: `vm-infra-base-${imageKey()}.qcow2`, source: image.qcow2, sha256: image.sha256,
    kernel: image.kernel, initrd: image.initrd, cmdline: image.cmdline,
  };
}

/**
 * Writes the stack's plain config (to `file`, default Pulumi.<stack>.yaml), then sets the secret key list through
 * the CLI, which encrypts it.
 */
export async function writeLabStack(projectDir: string, stack: string, vms: unknown[], image: Image, publicKey: string,
  extra: Record<string, unknown> = {}, file = path.join(projectDir, `Pulumi.${stack}.yaml`), topology: Topology = "local"): Promise<void> {
  const config: Record<string, unknown> = {
    "vm-infra:hosts": labHostsConfig(topology),
    "vm-infra:image": labImageConfig(image),
    "vm-infra:vms": vms,
    "vm-infra:readiness": { privateKeyPath: KEY_PATH, timeoutSeconds: 900 },
    ...extra,
  };
  await writeFile(file, YAML.stringify({ config }));
  await run("pulumi", ["config", "set", "--secret", "--path", "vm-infra:sshKeys[0]", "--cwd", projectDir, "--stack", stack,
    "--config-file", file, "--non-interactive", "--", publicKey], { timeoutMs: 60_000 });
}
