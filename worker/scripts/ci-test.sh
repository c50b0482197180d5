#!/usr/bin/env bash
# The Worker's test entry point (`npm --prefix worker run ci-test`, run by `make test`):
#   1. npm deps when node_modules is missing or older than package-lock.json;
#   2. worker-build --release (scripts/build.sh) and the native `fleetview` binary;
#   3. native unit tests of the Worker crate (routing, ingest plan, GeoJSON, queries, token);
#   4. wrangler's dry-run deploy: wrangler.toml, bindings and the bundle are valid as committed;
#   5. node --test: the Worker in workerd (Miniflare) with D1, then device → relay → Worker.
set -euo pipefail
cd "$(dirname "$0")/.."
export CI="${CI:-true}" WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false
say() { printf '[worker ci] %s\n' "$*" >&2; }

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund
fi

# worker-build and wasm-bindgen-cli at the pinned versions (skipped when present).
if [ -x ../.ci/setup ]; then ../.ci/setup worker; fi

say "worker-build --release"
bash scripts/build.sh

say "cargo build -p fleetview --features server --bin fleetview"
cargo build -p fleetview --features server --bin fleetview
TARGET_DIR="${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')}"
export FLEETVIEW_BIN="$TARGET_DIR/debug/fleetview"

say "cargo test -p fleetview-worker (native) and the fixture generator"
cargo test -p fleetview-worker
cargo build -p fleetview-worker --example datagrams

say "wrangler deploy --dry-run"
DRY="$(mktemp -d)"
trap 'rm -rf "$DRY"' EXIT
# The build ran above; the dry run re-runs [build] command, which is then a no-op rebuild.
npx wrangler deploy --dry-run --outdir "$DRY" >"$DRY/log" 2>&1 || { cat "$DRY/log"; exit 1; }
grep -q 'env.DB (fleetview)' "$DRY/log" || { cat "$DRY/log"; say "dry run did not list the D1 binding"; exit 1; }

say "node --test (workerd via Miniflare, relay end to end)"
node --test --test-concurrency=1 test/*.test.mjs
