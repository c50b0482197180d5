#!/usr/bin/env node
// Builds the npm package's generated files into www/pkg/ from core's `wasm` feature:
//
//   cargo build (profile `wasm` of the root Cargo.toml)  →  wasm-bindgen for three targets
//   (nodejs: CommonJS; web: ES module with init, used by browsers and by Node's `import`;
//   bundler: ES module importing the .wasm, for webpack/Vite/Rollup wasm support)  →  wasm-opt
//   (npm binaryen, never Debian's: its version breaks current wasm-bindgen output)  →  the
//   entry wrappers that make every target ready to use right after `import`/`require`.
//
// Prints the wasm size raw and gzipped. Honours CARGO_TARGET_DIR; `--skip-cargo` reuses the
// last cargo build.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const www = dirname(dirname(fileURLToPath(import.meta.url)));
const root = dirname(www);
const pkg = join(www, 'pkg');
const log = (...a) => console.error('[build]', ...a);

function run(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { stdio: ['ignore', opts.capture ? 'pipe' : 'inherit', 'inherit'], cwd: root, encoding: 'utf8', ...opts });
}

// wasm-bindgen must be exactly the version of the `wasm-bindgen` crate in Cargo.lock: the
// generated glue and the wasm's custom section have to agree.
const lock = readFileSync(join(root, 'Cargo.lock'), 'utf8');
const wbVersion = /name = "wasm-bindgen"\nversion = "([^"]+)"/.exec(lock)?.[1];
let wbHave = '';
try {
  wbHave = run('wasm-bindgen', ['--version'], { capture: true }).trim();
} catch {
  throw new Error(`wasm-bindgen not found: install it with \`cargo install wasm-bindgen-cli --version ${wbVersion}\` (or run .ci/setup wasm)`);
}
if (!wbHave.endsWith(` ${wbVersion}`)) {
  throw new Error(`${wbHave} does not match the wasm-bindgen crate ${wbVersion} in Cargo.lock: cargo install wasm-bindgen-cli --version ${wbVersion} --force`);
}

const targetDir =
  process.env.CARGO_TARGET_DIR ||
  JSON.parse(run('cargo', ['metadata', '--format-version', '1', '--no-deps'], { capture: true })).target_directory;
const raw = join(targetDir, 'wasm32-unknown-unknown', 'wasm', 'fleetview.wasm');

if (!process.argv.includes('--skip-cargo')) {
  log('cargo build (wasm32, profile wasm, feature wasm)');
  run('cargo', [
    'build', '-p', 'fleetview', '--lib', '--target', 'wasm32-unknown-unknown', '--profile', 'wasm',
    '--no-default-features', '--features', 'wasm',
  ]);
}
if (!existsSync(raw)) throw new Error(`${raw} is missing: run without --skip-cargo`);

const wasmOpt = join(www, 'node_modules', '.bin', 'wasm-opt');
if (!existsSync(wasmOpt)) throw new Error('npm binaryen is missing: run `npm ci` in www/ first');
// The features rustc enables by default for wasm32-unknown-unknown; wasm-opt must accept them.
const features = [
  '--enable-bulk-memory', '--enable-mutable-globals', '--enable-nontrapping-float-to-int',
  '--enable-sign-ext', '--enable-reference-types', '--enable-multivalue',
];

rmSync(pkg, { recursive: true, force: true });
const targets = { node: 'nodejs', web: 'web', bundler: 'bundler' };
for (const [dir, target] of Object.entries(targets)) {
  const out = join(pkg, dir);
  log(`wasm-bindgen --target ${target} → pkg/${dir}`);
  run('wasm-bindgen', ['--target', target, '--out-dir', out, '--out-name', 'fleetview', raw]);
  // The package is CommonJS by default; say per folder what the generated .js files are.
  writeFileSync(join(out, 'package.json'), JSON.stringify({ type: target === 'nodejs' ? 'commonjs' : 'module' }) + '\n');
}

// The three targets produce the same wasm binary (only the JS glue differs): ship it once, in
// pkg/web/, and point the node and bundler glue at it. Checked, not assumed.
const wasmOf = (dir) => join(pkg, dir, 'fleetview_bg.wasm');
const shared = wasmOf('web');
const glue = { node: ['fleetview.js', '`${__dirname}/fleetview_bg.wasm`', '`${__dirname}/../web/fleetview_bg.wasm`'],
  bundler: ['fleetview.js', '"./fleetview_bg.wasm"', '"../web/fleetview_bg.wasm"'] };
for (const [dir, [file, from, to]] of Object.entries(glue)) {
  if (!readFileSync(wasmOf(dir)).equals(readFileSync(shared))) throw new Error(`pkg/${dir}: wasm differs from pkg/web`);
  const path = join(pkg, dir, file);
  const js = readFileSync(path, 'utf8');
  if (js.split(from).length !== 2) throw new Error(`pkg/${dir}/${file}: expected one ${from} to repoint`);
  writeFileSync(path, js.replace(from, to));
  rmSync(wasmOf(dir));
  rmSync(join(pkg, dir, 'fleetview_bg.wasm.d.ts'));
}
log('wasm-opt (npm binaryen)');
// FLEETVIEW_WASM_NAMES=1 keeps function names, for profiling.
const strip = process.env.FLEETVIEW_WASM_NAMES ? ['-g'] : ['--strip-debug', '--strip-producers'];
run(wasmOpt, [process.env.WASM_OPT_LEVEL || '-O3', ...strip, ...features, shared, '-o', shared]);

// The public API (src/api.js) over each glue. ESM files import it as pkg/api.mjs; the CommonJS
// entry gets the same source with its one `export` turned into `module.exports`.
const api = readFileSync(join(www, 'src', 'api.js'), 'utf8');
const exportLine = 'export function createApi(glue) {';
if (api.split(exportLine).length !== 2) throw new Error(`src/api.js: expected one "${exportLine}"`);
writeFileSync(join(pkg, 'api.mjs'), api);
writeFileSync(join(pkg, 'api.cjs'), `'use strict';\n${api.replace(exportLine, 'function createApi(glue) {')}\nmodule.exports = { createApi };\n`);
writeFileSync(join(pkg, 'index.d.ts'), readFileSync(join(www, 'src', 'index.d.ts'), 'utf8'));

// Node's `require`: the nodejs glue, which reads the wasm synchronously.
writeFileSync(
  join(pkg, 'node', 'index.cjs'),
  `'use strict';
// Generated by scripts/build.mjs: Node CommonJS entry.
module.exports = require('../api.cjs').createApi(require('./fleetview.js'));
`,
);
// The names every ESM entry exports, from the API itself.
const names = Object.keys(createRequire(import.meta.url)(join(pkg, 'node', 'index.cjs'))).join(', ');
const esm = (comment, setup) => `// Generated by scripts/build.mjs: ${comment}
${setup}
export const { ${names} } = createApi(glue);
`;
// Node's `import`: the web glue, instantiated synchronously from the file next to it.
writeFileSync(
  join(pkg, 'node', 'index.mjs'),
  esm('Node ES module entry (the web glue, instantiated from disk).', `import { readFileSync } from 'node:fs';
import * as glue from '../web/fleetview.js';
import { createApi } from '../api.mjs';
glue.initSync({ module: readFileSync(new URL('../web/fleetview_bg.wasm', import.meta.url)) });`),
);
// Browsers, plain <script type="module"> or bundled (webpack 5 handles both the top-level await
// and the `new URL(..., import.meta.url)` asset): ready to call once imported.
writeFileSync(
  join(pkg, 'web', 'index.js'),
  esm('browser entry: fetches and instantiates the wasm.', `import * as glue from './fleetview.js';
import { createApi } from '../api.mjs';
await glue.default({ module_or_path: new URL('./fleetview_bg.wasm', import.meta.url) });`),
);
// Bundlers with WebAssembly ES module integration (webpack asyncWebAssembly, vite-plugin-wasm).
writeFileSync(
  join(pkg, 'bundler', 'index.js'),
  esm('entry for bundlers that import .wasm as an ES module.', `import * as glue from './fleetview.js';
import { createApi } from '../api.mjs';`),
);

const bytes = readFileSync(shared);
const sizes = { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length, cargo: statSync(raw).size };
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
console.log(`wasm: ${kb(sizes.raw)} raw, ${kb(sizes.gzip)} gzipped (cargo output before wasm-bindgen and wasm-opt: ${kb(sizes.cargo)})`);
writeFileSync(join(pkg, 'sizes.json'), JSON.stringify(sizes, null, 2) + '\n');
