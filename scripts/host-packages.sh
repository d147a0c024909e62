#!/usr/bin/env bash
# Installs the Debian packages vm-infra and its lab need, once; a second run only checks and returns.
# QEMU comes from bookworm-backports (10.0.2): bookworm's 7.2 corrupts fast-dirtying guests during TCG live
# migration (shared/LAB.md), so the lab and the migration tests need the newer one.
set -euo pipefail
PKGS=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients dnsmasq-base iptables iproute2
      mmdebstrap genisoimage xorriso openssh-client openssh-server qemu-utils iputils-ping curl ca-certificates ansible-core
      postgresql)
BPO_PKGS=(qemu-system-x86 qemu-utils qemu-system-common qemu-system-data seabios)
start=$(date +%s)
ensure_accounts() { # libvirt's QEMU driver looks these up at start even when qemu.conf says root
  getent group kvm >/dev/null || groupadd --system kvm
  getent passwd libvirt-qemu >/dev/null || useradd --system --no-create-home --user-group -G kvm -s /usr/sbin/nologin libvirt-qemu
}
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
qemu_ok=0
if command -v qemu-system-x86_64 >/dev/null && qemu-system-x86_64 --version | grep -q 'version 10\.'; then qemu_ok=1; fi
if [ ${#missing[@]} -eq 0 ] && [ $qemu_ok = 1 ]; then
  [ "$(id -u)" != 0 ] || ensure_accounts
  echo "host-packages: all present ($(( $(date +%s) - start ))s)" >&2; exit 0
fi
[ "$(id -u)" = 0 ] || { echo "host-packages: need root to install: ${missing[*]} qemu-10" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
bpo=/etc/apt/sources.list.d/vm-infra-backports.sources
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list.d/ /etc/apt/sources.list; then
  uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" > "$bpo"
fi
apt-get update -qq
# no daemons may start at install time (no systemd here, and no libvirt network may run in the root namespace)
printf '#!/usr/bin/env bash\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
apt-get install -y -qq --no-install-recommends -t bookworm-backports "${BPO_PKGS[@]}" >/dev/null
ensure_accounts
qemu-system-x86_64 --version | head -1 >&2
echo "host-packages: installed in $(( $(date +%s) - start ))s" >&2
