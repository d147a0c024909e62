// New SSH connections to one hypervisor, paced. Every virsh call over qemu+ssh/libssh/libssh2 is a new SSH connection,
// and so is every guest SSH that jumps through the hypervisor (ProxyJump). OpenSSH's sshd drops new connections at
// random once 10 are still authenticating (MaxStartups 10:30:100, its default), and an update that creates or checks
// many VMs at once starts dozens of virsh calls in the same second: some then fail with "Connection reset by peer"
// or "kex_exchange_identification". So each SSH endpoint gets at most SLOTS connections in their first HOLD_MS (the
// handshake and authentication) from this process; a command that runs longer gives its slot back after HOLD_MS, so a
// long upload or migration never holds up the others. One gate per provider process: all of an update's dynamic
// resources run in one. Local transports (unix socket, tcp) are not gated.

/** Well under sshd's default of 10 connections still authenticating, which other clients of the host share. */
export const SLOTS = 4;
/** A connection's handshake and key authentication, with margin for a loaded host. */
export const HOLD_MS = 3000;

export class SshGate {
  private readonly busy = new Map<string, number>();
  private readonly waiting = new Map<string, (() => void)[]>();

  constructor(
    private readonly slots = SLOTS,
    private readonly holdMs = HOLD_MS,
  ) {}

  /** Runs `f` once `endpoint` has a free slot; the slot is held until `f` settles or HOLD_MS passed, whichever is first. */
  async through<T>(endpoint: string, f: () => Promise<T>): Promise<T> {
    await this.acquire(endpoint);
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      this.release(endpoint);
    };
    const timer = setTimeout(release, this.holdMs);
    try {
      return await f();
    } finally {
      clearTimeout(timer);
      release();
    }
  }

  /** Connections of `endpoint` still in their first HOLD_MS (for tests and logs). */
  inFlight(endpoint: string): number {
    return this.busy.get(endpoint) ?? 0;
  }

  private acquire(endpoint: string): Promise<void> {
    const n = this.busy.get(endpoint) ?? 0;
    if (n < this.slots) {
      this.busy.set(endpoint, n + 1);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const q = this.waiting.get(endpoint) ?? [];
      q.push(resolve);
      this.waiting.set(endpoint, q);
    });
  }

  private release(endpoint: string): void {
    const next = this.waiting.get(endpoint)?.shift();
    if (next) return next(); // the slot passes straight to the next in line (first come, first served)
    const n = (this.busy.get(endpoint) ?? 1) - 1;
    if (n > 0) this.busy.set(endpoint, n);
    else this.busy.delete(endpoint);
  }
}

/** The provider process's gate. */
export const sshGate = new SshGate();

/** The SSH endpoint an ssh-family libvirt URI or jump host names ("user@host:port"), the key the gate counts by. */
export const endpointKey = (e: { user?: string; host: string; port?: number }) => `${e.user ?? ""}@${e.host}:${e.port ?? 22}`;
