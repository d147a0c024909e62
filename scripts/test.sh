#!/usr/bin/env bash
# The test command (README): compile, typecheck, lint, then every jest project: unit, then e2e on the real engine
# and the lab under the offline Pulumi environment (which waits for the toolchain when it is still being built).
# Extra arguments go to both jest runs, and the e2e suites then run one after another.
#
# Without arguments the e2e suites run in two lanes at the same time on the one lab, then the fault suite alone. Two
# lanes fit because every suite owns what it makes (its stack, its VMs' names, its own base image volume: lab/stack.ts)
# and compares only that (tests/support/lab.ts ownedBy); the fault suite stops the hosts' daemons and cuts their links,
# so nothing runs beside it. On two cores a lone suite leaves a third of the CPU idle (engine start-ups, SSH waits,
# capped migrations); a second lane uses it.
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
e2e() { scripts/with-env.sh jest --runInBand --selectProjects e2e --passWithNoTests "$@"; }
if [ $# -gt 0 ]; then e2e "$@"; exit; fi

# lane A: the suites on the remote topology (every virsh call an SSH login to the hosts' sshd, whose MaxStartups the
# hosts keep at OpenSSH's default: one lane of them at a time); lane B: the local ones
LANE_A='tests/e2e/(vm|migration)\.test'
LANE_B='tests/e2e/(converge|fleet|gitops|policy|smoke)\.test'
ALONE='tests/e2e/(faults|rawVirsh)\.test'
# a suite in no lane would never run: refuse that before anything starts
for f in tests/e2e/*.test.ts; do
  n=0
  for p in "$LANE_A" "$LANE_B" "$ALONE"; do [[ $f =~ $p ]] && n=$((n + 1)); done
  [ "$n" = 1 ] || { echo "test: $f is in $n e2e lanes (scripts/test.sh): it must be in exactly one" >&2; exit 2; }
done

# the lanes would each bring the lab up at once: bring it up (and build the guest image) first
node dist/lab/cli.js up >/dev/null
lane() { # NAME PATTERN: the suites matching PATTERN one after another, each output line prefixed with [NAME]
  local s rc
  s=$(date +%s)
  set +e
  e2e --testPathPattern "$2" 2>&1 | sed -u "s/^/[$1] /"
  rc=${PIPESTATUS[0]}
  set -e
  echo "test: e2e lane $1 ($2): exit $rc in $(( $(date +%s) - s ))s"
  return "$rc"
}
lane A "$LANE_A" & a=$!
lane B "$LANE_B" & b=$!
rc=0
wait "$a" || rc=1
wait "$b" || rc=1
lane alone "$ALONE" || rc=1
exit "$rc"
