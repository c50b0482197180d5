// `npm pack`, then a fresh Node project installs the tarball and runs the README's usage snippet
// (ESM), the same through `require`, and the bundler build through Node's wasm ES modules.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const www = fileURLToPath(new URL('..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
let dir, tarball, files;

const run = (cmd, args, cwd = dir) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fleetview-pack-'));
  const [info] = JSON.parse(run(npm, ['pack', '--json', '--pack-destination', dir], www));
  tarball = join(dir, info.filename);
  files = info.files.map((f) => f.path);
  const wasm = info.files.find((f) => f.path.endsWith('.wasm'));
  console.log(`tarball ${(info.size / 1024).toFixed(1)} KB, unpacked ${(info.unpackedSize / 1024).toFixed(1)} KB, wasm ${(wasm.size / 1024).toFixed(1)} KB`);
  const app = join(dir, 'app');
  run('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  // The package has no dependencies: installing the tarball needs no registry.
  run(npm, ['install', '--no-audit', '--no-fund', '--offline', tarball], app);
  dir = app;
});

after(() => rmSync(join(dir, '..'), { recursive: true, force: true }));

test('the tarball ships the builds, types, README and example, and nothing else', () => {
  for (const f of ['README.md', 'package.json', 'pkg/index.d.ts', 'pkg/api.mjs', 'pkg/api.cjs', 'pkg/node/index.cjs',
    'pkg/node/index.mjs', 'pkg/web/index.js', 'pkg/web/fleetview_bg.wasm', 'pkg/bundler/index.js', 'examples/server.mjs']) {
    assert.ok(files.includes(f), `${f} missing from ${files.join(', ')}`);
  }
  assert.deepEqual(files.filter((f) => /^(test|bench|scripts|src|node_modules)\//.test(f) || f.endsWith('.wasm') && f !== 'pkg/web/fleetview_bg.wasm'), []);
});

test("the README's usage snippet runs in a fresh project", () => {
  const readme = readFileSync(join(www, 'README.md'), 'utf8');
  const snippet = /<!-- usage[^>]*-->\s*```js\n([\s\S]*?)```/.exec(readme)[1];
  writeFileSync(join(dir, 'usage.mjs'), snippet);
  const out = run(process.execPath, ['usage.mjs']).split('\n');
  assert.deepEqual(out.slice(0, 7), [
    '8 2019-06-10T10:04:46.000Z 00000001',
    'External Voltage 24.079 V',
    'imei 356307042441013',
    'crc_mismatch 24 crc',
    '000000000000000f0c010500000007676574696e666f0100004312',
    '00000001 Uint8Array(1) [ 1 ]',
    '',
  ]);
});

test('require() and the bundler build work from the installed package', () => {
  const cjs = run(process.execPath, ['-e', `const f = require('fleetview');
    const p = f.decode('000F333536333037303432343431303133');
    console.log(p.kind, p.imei, typeof f.Decoder, f.models().includes('FMB920'));`]);
  assert.equal(cjs.trim(), 'imei 356307042441013 function true');
  // Node runs the bundler build (it imports the .wasm as an ES module) with this flag.
  const esm = run(process.execPath, ['--experimental-wasm-modules', '--no-warnings', '--input-type=module', '-e', `
    import { decode } from 'fleetview/bundler';
    console.log(decode('000000000000000F0C010500000007676574696E666F0100004312').messages[0].text);`]);
  assert.equal(esm.trim(), 'getinfo');
});

test('the example server starts from the installed package', () => {
  const out = run(process.execPath, ['--input-type=module', '-e', `
    import { startServer } from 'fleetview/examples/server.mjs';
    const s = startServer({ port: 0, host: '127.0.0.1', log() {} });
    s.on('listening', () => { console.log(typeof s.address().port); s.close(); });`]);
  assert.equal(out.trim(), 'number');
});
