// The browser build in headless Chromium: a plain <script type="module"> imports
// pkg/web/index.js from a tiny local HTTP server (the way a page without a bundler uses the
// package), decodes, streams and handles errors. Needs /usr/bin/chromium (.ci/setup browser).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const www = fileURLToPath(new URL('..', import.meta.url));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json', '.html': 'text/html' };

const page = `<!doctype html><meta charset="utf-8"><title>fleetview</title>
<script type="module">
import { decode, decodeAll, Decoder, loginFrame, encodeCommand, ioInfo, models } from '/pkg/web/index.js';
const vectors = await (await fetch('/test/vectors.json')).json();
const hexOf = (n) => vectors.find((v) => v.name === n).hex;
const out = {};
try {
  const t1 = decode(hexOf('T1'));
  out.t1 = { codec: t1.codec, ack: t1.ack, time: t1.records[0].time, voltage: t1.records[0].io.find((e) => e.id === 66) };
  const big = decode(hexOf('ctp-sample')).records[0].io.find((e) => e.id === 219).raw;
  out.bigint = typeof big + ':' + big.toString(16);
  const d = new Decoder();
  const login = loginFrame('356307042441013');
  const bytes = new Uint8Array([...login, ...Uint8Array.from(hexOf('T3').match(/../g), (h) => parseInt(h, 16))]);
  const got = [];
  for (const b of bytes) for (const p of d.push(Uint8Array.of(b))) { got.push(p.kind); if (p.kind === 'imei') d.accept(true); }
  out.stream = got;
  out.all = decodeAll(bytes).map((p) => p.kind);
  try { decode(hexOf('T11')); } catch (e) { out.error = { isError: e instanceof Error, kind: e.kind, offset: e.offset, field: e.field }; }
  out.command = Array.from(encodeCommand('getinfo'), (b) => b.toString(16).padStart(2, '0')).join('');
  out.io = ioInfo(66, 'FMB920').unit;
  out.models = models().length;
} catch (e) {
  out.failure = String(e && e.stack || e);
}
window.result = out;
</script>`;

let server, browser, profile;

before(async () => {
  server = http.createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (path === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html' }).end(page);
      return;
    }
    const file = normalize(join(www, path));
    if (!file.startsWith(www) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': types[extname(file)] || 'application/octet-stream' }).end(readFileSync(file));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  profile = mkdtempSync(join(tmpdir(), 'fleetview-chromium-'));
  // A fresh profile directory (playwright passes it as --user-data-dir).
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
});

after(async () => {
  await browser?.close();
  server?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

test('a plain <script type="module"> page uses the package in Chromium', async () => {
  const tab = await browser.newPage();
  const problems = [];
  tab.on('pageerror', (e) => problems.push(String(e)));
  tab.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
  await tab.goto(`http://127.0.0.1:${server.address().port}/`);
  await tab.waitForFunction(() => window.result !== undefined, null, { timeout: 20000 });
  const r = await tab.evaluate(() => window.result);
  assert.deepEqual(problems, []);
  assert.equal(r.failure, undefined);
  assert.deepEqual(r.t1, {
    codec: '8', ack: '00000001', time: '2019-06-10T10:04:46.000Z',
    voltage: { id: 66, size: 2, raw: 24079, name: 'External Voltage', value: 24.079, unit: 'V' },
  });
  assert.equal(r.bigint, 'bigint:3839343435303231');
  assert.deepEqual(r.stream, ['imei', 'avl']);
  assert.deepEqual(r.all, ['imei', 'avl']);
  assert.deepEqual(r.error, { isError: true, kind: 'crc_mismatch', offset: 24, field: 'crc' });
  assert.equal(r.command, '000000000000000f0c010500000007676574696e666f0100004312');
  assert.equal(r.io, 'V');
  assert.ok(r.models > 50);
});
