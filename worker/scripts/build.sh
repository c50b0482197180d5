#!/usr/bin/env bash
# Builds the Worker: `worker-build --release` → build/index.js + build/index_bg.wasm.
# Used by wrangler.toml's [build] command, `npm run build` and ci-test.
#
# worker-build downloads wasm-bindgen, wasm-opt and esbuild unless told where they are: point it
# at the installed wasm-bindgen-cli (its version must equal the `wasm-bindgen` pin in Cargo.lock)
# and at npm's binaryen wasm-opt (Debian's binaryen 108 breaks current wasm-bindgen output).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${WASM_OPT_BIN:-}" ] && [ -x node_modules/.bin/wasm-opt ]; then
  export WASM_OPT_BIN="$PWD/node_modules/.bin/wasm-opt"
fi
if [ -z "${WASM_BINDGEN_BIN:-}" ] && command -v wasm-bindgen >/dev/null 2>&1; then
  export WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
fi
# esbuild bundles the shim; wrangler's own copy saves a download.
if [ -z "${ESBUILD_BIN:-}" ] && [ -x node_modules/.bin/esbuild ]; then
  export ESBUILD_BIN="$PWD/node_modules/.bin/esbuild"
fi
if ! command -v worker-build >/dev/null 2>&1; then
  echo "[build] installing worker-build 0.8.7" >&2
  cargo install worker-build --version 0.8.7 --locked
fi
exec worker-build --release "$@"
