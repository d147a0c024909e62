#!/usr/bin/env bash
# Runs a command with vm-infra's offline Pulumi environment: Node 22 from node_modules, the pinned toolchain (unless
# a `pulumi` of the pinned version is already on PATH), the dynamic-provider host (installed next to the CLI by
# toolchain.sh), a local file backend, no update
# check and no plugin downloads. Usage: scripts/with-env.sh CMD [ARGS...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
want=v$(node -e "process.stdout.write(require('$root/package.json').dependencies['@pulumi/pulumi'])")
tools=$(bash "$root/scripts/toolchain.sh" 2>/dev/null | tail -1)
if command -v pulumi >/dev/null 2>&1 && [ "$(pulumi version 2>/dev/null)" = "$want" ]; then
  cli_dir=$(dirname "$(command -v pulumi)")   # a real user's install wins; plugins still come from $tools
else
  cli_dir=$tools
fi
export PATH="$root/node_modules/.bin:$cli_dir:$tools:$PATH"
export PULUMI_HOME=${PULUMI_HOME:-$root/.pulumi-state/home}
export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$root/.pulumi-state/backend}
# The lab's stacks hold no production secrets; real users set their own passphrase (or a secrets provider).
export PULUMI_CONFIG_PASSPHRASE=${PULUMI_CONFIG_PASSPHRASE-vm-infra-lab}
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=false
mkdir -p "$PULUMI_HOME"
# only a file backend is a directory (a postgres:// URL carries a password: never a path on disk)
case $PULUMI_BACKEND_URL in file://*) mkdir -p "${PULUMI_BACKEND_URL#file://}" ;; esac
exec "$@"
