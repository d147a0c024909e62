// What a VM left on hosts where it does not run (an interrupted move), removed only after asking that host.
import { Virsh } from "../../host/virsh";
import { audit } from "../audit";
import { undefineDomain } from "../domainOps";
import { observe } from "../ownership";
import { Leftover } from "../migration/types";
import { errText, say } from "../say";

/**
 * Removes what this VM left on hosts where it does not run, host by host, only after asking that host: a host that does
 * not answer keeps its leftovers (recorded again), and a host where the VM's domain runs or is paused keeps everything
 * (that is a second copy: it is reported, never removed). Returns what is still left.
 */
export async function removeLeftovers(vm: { name: string; uuid?: string }, leftovers: Leftover[] | undefined, runsOn?: Virsh): Promise<Leftover[]> {
  const still: Leftover[] = [];
  // a paused copy (never resumed after it stopped) may go only while the VM's running copy is verified, now
  const verified = runsOn && (leftovers ?? []).length > 0 ? (await observe(runsOn, vm.name, vm.uuid)) === "running" : false;
  const hosts = new Map<string, Leftover[]>();
  for (const l of leftovers ?? []) hosts.set(l.uri, [...(hosts.get(l.uri) ?? []), l]);
  for (const [uri, items] of hosts) {
    const v = new Virsh(uri);
    const host = items[0].hostName;
    const seen = await observe(v, vm.name, vm.uuid);
    // a paused copy with a job still running (a post-copy source serving pages, an incoming migration) is not stale
    const busy = seen === "paused" && (await v.jobInfo(vm.name)).active;
    if (seen === "unknown" || seen === "running" || (seen === "paused" && (!verified || busy)) || seen === "foreign") {
      const why = seen === "unknown" ? "did not answer" : seen === "foreign" ? `has another domain named ${vm.name}` : `has a ${seen} copy of ${vm.name}: two copies, check by hand`;
      say(`${vm.name}: left ${items.map((l) => l.volume ?? `definition ${l.domain}`).join(", ")} on ${host}: ${host} ${why}`);
      still.push(...items);
      continue;
    }
    try {
      if (seen === "paused") await v.exec(["destroy", "--", vm.name]); // the VM runs verified elsewhere: a stale copy
      if (seen === "shut off" || seen === "paused") await undefineDomain(v, vm.name); // an older copy with this VM's UUID
      for (const l of items) if (l.volume) await v.deleteVolume(l.pool, l.volume);
      audit({ action: "delete-leftover", vm: vm.name, host, outcome: "ok", detail: items.map((l) => l.volume ?? l.domain).join(",") });
    } catch (e) {
      say(`${vm.name}: could not remove leftovers on ${host}: ${errText(e).slice(0, 200)}`);
      still.push(...items);
    }
  }
  return still;
}

