#!/usr/bin/env bash
# Installs the npm packages once (npm ci); a second run returns at once. A fresh machine runs this with Debian's Node
# 20, while the project (and @pulumi/pulumi) declare Node >= 22: the Node 22 binary arrives with this very install
# (the `node` package), so npm's engine warnings here are expected and not shown; errors still are.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x node_modules/.bin/node ] || npm ci --no-audit --no-fund --loglevel=error
