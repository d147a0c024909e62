#!/usr/bin/env bash
# The test command (README): compile, typecheck, lint, then every jest project: unit, then e2e on the real engine
# and the lab under the offline Pulumi environment (which waits for the toolchain when it is still being built).
# Extra arguments go to both jest runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/host-packages.sh
bash scripts/node-modules.sh
export PATH="$root/node_modules/.bin:$PATH"   # Node 22 from the node package
tsc -p tsconfig.json
eslint --max-warnings 0 .
# the unit project is pure code and needs no Pulumi toolchain: it runs first (in CI, beside the toolchain's build)
jest --selectProjects unit --passWithNoTests "$@"
# --verbose: each test with its time in the log (where CI's minutes go)
exec scripts/with-env.sh jest --runInBand --verbose --selectProjects e2e --passWithNoTests "$@"
