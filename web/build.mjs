#!/usr/bin/env node
// Build the playground into web/dist without trunk:
//   cargo +nightly build (wasm32, release, opt-level z, std rebuilt with panics that abort at
//   once) → wasm-bindgen --target web → wasm-opt -Oz (npm binaryen) → index.html, style.css and
//   the vendored Leaflet / topojson-client / world-atlas → JS and CSS minified (npm esbuild).
// Then print the size budget (wasm + JS + CSS gzipped; the base-layer data excluded).
//
// Flags: --lean      skip wasm-opt (quicker first build, bigger wasm)
//        --ci        fail when the size budget is exceeded
// Needs the nightly toolchain with its rust-src component (`.ci/setup web` installs both).
// Builds into <cargo target dir>/web-nightly (CARGO_TARGET_DIR is honoured, else cargo metadata
// says where the target dir is): the nightly artifacts stay apart from the stable ones.
// Installs npm deps when missing or stale.

import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const WEB = dirname(fileURLToPath(import.meta.url));
const args = new Set(process.argv.slice(2));
const DIST = join(WEB, "dist");
const WASM_BINDGEN_VERSION = "0.2.130"; // must equal the wasm-bindgen crate pinned in Cargo.toml
const BUDGET_KB = 350;

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { stdio: "inherit", ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(" ")} exited with ${r.status}`);
}

function log(msg) {
  console.log(`[web build] ${msg}`);
}

// 1. npm dependencies (Leaflet, world-atlas, topojson-client; binaryen, esbuild and playwright-core
//    for dev).
const lock = join(WEB, "package-lock.json");
const installed = join(WEB, "node_modules", ".package-lock.json");
if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
  log("installing npm dependencies (npm ci)");
  run("npm", ["ci", "--no-audit", "--no-fund"], { cwd: WEB });
}

// 2. wasm-bindgen-cli at the pinned version.
function wasmBindgenVersion() {
  try {
    return execFileSync("wasm-bindgen", ["--version"], { encoding: "utf8" }).trim().split(" ")[1];
  } catch {
    return null;
  }
}
if (wasmBindgenVersion() !== WASM_BINDGEN_VERSION) {
  log(`installing wasm-bindgen-cli ${WASM_BINDGEN_VERSION} (found ${wasmBindgenVersion() ?? "none"}; a few minutes, once)`);
  run("cargo", ["install", "wasm-bindgen-cli", "--version", WASM_BINDGEN_VERSION]);
}

// 3. cargo build, with nightly, for size: std rebuilt for the app (-Z build-std) with
//    -Cpanic=immediate-abort, so that no panic machinery is linked (panic messages, their
//    formatting, source locations), and with std's `optimize_for_size` feature (smaller
//    algorithms, e.g. sorting). Measured as step 8 does, on the playground with the capture view and the
//    reports panel (wasm after wasm-opt -Oz, gzipped): 330.9 KB with stable, 294.9 KB with
//    immediate-abort, 290.5 KB with optimize_for_size too; that is what keeps it within budget.
//    The cost: a panic in the browser is a bare `unreachable` trap without its message, and Yew's
//    panic hook (console_error_panic_hook, installed by yew::Renderer) never runs. The app must not
//    panic anyway: bad input is shown as an error, and the browser tests check for page errors.
function nightlyReady() {
  const v = spawnSync("rustc", ["+nightly", "--version"], { encoding: "utf8" });
  if (v.status !== 0) return "the nightly toolchain is missing";
  const c = spawnSync("rustup", ["component", "list", "--toolchain", "nightly", "--installed"], { encoding: "utf8" });
  if (c.status !== 0 || !c.stdout.split("\n").some((l) => l.trim().startsWith("rust-src"))) {
    return "nightly's rust-src component is missing";
  }
  return null;
}
const missing = nightlyReady();
if (missing) {
  console.error(
    `[web build] ${missing}: the playground is built with nightly's -Z build-std (size). ` +
      "Run `.ci/setup web` (or `rustup toolchain install nightly --profile minimal && " +
      "rustup component add rust-src --toolchain nightly`).",
  );
  process.exit(1);
}
const cargoTarget =
  process.env.CARGO_TARGET_DIR ||
  JSON.parse(execFileSync("cargo", ["metadata", "--format-version", "1", "--no-deps"], { cwd: WEB, encoding: "utf8" }))
    .target_directory;
const targetDir = join(cargoTarget, "web-nightly");
const nightlyEnv = {
  ...process.env,
  CARGO_TARGET_DIR: targetDir,
  // Size over speed for the browser; only this build, the workspace profile stays as it is.
  CARGO_PROFILE_RELEASE_OPT_LEVEL: "z",
  RUSTFLAGS: "-Zunstable-options -Cpanic=immediate-abort",
};
delete nightlyEnv.CARGO_ENCODED_RUSTFLAGS; // it would win over RUSTFLAGS
log(`cargo +nightly build -Z build-std (target dir ${targetDir})`);
run(
  "cargo",
  [
    "+nightly",
    "build",
    "-p",
    "fleetview-web",
    "--target",
    "wasm32-unknown-unknown",
    "--release",
    "-Z",
    "build-std=std,panic_abort",
    "-Z",
    "build-std-features=optimize_for_size",
  ],
  { cwd: WEB, env: nightlyEnv },
);
const wasmIn = join(targetDir, "wasm32-unknown-unknown", "release", "fleetview-web.wasm");

// 4. wasm-bindgen into a fresh dist.
rmSync(DIST, { recursive: true, force: true });
mkdirSync(DIST, { recursive: true });
run("wasm-bindgen", ["--target", "web", "--no-typescript", "--out-dir", DIST, "--out-name", "fleetview_web", wasmIn]);

// 5. wasm-opt from npm binaryen (Debian's is too old for current wasm-bindgen output).
const wasmOut = join(DIST, "fleetview_web_bg.wasm");
if (!args.has("--lean")) {
  const wasmOpt = join(WEB, "node_modules", ".bin", "wasm-opt");
  if (existsSync(wasmOpt)) {
    log("wasm-opt -Oz --converge");
    run(wasmOpt, [
      "-Oz",
      "--converge",
      "--enable-bulk-memory",
      "--enable-nontrapping-float-to-int",
      "--enable-sign-ext",
      "--enable-mutable-globals",
      "--enable-reference-types",
      "--enable-multivalue",
      wasmOut,
      "-o",
      wasmOut,
    ]);
  } else {
    log("wasm-opt not installed (npm dev dependency binaryen): skipped");
  }
}

// 6. Static files and vendored libraries (served locally, never from a CDN).
cpSync(join(WEB, "static"), DIST, { recursive: true });
const nm = join(WEB, "node_modules");
const vendor = join(DIST, "vendor");
mkdirSync(join(vendor, "leaflet"), { recursive: true });
for (const f of ["leaflet.js", "leaflet.css"]) cpSync(join(nm, "leaflet", "dist", f), join(vendor, "leaflet", f));
cpSync(join(nm, "leaflet", "dist", "images"), join(vendor, "leaflet", "images"), { recursive: true });
cpSync(join(nm, "leaflet", "LICENSE"), join(vendor, "leaflet", "LICENSE"));
cpSync(join(nm, "topojson-client", "dist", "topojson-client.min.js"), join(vendor, "topojson-client.min.js"));
cpSync(join(nm, "world-atlas", "countries-110m.json"), join(vendor, "countries-110m.json"));

function files(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)],
  );
}

// 7. Minify the JS and CSS (esbuild): wasm-bindgen's glue, our snippets and styles, Leaflet's CSS
//    (its JS and topojson-client ship minified). About 3.8 KB gzipped less.
const esbuild = await import("esbuild");
for (const f of files(DIST).filter((f) => /\.(js|css)$/.test(f) && !/^vendor\/.*\.js$/.test(relative(DIST, f)))) {
  const loader = f.endsWith(".css") ? "css" : "js";
  const { code } = esbuild.transformSync(readFileSync(f, "utf8"), {
    loader,
    minify: true,
    ...(loader === "js" ? { format: "esm" } : {}),
  });
  writeFileSync(f, code);
}

// 8. Size budget: everything the browser runs or styles with, gzipped; the base-layer data excluded.
const counted = files(DIST).filter((f) => /\.(wasm|js|css)$/.test(f));
const sizes = counted.map((f) => {
  const raw = readFileSync(f);
  return { file: relative(DIST, f), bytes: raw.length, gzip: gzipSync(raw, { level: 9 }).length };
});
const total = sizes.reduce((s, f) => s + f.gzip, 0);
for (const s of sizes) log(`  ${s.file.padEnd(48)} ${String(s.bytes).padStart(8)} B  ${String(s.gzip).padStart(7)} B gzip`);
const kb = (total / 1024).toFixed(1);
log(`size budget: wasm + JS + CSS gzipped = ${kb} KB (budget ${BUDGET_KB} KB; base-layer data excluded)`);
writeFileSync(join(DIST, "sizes.json"), JSON.stringify({ total_gzip: total, budget_kb: BUDGET_KB, files: sizes }, null, 2));
if (args.has("--ci") && total > BUDGET_KB * 1024) {
  console.error(`[web build] over budget: ${kb} KB > ${BUDGET_KB} KB`);
  process.exit(1);
}
log(`done: ${relative(process.cwd(), DIST) || DIST}`);
