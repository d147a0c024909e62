// Step 4 of a move: the target proves the VM runs there as configured, each check retried until its deadline.
import { run } from "../../host/runner";
import { guestRoute } from "../../config/resolve";
import { GuestHostKeyError, jumpTcp, sshRun } from "../../host/ssh";
import { agentHostKey, GUEST_KEY_FILE } from "../guestHostKey";
import { Virsh } from "../../host/virsh";
import { parseDomainXml } from "../../libvirt/domain";
import { poll, PollTimeout } from "../../host/poll";
import { findAddress } from "../vmReady";
import { HealthResult, Log, MoveRequest, msg } from "./types";

export interface Check {
  name: string;
  run: () => Promise<void>;
}

export function healthChecks(r: MoveRequest, T: Virsh, paths: { diskPath: string; isoPath: string }): Check[] {
  const checks: Check[] = [
    { name: "domain running", run: async () => expectEq("state", await T.domainState(r.name), "running") },
    {
      name: "QEMU monitor answering",
      run: async () => {
        const out = await T.exec(["qemu-monitor-command", "--", r.name, '{"execute":"query-status"}'], 15_000);
        if (!/"status":\s*"running"/.test(out)) throw new Error(`query-status: ${out.trim()}`);
      },
    },
    {
      name: "memory, vCPUs, disks and NIC as configured",
      run: async () => {
        const d = parseDomainXml(await T.exec(["dumpxml", "--", r.name]));
        expectEq("memory MiB", d.memoryMiB, r.memoryMiB);
        expectEq("vCPUs", d.vcpus, r.vcpus);
        expectEq("MAC", d.mac?.toLowerCase(), r.mac.toLowerCase());
        for (const p of [paths.diskPath, paths.isoPath]) if (!d.diskPaths.includes(p)) throw new Error(`disk ${p} not attached (has ${d.diskPaths.join(", ")})`);
      },
    },
    {
      name: "guest agent ping",
      run: async () => void (await T.exec(["qemu-agent-command", "--timeout", "10", "--", r.name, '{"execute":"guest-ping"}'], 20_000)),
    },
    {
      name: "SSH login",
      run: async () => {
        const address = await guestAddress(r, T);
        const login = (publicKey: string) => sshRun({ user: r.guest.user, address, privateKeyPath: r.guest.privateKeyPath, ...guestRoute(r.to),
          hostKey: { alias: r.name, publicKey } }, ["true"], 20_000);
        // a guest that never had its pinned key (made before vm-infra pinned keys; readiness installs it after this
        // update's move) logs in with the key it has, read through its guest agent: verified, never trusted on first use
        const own = () => agentHostKey(T, r.name);
        if (!r.guest.hostKey) {
          const key = await own();
          if (!key) throw new Error(`no ed25519 host key in ${GUEST_KEY_FILE}.pub (read through the guest agent)`);
          return void (await login(key));
        }
        await login(r.guest.hostKey).catch(async (e) => {
          const key = e instanceof GuestHostKeyError ? await own() : undefined;
          if (!key) throw e;
          await login(key);
        });
      },
    },
  ];
  const http = r.migration.httpCheck;
  if (http)
    checks.push({
      name: `HTTP GET :${http.port}${http.path}`,
      run: async () => {
        const address = await guestAddress(r, T);
        const { jump, netns } = guestRoute(r.to);
        if (jump) { // through the target's SSH forwarding: the request is written to the guest's port, the status line read back
          const answer = await jumpTcp({ address, jump }, http.port, httpGet(address, http.path), 15_000);
          const status = answer.stdout.split("\r\n")[0];
          if (!/^HTTP\/1\.[01] 2\d\d\b/.test(status)) throw new Error(`answered ${JSON.stringify(status.slice(0, 100)) || "nothing"}`);
          return;
        }
        const url = `http://${address}:${http.port}${http.path}`;
        const curl = ["curl", "-fsS", "-o", "/dev/null", "--max-time", "5", "--", url];
        const [file, ...args] = netns ? ["ip", "netns", "exec", netns, ...curl] : curl;
        await run(file, args, { timeoutMs: 15_000 });
      },
    });
  return checks;
}

/** An HTTP/1.0 GET (the server closes the connection after its answer). The path is checked by the config schema. */
export const httpGet = (address: string, path: string) => `GET ${path} HTTP/1.0\r\nHost: ${address}\r\nUser-Agent: vm-infra\r\nConnection: close\r\n\r\n`;

async function guestAddress(r: MoveRequest, T: Virsh): Promise<string> {
  const a = r.guest.staticAddress ?? (await findAddress(T, r.name, r.mac));
  if (!a) throw new Error("no address yet (lease or guest agent)");
  return a;
}

function expectEq(what: string, got: unknown, want: unknown): void {
  if (got !== want) throw new Error(`${what} is ${String(got)}, expected ${String(want)}`);
}

/** Runs each check until it passes or the deadline passes; stops at the first check that never passes. */
export async function runHealth(checks: Check[], timeoutS: number, log: Log, name: string, intervalMs = 2000): Promise<HealthResult[]> {
  const results: HealthResult[] = [];
  for (const c of checks) {
    const t0 = Date.now();
    let attempts = 0;
    const ok = await poll(async () => {
      attempts++;
      try {
        await c.run();
        return { value: true };
      } catch (e) {
        return { retry: msg(e) };
      }
    }, { timeoutMs: timeoutS * 1000, intervalMs, what: c.name }).catch((e) => {
      if (e instanceof PollTimeout) return e;
      throw e;
    });
    if (ok instanceof PollTimeout) {
      const detail = (ok.last ?? "").slice(0, 300);
      results.push({ check: c.name, ok: false, attempts, ms: Date.now() - t0, detail });
      log(`${name}: health check failed: ${c.name}: ${detail}`);
      return results;
    }
    results.push({ check: c.name, ok: true, attempts, ms: Date.now() - t0 });
  }
  return results;
}
