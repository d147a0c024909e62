// libvirt URIs from config: parsed into exact parts, or refused with the reason, before anything connects.
import { parseLibvirtUri } from "../../config/uri";

test.each([
  ["qemu:///system", { driver: "qemu", transport: "local", path: "/system", params: {} }],
  ["qemu+unix:///system?socket=/run/vm-infra-lab/hv-a/libvirt-sock", { driver: "qemu", transport: "unix", path: "/system", params: { socket: "/run/vm-infra-lab/hv-a/libvirt-sock" } }],
  ["qemu+ssh://root@192.168.251.1/system?keyfile=/k/id", { driver: "qemu", transport: "ssh", user: "root", host: "192.168.251.1", path: "/system", params: { keyfile: "/k/id" } }],
  ["qemu+libssh://ops@hv1.example.org:2222/system?known_hosts=/k/known&known_hosts_verify=normal&sshauth=privkey",
    { driver: "qemu", transport: "libssh", user: "ops", host: "hv1.example.org", port: 2222, path: "/system", params: { known_hosts: "/k/known", known_hosts_verify: "normal", sshauth: "privkey" } }],
  ["qemu+tcp://192.168.250.2/system", { driver: "qemu", transport: "tcp", host: "192.168.250.2", path: "/system", params: {} }],
  ["qemu+ssh://root@[fd00::1]:22/system", { driver: "qemu", transport: "ssh", user: "root", host: "[fd00::1]", port: 22, path: "/system", params: {} }],
  ["test:///default", { driver: "test", transport: "local", path: "/default", params: {} }],
])("%s is accepted as exactly its parts", (uri, parts) => expect(parseLibvirtUri(uri)).toEqual(parts));

test.each([
  ["qemu+ssh://root@h/system?command=/tmp/evil", "parameter command= is refused: it names a program to run instead of ssh"],
  ["qemu+ssh://root@h/system?netcat=/tmp/evil", "parameter netcat= is refused: it names a program to run on the host"],
  ["qemu+ssh://root@h/system?socket=/x;reboot", "parameter socket= is refused on a remote transport: it becomes part of a command run on the host"],
  ["qemu+tls://h/system?no_verify=1", "parameter no_verify= is refused: it turns off certificate verification"],
  ["qemu+ssh://root@h/system?proxy=netcat", "parameter proxy= is refused: vm-infra always uses libvirt's own helper on the host"],
  ["qemu+libssh://root@h/system?known_hosts=/k&known_hosts_verify=ignore", 'parameter known_hosts_verify="ignore": one of normal'],
  ["qemu+libssh://root@h/system?known_hosts=/k&known_hosts_verify=auto", 'parameter known_hosts_verify="auto": one of normal'],
  ["qemu+libssh2://root@h/system", "libssh2 URIs need known_hosts=<file>: host keys are always verified"],
  ["qemu+ssh://root@h/system?keyfile=../id", 'parameter keyfile="../id": an absolute path of [A-Za-z0-9._/-]'],
  ["qemu+ssh://root@h/system?mode=legacy", "parameter mode= is not accepted for ssh URIs (accepted: keyfile)"],
  ["qemu+ssh://root@h/system?keyfile=/a&keyfile=/b", "parameter keyfile is given twice"],
  ["qemu+ssh://-oProxyCommand=x/system", 'host "-oProxyCommand=x" is not a host name or IP address'],
  ["qemu+ssh://r$(id)@h/system", 'user "r$(id)" must match ^[a-z_][a-z0-9_-]{0,31}$'],
  ["qemu+ssh://root:secret@h/system", "a password in the URI is refused (use an SSH key)"],
  ["qemu+ssh://root@h:0/system", "port 0 is not 1..65535"],
  ["qemu+ssh://root@h/etc/passwd", 'path "/etc/passwd": qemu URIs end in /system or /session'],
  ["qemu+ssh:///system", "the ssh transport needs a host (qemu+ssh://user@host/system)"],
  ["qemu://h/system", "a local URI (qemu:///system, qemu+unix:///system) names no user, host or port"],
  ["qemu+ext:///system?command=/x", 'transport "ext" is not one of unix, ssh, libssh, libssh2, tcp, tls'],
  ["qemu+ssh://root@h/system?keyfile=%2Fid", "spaces, backslashes and percent-escapes are not allowed"],
  ["xen:///system", "a libvirt URI like qemu+ssh://root@hv1/system, qemu:///system or qemu+unix:///system?socket=/path"],
])("%s is refused: %s", (uri, reason) => expect(parseLibvirtUri(uri)).toBe(reason));
