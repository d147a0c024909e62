// The constant script that builds a NoCloud ISO. Values reach it only through the environment (VMI_*), never by
// string interpolation. It writes to a temporary name and renames at the end, so no reader can ever see a
// half-written ISO; the final file is mode 0640 and named by the documents' hash. Its stdout is the ISO's path.
export const BUILD_ISO_SCRIPT = `set -eu
umask 027
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%s' "$VMI_USER_DATA" > "$tmp/user-data"
printf '%s' "$VMI_META_DATA" > "$tmp/meta-data"
printf '%s' "$VMI_NETWORK_CONFIG" > "$tmp/network-config"
mkdir -p "$VMI_ISO_DIR"
out="$VMI_ISO_DIR/$VMI_ISO_NAME"
if command -v xorriso >/dev/null 2>&1; then
  xorriso -as mkisofs -quiet -output "$tmp/seed.iso" -volid cidata -joliet -rock "$tmp/user-data" "$tmp/meta-data" "$tmp/network-config"
else
  genisoimage -quiet -output "$tmp/seed.iso" -volid cidata -joliet -rock "$tmp/user-data" "$tmp/meta-data" "$tmp/network-config"
fi
chmod 0640 "$tmp/seed.iso"
mv -f "$tmp/seed.iso" "$out"
printf '%s' "$out"
`;

export const DELETE_ISO_SCRIPT = `rm -f "$VMI_ISO_DIR/$VMI_ISO_NAME"`;
