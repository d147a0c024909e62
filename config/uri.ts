// libvirt connection URIs, parsed and checked before any is used: only known drivers, transports and query
// parameters, a valid user, host and port. A URI is a config value, and some of libvirt's parameters run programs
// (`command=`, `netcat=`), put text into the far side's shell (`socket=` on a remote transport) or skip verification
// (`no_verify`, `known_hosts_verify=ignore`): those are refused, never passed on. Pure.

export type Transport = "local" | "unix" | "ssh" | "libssh" | "libssh2" | "tcp" | "tls";

export interface LibvirtUri {
  driver: "qemu" | "test";
  transport: Transport;
  user?: string;
  host?: string;
  port?: number;
  path: string;
  params: Record<string, string>;
}

const REMOTE: readonly Transport[] = ["ssh", "libssh", "libssh2", "tcp", "tls"];
const SSH_FAMILY: readonly Transport[] = ["ssh", "libssh", "libssh2"];
/** The query parameters vm-infra passes on, per transport, and the values each may take (undefined: a path). */
const PARAMS: Record<Transport, Record<string, readonly string[] | "path">> = {
  local: {},
  unix: { socket: "path" },
  ssh: { keyfile: "path" },
  libssh: { keyfile: "path", known_hosts: "path", known_hosts_verify: ["normal"], sshauth: ["privkey", "agent"] },
  libssh2: { keyfile: "path", known_hosts: "path", known_hosts_verify: ["normal"], sshauth: ["privkey", "agent"] },
  tcp: {},
  tls: { pkipath: "path" },
};
/** Why a parameter is refused outright, whatever the transport. */
const REFUSED: Record<string, string> = {
  command: "it names a program to run instead of ssh",
  netcat: "it names a program to run on the host",
  no_verify: "it turns off certificate verification",
  proxy: "vm-infra always uses libvirt's own helper on the host",
};

const USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;
const HOST_RE = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const PATH_RE = /^\/[A-Za-z0-9._/-]{0,4095}$/;

/** The URI's parts, or the reason it is refused (a sentence naming the part). */
export function parseLibvirtUri(uri: string): LibvirtUri | string {
  const m = /^(qemu|test)(?:\+([a-z0-9]+))?:\/\//.exec(uri);
  if (!m) return "a libvirt URI like qemu+ssh://root@hv1/system, qemu:///system or qemu+unix:///system?socket=/path";
  const driver = m[1] as LibvirtUri["driver"];
  const transport = (m[2] ?? "local") as Transport;
  if (!(transport in PARAMS)) return `transport "${m[2]}" is not one of unix, ssh, libssh, libssh2, tcp, tls`;
  if (/[\s\\%]/.test(uri)) return "spaces, backslashes and percent-escapes are not allowed";
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return "not a parseable URI";
  }
  if (u.password) return "a password in the URI is refused (use an SSH key)";
  if (u.hash) return "a fragment (#...) is not part of a libvirt URI";
  const remote = REMOTE.includes(transport);
  const host = u.hostname.startsWith("[") ? u.hostname : u.hostname || undefined;
  if (remote && !host) return `the ${transport} transport needs a host (qemu+${transport}://user@host/system)`;
  if (!remote && (host || u.username || u.port)) return `a local URI (qemu:///system, qemu+unix:///system) names no user, host or port`;
  if (host && !(HOST_RE.test(host) || /^\[[0-9a-fA-F:.]+\]$/.test(host))) return `host ${JSON.stringify(host)} is not a host name or IP address`;
  if (u.username && !USER_RE.test(u.username)) return `user ${JSON.stringify(u.username)} must match ${USER_RE.source}`;
  const port = u.port ? Number(u.port) : undefined;
  if (port !== undefined && !(port >= 1 && port <= 65535)) return `port ${u.port} is not 1..65535`;
  const path = u.pathname;
  const paths = driver === "test" ? ["/default"] : ["/system", "/session"];
  if (!paths.includes(path)) return `path ${JSON.stringify(path)}: ${driver} URIs end in ${paths.join(" or ")}`;
  const params: Record<string, string> = {};
  for (const [k, v] of u.searchParams) {
    if (k in params) return `parameter ${k} is given twice`;
    if (REFUSED[k]) return `parameter ${k}= is refused: ${REFUSED[k]}`;
    if (k === "socket" && remote) return "parameter socket= is refused on a remote transport: it becomes part of a command run on the host";
    const allowed = PARAMS[transport][k];
    if (!allowed) {
      const known = Object.keys(PARAMS[transport]);
      return `parameter ${k}= is not accepted for ${transport} URIs (accepted: ${known.length ? known.join(", ") : "none"})`;
    }
    if (allowed === "path" ? !PATH_RE.test(v) : !allowed.includes(v))
      return `parameter ${k}=${JSON.stringify(v)}: ${allowed === "path" ? "an absolute path of [A-Za-z0-9._/-]" : `one of ${allowed.join(", ")}`}`;
    params[k] = v;
  }
  if (SSH_FAMILY.includes(transport) && transport !== "ssh" && params.known_hosts === undefined)
    return `${transport} URIs need known_hosts=<file>: host keys are always verified`;
  return { driver, transport, ...(u.username ? { user: u.username } : {}), ...(host ? { host } : {}), ...(port ? { port } : {}), path, params };
}

/** A hypervisor's SSH endpoint used as a jump host to its guests (ProxyJump): taken from its libvirt URI. */
export interface JumpHost {
  host: string;
  user?: string;
  port?: number;
  /** The key libvirt uses for the host (keyfile=); else ssh's defaults. */
  keyfile?: string;
  /** The known_hosts libvirt checks the host against (known_hosts=); else ssh's defaults, still checked. */
  knownHosts?: string;
}

/** The jump host a guestJump host's URI gives, or why it cannot give one (a sentence). Pure. */
export function jumpHostOf(uri: string): JumpHost | string {
  const u = parseLibvirtUri(uri);
  if (typeof u === "string") return u;
  if (!SSH_FAMILY.includes(u.transport) || !u.host) return "needs a qemu+ssh:// or qemu+libssh:// URI: guests are reached through that host's SSH";
  return {
    host: u.host, ...(u.user ? { user: u.user } : {}), ...(u.port ? { port: u.port } : {}),
    ...(u.params.keyfile ? { keyfile: u.params.keyfile } : {}), ...(u.params.known_hosts ? { knownHosts: u.params.known_hosts } : {}),
  };
}
