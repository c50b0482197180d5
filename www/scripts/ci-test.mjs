#!/usr/bin/env node
// The package's whole test, as the repository's `make test` runs it (`npm --prefix www run
// ci-test`): install the npm dependencies when missing or stale, build the wasm and the three
// builds (scripts/build.mjs), then `node --test`: official vectors, errors, streaming, the
// example server over sockets, headless Chromium, and `npm pack` installed in a fresh project.
// The benchmark is `npm run bench`, not part of this.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const www = dirname(dirname(fileURLToPath(import.meta.url)));
const run = (cmd, args) => execFileSync(cmd, args, { cwd: www, stdio: 'inherit' });

// npm writes node_modules/.package-lock.json on every install: older than package-lock.json
// means the lock changed since.
const hidden = join(www, 'node_modules', '.package-lock.json');
if (!existsSync(hidden) || statSync(hidden).mtimeMs < statSync(join(www, 'package-lock.json')).mtimeMs) {
  console.error('[ci-test] npm ci');
  run('npm', ['ci', '--no-audit', '--no-fund']);
}
run(process.execPath, [join(www, 'scripts', 'build.mjs')]);
run(process.execPath, ['--test', 'test/']);
