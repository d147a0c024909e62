#!/usr/bin/env bash
# Builds the pinned Pulumi toolchain from Go modules and caches it outside git:
#   toolchain/cli      the Pulumi CLI          (pkg/v3 at the tag equal to package.json's @pulumi/pulumi)
#   toolchain/lang     the Node.js language host
# Each folder's go.mod/go.sum is the pin and the lock: the go command checks every module it downloads against
# go.sum, so the checksum database (which answers 404 for these versions from here) is not consulted.
# Prints the bin directory as the last line of stdout; a warm run takes well under a second.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tc="$root/toolchain"
pkgv() { node -e "process.stdout.write(require('$root/package.json').dependencies['$1'])"; }
SDK_VERSION=$(pkgv @pulumi/pulumi)
CLI_VERSION=$(awk '$1=="github.com/pulumi/pulumi/pkg/v3"{print $2} $1=="require" && $2=="github.com/pulumi/pulumi/pkg/v3"{print $3}' "$tc/cli/go.mod" | head -1)
if [ "$CLI_VERSION" != "v$SDK_VERSION" ]; then
  echo "toolchain: toolchain/cli pins pulumi $CLI_VERSION but package.json has @pulumi/pulumi $SDK_VERSION" >&2; exit 1
fi
key=$(cat "$tc"/*/go.mod "$tc"/*/go.sum | sha256sum | cut -c1-16)
OUT="${VM_INFRA_CACHE:-/var/cache/vm-infra}/toolchain/$CLI_VERSION-$key"
start=$(date +%s)

have_ok() {
  [ -x "$OUT/bin/pulumi" ] && [ -x "$OUT/bin/pulumi-language-nodejs" ] &&
    [ "$("$OUT/bin/pulumi" version 2>/dev/null)" = "$CLI_VERSION" ]
}

if ! have_ok; then
  # one build at a time: a second caller (CI's test command, while CI's own call still builds) waits for the first
  mkdir -p "$(dirname "$OUT")"; exec 9>"$OUT.lock"; flock 9
fi
if ! have_ok; then
  echo "toolchain: building pulumi $CLI_VERSION and its Node.js language host (cold: minutes)" >&2
  # GOGC=400: the compiler collects garbage less often (faster on a machine with memory to spare); -s -w: no symbol
  # table or DWARF in the binaries (a shorter link; nothing here debugs the CLI)
  export GOFLAGS=-mod=readonly GOSUMDB=off GOTOOLCHAIN=local CGO_ENABLED=0 GOGC=400
  rm -rf "$OUT/bin.new"; mkdir -p "$OUT/bin.new"
  ldv="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$CLI_VERSION"
  flags=(-trimpath -tags osusergo,grpcnotrace)
  (cd "$tc/cli" && go build "${flags[@]}" -ldflags "$ldv" -o "$OUT/bin.new/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
  (cd "$tc/lang" && go build "${flags[@]}" -ldflags "$ldv" -o "$OUT/bin.new/pulumi-language-nodejs" \
      github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3)
  rm -rf "$OUT/bin" && mv "$OUT/bin.new" "$OUT/bin"
  have_ok || { echo "toolchain: the built CLI does not report $CLI_VERSION" >&2; exit 1; }
fi
# the dynamic-provider host ships in @pulumi/pulumi; next to the CLI the engine treats it as bundled (found on $PATH
# instead, every run warns "using ... from $PATH"). The script resolves @pulumi/pulumi from the program's directory.
host_script="$root/node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs"
if [ -f "$host_script" ] && ! cmp -s "$host_script" "$OUT/bin/pulumi-resource-pulumi-nodejs"; then
  install -m 0755 "$host_script" "$OUT/bin/pulumi-resource-pulumi-nodejs"
fi
echo "toolchain: pulumi $CLI_VERSION ready in $(( $(date +%s) - start ))s at $OUT/bin" >&2
echo "$OUT/bin"
