#!/usr/bin/env bash
# `npm --prefix worker run bench`: load figures through the local runtime (scripts/bench.mjs).
# Builds what is missing first; not part of ci-test.
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false
[ -d node_modules ] || npm ci --no-audit --no-fund
[ -f build/index.js ] || bash scripts/build.sh
cargo build -q -p fleetview --features server --bin fleetview
cargo build -q -p fleetview-worker --example datagrams
exec node scripts/bench.mjs
