#!/usr/bin/env bash
# One command for a newcomer: install everything (Debian packages, npm packages, the Pulumi toolchain, the guest
# image), bring the lab up, and `pulumi up` the dev stack: a real VM you can SSH into.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/host-packages.sh
bash scripts/node-modules.sh
export PATH="$root/node_modules/.bin:$PATH"
bash scripts/toolchain.sh >/dev/null
tsc -p tsconfig.json
exec scripts/with-env.sh node dist/scripts/devUp.js
