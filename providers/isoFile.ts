// The cloud-init seed ISO as a local file: built from the documents (a Pulumi secret: they carry keys), named by the
// documents' hash and this resource's own instance, kept per stack. Refresh reports a file that is gone or changed as
// gone, so the next up builds it again; a replacement builds a new file before the old one is removed, and each
// removes only its own.
import * as pulumi from "@pulumi/pulumi";
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import * as path from "node:path";
import { SeedFiles, buildSeedIso, sha256File } from "../host/iso";

export interface IsoInputs {
  /** Directory for this stack's ISOs. */
  dir: string;
  vm: string;
  /** sha256 of the three documents (cloud-init/documents.ts). */
  hash: string;
  userData: string;
  metaData: string;
  networkConfig: string;
}

/** Outputs carry no document: the state keeps those only as (secret) inputs. */
export interface IsoOutputs {
  dir: string;
  vm: string;
  hash: string;
  path: string;
  instance: string;
  sha256: string;
}

export const isoPath = (i: Pick<IsoInputs, "dir" | "vm" | "hash">, instance: string) => path.join(i.dir, `${i.vm}-${i.hash.slice(0, 16)}-${instance}.iso`);

const files = (i: IsoInputs): SeedFiles => ({ "user-data": i.userData, "meta-data": i.metaData, "network-config": i.networkConfig });

export const provider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: IsoOutputs, news: IsoInputs) {
    const replaces = (["dir", "vm", "hash"] as const).filter((k) => olds[k] !== news[k]);
    return { changes: replaces.length > 0, replaces, deleteBeforeReplace: false };
  },
  async create(i: IsoInputs) {
    const instance = randomBytes(4).toString("hex");
    const out = isoPath(i, instance);
    const sha256 = await buildSeedIso(files(i), out);
    const outs: IsoOutputs = { dir: i.dir, vm: i.vm, hash: i.hash, path: out, instance, sha256 };
    return { id: out, outs };
  },
  async read(id: string, props: IsoOutputs) {
    const now = await sha256File(props.path).catch(() => undefined);
    if (now !== props.sha256) return { id: undefined as unknown as string, props: {} }; // gone or changed: up builds it again
    return { id, props };
  },
  async delete(_id: string, p: IsoOutputs) {
    await rm(p.path, { force: true });
  },
};
