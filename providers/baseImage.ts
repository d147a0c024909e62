// The base image in one host's pool: uploaded once from a local file whose sha256 is checked first, or declared as
// already present (no source): then create only verifies that the volume exists. Delete removes what it uploaded.
import * as pulumi from "@pulumi/pulumi";
import { stat } from "node:fs/promises";
import { run } from "../host/runner";
import { Virsh } from "../host/virsh";
import { audit } from "./audit";

export interface BaseImageInputs {
  hostName: string;
  uri: string;
  pool: string;
  volume: string;
  source?: string;
  sha256?: string;
}

export interface BaseImageOutputs extends BaseImageInputs {
  uploaded: boolean;
}

async function sha256(file: string): Promise<string> {
  return (await run("sha256sum", ["--", file], { timeoutMs: 300_000 })).stdout.split(" ")[0];
}

export const provider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: BaseImageOutputs, news: BaseImageInputs) {
    const replaces = (["uri", "pool", "volume", "sha256"] as const).filter((k) => olds[k] !== news[k]);
    return { changes: replaces.length > 0 || olds.source !== news.source, replaces, deleteBeforeReplace: true };
  },
  async create(i: BaseImageInputs) {
    const v = new Virsh(i.uri);
    await v.refreshPool(i.pool); // the pool may be shared: another host may have uploaded the image
    if (await v.volumeExists(i.pool, i.volume)) return { id: `${i.hostName}/${i.volume}`, outs: { ...i, uploaded: false } };
    if (!i.source) throw new Error(`base image ${i.volume} is not in pool ${i.pool} on ${i.hostName}, and no image.source is configured to upload it`);
    const got = await sha256(i.source);
    if (got !== i.sha256) throw new Error(`base image ${i.source}: sha256 ${got} does not match the configured ${i.sha256}`);
    const size = (await stat(i.source)).size;
    await v.exec(["vol-create-as", "--pool", i.pool, "--name", i.volume, "--capacity", String(size), "--format", "qcow2"]);
    try {
      await v.exec(["vol-upload", "--pool", i.pool, "--vol", i.volume, "--file", i.source], 600_000);
    } catch (e) {
      await v.deleteVolume(i.pool, i.volume);
      throw e;
    }
    audit({ action: "upload-base-image", vm: "-", host: i.hostName, outcome: "ok", detail: i.volume });
    return { id: `${i.hostName}/${i.volume}`, outs: { ...i, uploaded: true } };
  },
  async update(_id: string, _olds: BaseImageOutputs, news: BaseImageInputs) {
    return { outs: { ..._olds, ...news } };
  },
  async delete(_id: string, p: BaseImageOutputs) {
    if (!p.uploaded) return; // declared as present: not ours to remove
    await new Virsh(p.uri).deleteVolume(p.pool, p.volume);
    audit({ action: "delete-base-image", vm: "-", host: p.hostName, outcome: "ok", detail: p.volume });
  },
};
