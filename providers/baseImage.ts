// The base image in one host's pool: uploaded once from a local file whose sha256 is checked first, or declared as
// already present (no source): then create only verifies that the volume exists.
//
// A base image is shared by every overlay built on it, whichever stack made them, so its owner is its users: delete
// removes an image vm-infra uploads (one with a source) only when no volume in the pool has it as backing file, and
// otherwise leaves it, naming the users. A declared image (no source) is the operator's and is never removed. Refresh
// reports an image that is gone, so the next up uploads it again (before the overlays that need it).
import * as pulumi from "@pulumi/pulumi";
import { stat } from "node:fs/promises";
import { sha256File } from "../host/iso";
import { say } from "./say";
import { CommandError } from "../host/runner";
import { Virsh, isUnreachable } from "../host/virsh";
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
  /** This resource's create uploaded the volume (false: it was there already). */
  uploaded: boolean;
}


/** A host that does not answer, said as such: what, where, and what becomes of it. */
const silent = (i: BaseImageInputs, then: string) => (e: unknown): never => {
  if (isUnreachable(e)) throw new Error(`base image ${i.volume} on ${i.hostName}: ${i.hostName} did not answer (${(e as CommandError).stderrTail.trim().split("\n")[0]}); ${then}`);
  throw e;
};

export const provider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: BaseImageOutputs, news: BaseImageInputs) {
    // a new uri for the same host is a new way to reach it (update checks the image is there), not a new image
    const replaces = (["pool", "volume", "sha256"] as const).filter((k) => olds[k] !== news[k]);
    return { changes: replaces.length > 0 || olds.source !== news.source || olds.uri !== news.uri, replaces, deleteBeforeReplace: true };
  },
  async create(i: BaseImageInputs) {
    const v = new Virsh(i.uri);
    await v.refreshPool(i.pool).catch(silent(i, "nothing was changed")); // the pool may be shared: another host may have uploaded it
    if (await v.volumeExists(i.pool, i.volume)) return { id: `${i.hostName}/${i.volume}`, outs: { ...i, uploaded: false } };
    if (!i.source) throw new Error(`base image ${i.volume} is not in pool ${i.pool} on ${i.hostName}, and no image.source is configured to upload it`);
    const got = await sha256File(i.source);
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
  /** Refresh: is the volume still in the pool? Gone means the next up uploads it again. An unreachable host changes nothing. */
  async read(id: string, props: BaseImageOutputs) {
    const v = new Virsh(props.uri);
    try {
      await v.refreshPool(props.pool);
      if (await v.volumeExists(props.pool, props.volume)) return { id, props };
    } catch (e) {
      say(`base image ${props.volume}: refresh could not ask ${props.hostName} (${e instanceof Error ? e.message.slice(0, 200) : e}); state kept`);
      return { id, props };
    }
    say(`base image ${props.volume} is gone from pool ${props.pool} on ${props.hostName}: up uploads it again`);
    return { id: undefined as unknown as string, props: {} };
  },
  async update(_id: string, olds: BaseImageOutputs, news: BaseImageInputs) {
    if (olds.uri !== news.uri) {
      const v = new Virsh(news.uri);
      await v.refreshPool(news.pool).catch(silent(news, "nothing was changed; the state keeps the old URI"));
      if (!(await v.volumeExists(news.pool, news.volume)))
        throw new Error(`base image ${news.volume}: hosts.${news.hostName}.uri changed to ${news.uri}, but pool ${news.pool} there has no ${news.volume}: ` +
          "a new URI must reach the same hypervisor (give another one its own host name); nothing was changed");
    }
    return { outs: { ...olds, ...news } };
  },
  async delete(_id: string, p: BaseImageOutputs) {
    if (!p.source) return; // declared as present: the operator's image, not vm-infra's to remove
    const v = new Virsh(p.uri);
    await v.refreshPool(p.pool).catch(silent(p, "it stays in the state, and a later up removes it once the host answers (if nothing stands on it)"));
    if (!(await v.volumeExists(p.pool, p.volume))) return;
    const users = await v.backingUsers(p.pool, await v.volumePath(p.pool, p.volume));
    if (users.length > 0) {
      say(`base image ${p.volume} on ${p.hostName} kept: ${users.length} volume(s) in pool ${p.pool} stand on it (${users.join(", ")}); ` +
        `it is removed by whichever vm-infra stack deletes it after the last of them`);
      audit({ action: "keep-base-image", vm: "-", host: p.hostName, outcome: "ok", detail: `${p.volume} used by ${users.join(",")}` });
      return;
    }
    await v.deleteVolume(p.pool, p.volume);
    audit({ action: "delete-base-image", vm: "-", host: p.hostName, outcome: "ok", detail: p.volume });
  },
};
