// examples/server.mjs against a scripted device on a real socket (127.0.0.1): the handshake,
// record acks (one frame split across writes, two frames in one write), a resend request for a
// corrupt frame, a queued command and its response, a rejected IMEI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { loginFrame } from 'fleetview';
import { startServer } from '../examples/server.mjs';

const vectors = JSON.parse(readFileSync(new URL('./vectors.json', import.meta.url), 'utf8'));
const frame = (name) => Buffer.from(vectors.find((v) => v.name === name).hex, 'hex');
const ALLOWED = '356307042441013';

const stored = [];
const responses = [];
const logs = [];
let server;

before(async () => {
  server = startServer({
    port: 0,
    host: '127.0.0.1',
    allow: (imei) => imei === ALLOWED,
    onRecords: async (imei, records) => {
      await new Promise((r) => setTimeout(r, 5)); // a database write
      stored.push(...records.map((r) => [imei, r.timestamp_ms]));
    },
    onResponse: (imei, text) => responses.push([imei, text]),
    commands: new Map([[ALLOWED, ['getinfo']]]),
    log: (line) => logs.push(line),
  });
  await once(server, 'listening');
});

after(() => server.close());

/** A scripted device: write, then read exactly `n` bytes (within 5 s). */
async function device() {
  const socket = net.connect(server.address().port, '127.0.0.1');
  await once(socket, 'connect');
  let buffered = Buffer.alloc(0);
  const waiters = [];
  let closed = false;
  const wake = () => {
    while (waiters.length && (buffered.length >= waiters[0].n || closed)) {
      const w = waiters.shift();
      const got = buffered.subarray(0, w.n);
      buffered = buffered.subarray(got.length);
      clearTimeout(w.timer);
      w.resolve(got);
    }
  };
  socket.on('data', (d) => {
    buffered = Buffer.concat([buffered, d]);
    wake();
  });
  socket.on('close', () => {
    closed = true;
    wake();
  });
  return {
    socket,
    write: (b) => socket.write(b),
    read: (n) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${n} bytes`)), 5000);
      waiters.push({ n, resolve, timer });
      wake();
    }),
    closed: () => (closed ? Promise.resolve() : once(socket, 'close')),
  };
}

test('handshake, acks after storing, resend request, command and response', async () => {
  const d = await device();
  d.write(loginFrame(ALLOWED));
  assert.equal((await d.read(1)).toString('hex'), '01');

  // One frame in three writes.
  const t1 = frame('T1');
  d.write(t1.subarray(0, 10));
  await new Promise((r) => setTimeout(r, 20));
  d.write(t1.subarray(10, 40));
  d.write(t1.subarray(40));
  assert.equal((await d.read(4)).toString('hex'), '00000001');
  // After the first ack the queued command goes out: a Codec 12 getinfo frame.
  assert.equal((await d.read(27)).toString('hex'), vectors.find((v) => v.name === 'T6').hex.toLowerCase());

  // A corrupt frame: not stored, an ack of 0 asks for it again.
  const bad = frame('T2');
  bad[30] ^= 1;
  d.write(bad);
  assert.equal((await d.read(4)).toString('hex'), '00000000');

  // The command response, a keep-alive and two frames in one write.
  d.write(Buffer.concat([frame('T7'), Buffer.from([0xff]), frame('T3'), frame('T2')]));
  assert.equal((await d.read(8)).toString('hex'), '0000000200000001');

  assert.deepEqual(stored, [
    [ALLOWED, 1560161086000], [ALLOWED, 1560160861000], [ALLOWED, 1560160879000], [ALLOWED, 1560161136000],
  ]);
  assert.equal(responses.length, 1);
  assert.match(responses[0][1], /^INI:2019\/7\/22/);
  assert.ok(logs.some((l) => /CRC mismatch/.test(l)), logs.join('\n'));
  d.socket.destroy();
});

test('an IMEI that is not allowed gets 00 and the connection is closed', async () => {
  const d = await device();
  d.write(loginFrame('111111111111111'));
  assert.equal((await d.read(1)).toString('hex'), '00');
  await d.closed();
});

test('garbage closes the connection, other devices are unaffected', async () => {
  const bad = await device();
  const good = await device();
  bad.write(loginFrame(ALLOWED));
  good.write(loginFrame(ALLOWED));
  assert.equal((await bad.read(1)).toString('hex'), '01');
  assert.equal((await good.read(1)).toString('hex'), '01');
  bad.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await bad.closed();
  assert.ok(logs.some((l) => /bad_preamble at byte 17/.test(l)), logs.join('\n'));
  good.write(frame('T5'));
  assert.equal((await good.read(4)).toString('hex'), '00000002');
  good.socket.destroy();
});
