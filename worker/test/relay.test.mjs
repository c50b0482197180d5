// End to end: scripted UDP devices → `fleetview relay` (the native binary) → the Worker served
// by workerd on 127.0.0.1 → D1 → the ack back at each device's socket.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { datagrams, fleetviewBin, startWorker } from './helpers.mjs';

/** Start `fleetview relay`; resolves once it logs its UDP address. */
function startRelay(to, extra = [], env = {}) {
  const child = spawn(fleetviewBin(), ['relay', '--udp', '127.0.0.1:0', '--to', to, ...extra], {
    env: { ...process.env, FLEETVIEW_LOG: 'fleetview=debug,info', NO_COLOR: '1', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const relay = { child, log: '', exited: null };
  child.stderr.setEncoding('utf8');
  child.on('exit', (code, signal) => {
    relay.exited = { code, signal };
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay did not start:\n${relay.log}`)), 15000);
    child.stderr.on('data', (chunk) => {
      relay.log += chunk;
      // Strip ANSI colours in case the subscriber uses them.
      const m = relay.log.replace(/\x1b\[[0-9;]*m/g, '').match(/relay listening on (\S+):(\d+),/);
      if (m && !relay.port) {
        relay.port = Number(m[2]);
        clearTimeout(timer);
        resolve(relay);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (!relay.port) reject(new Error(`relay exited with status ${code}:\n${relay.log}`));
    });
  });
}

function stopRelay(relay) {
  if (relay && relay.exited === null) relay.child.kill('SIGTERM');
}

/** A scripted device: one UDP socket, send a datagram, wait for the 7-byte ack (or time out). */
async function device() {
  const socket = dgram.createSocket('udp4');
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const waiting = [];
  socket.on('message', (msg) => {
    const w = waiting.shift();
    if (w) w(msg);
  });
  return {
    socket,
    send(bytes, port, timeoutMs = 10000) {
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          const i = waiting.indexOf(done);
          if (i >= 0) waiting.splice(i, 1);
          resolve(null);
        }, timeoutMs);
        function done(msg) {
          clearTimeout(timer);
          resolve(msg);
        }
        waiting.push(done);
        socket.send(bytes, port, '127.0.0.1');
      });
    },
    close() {
      socket.close();
    },
  };
}

const hex = (b) => (b ? Buffer.from(b).toString('hex') : null);
const wait = (ms) => new Promise((r) => setTimeout(r, ms));

describe('device → fleetview relay → Worker in workerd → ack', () => {
  let w;
  let relay;
  let fixtures;
  before(async () => {
    fixtures = datagrams({ devices: 20, count: 200, seed: 11 });
    // Without a token (the explicit opt-out); the token suite below runs with one.
    w = await startWorker({ http: true, bindings: { ALLOW_UNAUTHENTICATED: 'true' } });
    relay = await startRelay(w.url);
  });
  after(async () => {
    stopRelay(relay);
    await w?.mf.dispose();
  });

  test('200 datagrams from 20 devices, each device on its own socket: every ack exact', async () => {
    const byImei = new Map();
    for (const d of fixtures) {
      if (!byImei.has(d.imei)) byImei.set(d.imei, []);
      byImei.get(d.imei).push(d);
    }
    // Devices run concurrently; each sends its datagrams one after the other, as trackers do.
    const results = await Promise.all([...byImei.values()].map(async (list) => {
      const dev = await device();
      const acks = [];
      for (const d of list) acks.push([d, hex(await dev.send(d.bytes, relay.port))]);
      dev.close();
      return acks;
    }));
    for (const [d, ack] of results.flat()) assert.equal(ack, d.ack, `${d.imei} packet ${d.packet_id}`);
    const records = fixtures.reduce((n, d) => n + d.records.length, 0);
    const row = await w.db.prepare('SELECT COUNT(*) AS n FROM records').first();
    assert.equal(row.n, records);
  });

  test('a resent datagram is acked again and stored once', async () => {
    const d = fixtures[5];
    const dev = await device();
    const before = (await w.db.prepare('SELECT COUNT(*) AS n FROM records').first()).n;
    assert.equal(hex(await dev.send(d.bytes, relay.port)), d.ack);
    assert.equal(hex(await dev.send(d.bytes, relay.port)), d.ack);
    dev.close();
    assert.equal((await w.db.prepare('SELECT COUNT(*) AS n FROM records').first()).n, before);
  });

  test('garbage gets no ack, is logged with the Worker\'s reason, and the relay goes on', async () => {
    const dev = await device();
    assert.equal(await dev.send(Buffer.from('not a datagram'), relay.port, 1500), null);
    assert.equal(await dev.send(fixtures[0].bytes.subarray(0, 30), relay.port, 1500), null);
    assert.equal(hex(await dev.send(fixtures[1].bytes, relay.port)), fixtures[1].ack);
    dev.close();
    await wait(100);
    assert.match(relay.log, /status=400/);
    assert.match(relay.log, /length_mismatch/);
    assert.equal(relay.exited, null);
  });
});

describe('relay with a bearer token', () => {
  let w;
  before(async () => {
    w = await startWorker({ http: true, bindings: { RELAY_TOKEN: 'edge-secret' } });
  });
  after(async () => {
    await w?.mf.dispose();
  });

  test('--token (or $FLEETVIEW_RELAY_TOKEN) gets acks; a wrong token gets 401 logged, no ack', async () => {
    const [d] = datagrams({ devices: 1, count: 1, seed: 3 });
    const good = await startRelay(w.url, ['--token', 'edge-secret']);
    const fromEnv = await startRelay(w.url, [], { FLEETVIEW_RELAY_TOKEN: 'edge-secret' });
    const bad = await startRelay(w.url, ['--token', 'wrong']);
    try {
      const dev = await device();
      assert.equal(hex(await dev.send(d.bytes, good.port)), d.ack);
      assert.equal(hex(await dev.send(d.bytes, fromEnv.port)), d.ack);
      assert.equal(await dev.send(d.bytes, bad.port, 1500), null);
      dev.close();
      await wait(100);
      assert.match(bad.log, /status=401/);
      assert.equal(bad.exited, null);
    } finally {
      [good, fromEnv, bad].forEach(stopRelay);
    }
  });
});

describe('relay to a Worker without RELAY_TOKEN (fails closed)', () => {
  let w;
  before(async () => {
    w = await startWorker({ http: true });
  });
  after(async () => {
    await w?.mf.dispose();
  });

  test('no ack; the relay logs the 503 and how to configure the Worker', async () => {
    const [d] = datagrams({ devices: 1, count: 1, seed: 5 });
    const relay = await startRelay(w.url);
    try {
      const dev = await device();
      assert.equal(await dev.send(d.bytes, relay.port, 1500), null);
      dev.close();
      await wait(100);
      assert.match(relay.log, /status=503/);
      assert.match(relay.log, /relay_token_missing/);
      assert.match(relay.log, /wrangler secret put RELAY_TOKEN/);
      assert.equal(relay.exited, null);
    } finally {
      stopRelay(relay);
    }
  });
});

describe('relay when the Worker is unreachable or slow', () => {
  test('connection refused: logged, no ack, relay keeps running', async () => {
    // A port that was free a moment ago: nothing listens there.
    const server = net.createServer();
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address();
    await new Promise((r) => server.close(r));
    const relay = await startRelay(`http://127.0.0.1:${port}`);
    try {
      const [d] = datagrams({ devices: 1, count: 1, seed: 4 });
      const dev = await device();
      assert.equal(await dev.send(d.bytes, relay.port, 2000), null);
      assert.equal(await dev.send(d.bytes, relay.port, 2000), null);
      dev.close();
      assert.match(relay.log, /POST http:\/\/127\.0\.0\.1:\d+\/udp failed/);
      assert.equal(relay.exited, null);
    } finally {
      stopRelay(relay);
    }
  });

  test('timeout: a Worker that never answers is given up after --timeout-ms', async () => {
    // Accepts connections and reads, never answers.
    const sockets = [];
    const server = net.createServer((s) => { sockets.push(s); s.on('error', () => {}); });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const relay = await startRelay(`http://127.0.0.1:${server.address().port}`, ['--timeout-ms', '300']);
    try {
      const [d] = datagrams({ devices: 1, count: 1, seed: 5 });
      const dev = await device();
      assert.equal(await dev.send(d.bytes, relay.port, 1500), null);
      dev.close();
      assert.match(relay.log, /timed out/);
      assert.equal(relay.exited, null);
    } finally {
      stopRelay(relay);
      sockets.forEach((s) => s.destroy());
      await new Promise((r) => server.close(r));
    }
  });

  test('bad --to is refused at start with exit status 2', async () => {
    await assert.rejects(startRelay('ftp://127.0.0.1:1'), /relay exited with status 2:[\s\S]*expected http or https/);
  });
});
