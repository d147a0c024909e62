// A VM's SSH host key: an ed25519 key pair made by ssh-keygen in a private directory when the VM is first declared,
// kept as a Pulumi secret (the private half) for the VM's whole life. cloud-init installs it at first boot (ssh_keys);
// every SSH vm-infra makes to the guest accepts exactly its public half. A move keeps it (same disk); only a new VM
// (another name) gets another one.
import * as pulumi from "@pulumi/pulumi";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { run } from "../host/runner";
import { withPrivateDir } from "../host/tempFiles";

export interface HostKeyInputs {
  vm: string;
}

export interface HostKeyOutputs extends HostKeyInputs {
  /** "ssh-ed25519 AAAA..." (no comment). */
  publicKey: string;
  /** OpenSSH private key; a secret output. */
  privateKey: string;
}

export async function makeHostKey(): Promise<{ publicKey: string; privateKey: string }> {
  return withPrivateDir(async (dir) => {
    const file = path.join(dir, "ssh_host_ed25519_key");
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", file], { timeoutMs: 30_000 });
    const [type, body] = (await readFile(`${file}.pub`, "utf8")).trim().split(/\s+/);
    return { publicKey: `${type} ${body}`, privateKey: await readFile(file, "utf8") };
  });
}

export const provider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: HostKeyOutputs, news: HostKeyInputs) {
    const replaces = olds.vm !== news.vm ? ["vm"] : [];
    return { changes: replaces.length > 0, replaces, deleteBeforeReplace: false };
  },
  async create(i: HostKeyInputs) {
    const outs: HostKeyOutputs = { vm: i.vm, ...(await makeHostKey()) };
    return { id: i.vm, outs };
  },
  async read(id: string, props: HostKeyOutputs) {
    return { id, props };
  },
  async delete() {
    /* the key lives only in the state */
  },
};
