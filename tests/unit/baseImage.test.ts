// The base-image provider against a recording fake runner: a base image is removed only when no volume in its pool
// stands on it (whichever stack made those volumes), a declared image is never removed, and refresh reports one gone.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { CommandError, Runner } from "../../host/runner";
import { virshRunner } from "../../host/virsh";
import { BaseImageOutputs, provider } from "../../providers/baseImage";
import { provider as ready, ReadyInputs } from "../../providers/vmReady";

const dir = mkdtempSync(path.join(tmpdir(), "vmi-base-"));
process.env.VM_INFRA_AUDIT_LOG = path.join(dir, "audit.log");
const real = virshRunner.current;
afterAll(() => {
  virshRunner.current = real;
  rmSync(dir, { recursive: true, force: true });
});

const BASE = "base.qcow2";
const notFound = (m: string) => new CommandError(["virsh"], 1, null, false, m, "");

/** A pool: volume -> its backing file's path (or null); every call recorded. */
function pool(vols: Record<string, string | null>, calls: string[][]): Runner {
  return async (_file, args) => {
    const a = args.slice(3);
    calls.push(a);
    const ok = (stdout = "") => ({ stdout, stderr: "", exitCode: 0 });
    const vol = a[a.length - 1];
    switch (a[0]) {
      case "pool-refresh": return ok();
      case "vol-info": if (vol in vols) return ok("Name: x\n"); throw notFound("error: Storage volume not found: no storage vol with matching name");
      case "vol-path": return ok(`/pool/${vol}\n`);
      case "vol-list": return ok(`${Object.keys(vols).map((v) => ` ${v}   /pool/${v}`).join("\n")}\n`);
      case "vol-dumpxml": return ok(`<volume><name>${vol}</name><target><path>/pool/${vol}</path></target>` +
        (vols[vol] ? `<backingStore><path>${vols[vol]}</path><format type='qcow2'/></backingStore>` : "") + "</volume>");
      case "vol-delete": delete vols[vol]; return ok();
    }
    throw notFound(`error: unexpected ${a.join(" ")}`);
  };
}

const outs: BaseImageOutputs = { hostName: "hv-a", uri: "qemu:///a", pool: "default", volume: BASE, source: "/img/base.qcow2", sha256: "ab", uploaded: true };

test("delete keeps a base image that overlays stand on, whoever made them, and names them", async () => {
  const calls: string[][] = [];
  const vols = { [BASE]: null, "web-1-0a1b2c3d.qcow2": `/pool/${BASE}`, "other-stack-11112222.qcow2": `/pool/${BASE}`, "unrelated.iso": null };
  virshRunner.current = pool(vols, calls);
  await provider.delete!("hv-a/base.qcow2", outs);
  expect(Object.keys(vols)).toEqual([BASE, "web-1-0a1b2c3d.qcow2", "other-stack-11112222.qcow2", "unrelated.iso"]);
  expect(calls.some((c) => c[0] === "vol-delete")).toBe(false);
});

test("delete removes a base image nothing stands on, even one another stack uploaded (its users are its owners)", async () => {
  const calls: string[][] = [];
  const vols: Record<string, string | null> = { [BASE]: null, "unrelated.iso": null };
  virshRunner.current = pool(vols, calls);
  await provider.delete!("hv-a/base.qcow2", { ...outs, uploaded: false });
  expect(Object.keys(vols)).toEqual(["unrelated.iso"]);
  expect(calls.filter((c) => c[0] === "vol-delete")).toEqual([["vol-delete", "--pool", "default", "--", BASE]]);
});

test("a host that does not answer: create and delete say so, and what becomes of the image", async () => {
  virshRunner.current = async () => { throw notFound("error: failed to connect to the hypervisor\nerror: Failed to connect socket: Connection refused"); };
  await expect(provider.delete!("hv-a/base.qcow2", outs)).rejects.toThrow("base image base.qcow2 on hv-a: hv-a did not answer (error: failed to " +
    "connect to the hypervisor); it stays in the state, and a later up removes it once the host answers (if nothing stands on it)");
  await expect(provider.create({ ...outs })).rejects.toThrow("base image base.qcow2 on hv-a: hv-a did not answer (error: failed to connect to the " +
    "hypervisor); nothing was changed");
});

test("a declared base image (no source) is the operator's: never removed", async () => {
  const calls: string[][] = [];
  virshRunner.current = pool({ [BASE]: null }, calls);
  await provider.delete!("hv-a/base.qcow2", { ...outs, source: undefined, uploaded: false });
  expect(calls).toEqual([]);
});

test("refresh: gone from the pool means gone; a host that does not answer keeps the state", async () => {
  virshRunner.current = pool({}, []);
  expect((await provider.read!("hv-a/base.qcow2", outs)).id).toBeUndefined();
  virshRunner.current = pool({ [BASE]: null }, []);
  expect(await provider.read!("hv-a/base.qcow2", outs)).toEqual({ id: "hv-a/base.qcow2", props: outs });
  virshRunner.current = async () => { throw notFound("error: failed to connect to the hypervisor"); };
  expect(await provider.read!("hv-a/base.qcow2", outs)).toEqual({ id: "hv-a/base.qcow2", props: outs });
});

test("readiness reports a VM that is shut off instead of waiting for it, and asks nothing of the guest", async () => {
  const calls: string[][] = [];
  virshRunner.current = async (_f, args) => {
    calls.push(args.slice(3));
    if (args[3] === "domstate") return { stdout: "shut off\n", stderr: "", exitCode: 0 };
    throw notFound("error: unexpected");
  };
  const i: ReadyInputs = { name: "web-1", uri: "qemu:///a", mac: "52:54:00:00:00:01", user: "ops", privateKeyPath: "/k", timeoutSeconds: 900,
    powerState: "shut off", generation: "g", hostKey: "ssh-ed25519 AAAA", hostKeyPrivate: "-----BEGIN OPENSSH PRIVATE KEY-----" };
  const t0 = Date.now();
  const r = await ready.create(i);
  expect(Date.now() - t0).toBeLessThan(5000);
  expect(r).toEqual({ id: "web-1", outs: { ...i, address: "", readySeconds: 0, status: "shut off" } });
  expect(calls).toEqual([["domstate", "--", "web-1"]]);
});

test("a new URI for the same host keeps the image (an update that checks it is there), and refuses a URI where it is not", async () => {
  const newUri = "qemu+libssh://root@hv-a/system?known_hosts=/k";
  const d = await provider.diff!("hv-a/base.qcow2", outs, { ...outs, uri: newUri });
  expect([d.changes, d.replaces]).toEqual([true, []]);
  const calls: string[][] = [];
  virshRunner.current = pool({ [BASE]: null }, calls);
  expect((await provider.update!("hv-a/base.qcow2", outs, { ...outs, uri: newUri })).outs.uri).toBe(newUri);
  virshRunner.current = pool({}, calls);
  await expect(provider.update!("hv-a/base.qcow2", outs, { ...outs, uri: newUri })).rejects.toThrow(
    `base image ${BASE}: hosts.hv-a.uri changed to ${newUri}, but pool default there has no ${BASE}: a new URI must reach the same hypervisor ` +
    "(give another one its own host name); nothing was changed");
  expect(calls.filter((c) => !["pool-refresh", "vol-info"].includes(c[0]))).toEqual([]); // questions only
});
