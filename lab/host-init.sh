#!/usr/bin/env bash
# Runs inside a lab host's fresh mount+UTS namespace (lab/hosts.ts starts it through unshare). A constant script:
# every value arrives as a positional argument. Gives libvirtd private /etc/libvirt, /var/lib/libvirt, /var/log/libvirt,
# /var/cache/libvirt and /run/libvirt, then daemonizes it (the daemon keeps the namespaces alive).
set -eu
hostname "$1"
state=$2 run=$3 shared=$4
for d in etc lib log cache; do mkdir -p "$state/$d"; done
mkdir -p "$state/log/qemu" "$state/lib/images" "$run" "$shared"
mkdir -p /var/lib/libvirt /var/log/libvirt /var/cache/libvirt /run/libvirt /var/lib/vm-infra-shared
mount --bind "$state/etc" /etc/libvirt
mount --bind "$state/lib" /var/lib/libvirt
mount --bind "$state/log" /var/log/libvirt
mount --bind "$state/cache" /var/cache/libvirt
mount --bind "$run" /run/libvirt
mount --bind "$shared" /var/lib/vm-infra-shared
# a deliberately small pool (200 MiB tmpfs: the base image fits, a copied VM does not): the lab's "target pool full" fault
mkdir -p /var/lib/vm-infra-small
mount -t tmpfs -o size=200m,mode=0711 vmi-small /var/lib/vm-infra-small
mount --bind "$state/resolv.conf" /etc/resolv.conf
mount --bind "$state/hosts" /etc/hosts
# root's shell startup files are the machine's, not a hypervisor's: sshd runs every SSH command (libvirt's remote
# helper, once per virsh connection over qemu+ssh) through root's shell, which reads ~/.bashrc. On this workplace's
# machines that runs pyenv's init, which re-hashes under a lock: 0.8 s per connection, tens of seconds when several
# connect at once. The lab host's root gets empty ones, as a hypervisor's would be.
home=$(getent passwd root | cut -d: -f6)
for f in .bashrc .bash_profile .profile; do
  if [ -f "$home/$f" ]; then mount --bind /dev/null "$home/$f"; fi
done
exec libvirtd --daemon --listen --pid-file /run/libvirt/libvirtd.pid
