// Who owns a domain of a given name on a host: vm-infra writes its owner (project, stack, resource, instance) into
// every domain's libvirt <metadata>. Nothing of that name is adopted or removed without this answer.
import { Virsh, isNotFound } from "../host/virsh";
import { Owner, parseOwner, parseUuid } from "../libvirt/domain";
import { Seen, seenOf } from "./migration/decide";

export type Found = { exists: false } | { exists: true; uuid?: string; owner?: Owner };

export async function findDomain(v: Virsh, name: string): Promise<Found> {
  try {
    const xml = await v.exec(["dumpxml", "--", name]);
    return { exists: true, uuid: parseUuid(xml), owner: parseOwner(xml) };
  } catch (e) {
    if (isNotFound(e)) return { exists: false };
    throw e;
  }
}

export const ownerText = (o: Owner | undefined) =>
  o ? `made by vm-infra project ${o.project}, stack ${o.stack}, resource ${o.resource}` : "not made by vm-infra";

/** "a domain named X already exists on H (made by ...)" when one does; undefined when the name is free. */
export async function describeOwner(v: Virsh, name: string, hostName: string): Promise<string | undefined> {
  const f = await findDomain(v, name);
  return f.exists ? `a domain named ${name} already exists on ${hostName} (${ownerText(f.owner)})` : undefined;
}

/** What a host says about this VM: its state, "absent", "unknown" (no answer) or "foreign" (same name, other UUID). */
export async function observe(v: Virsh, name: string, uuid?: string): Promise<Seen> {
  try {
    const f = await findDomain(v, name);
    if (!f.exists) return "absent";
    if (uuid && f.uuid && f.uuid !== uuid) return "foreign";
    return seenOf(await v.domainState(name));
  } catch (e) {
    return isNotFound(e) ? "absent" : "unknown";
  }
}
