// The built Worker in workerd (Miniflare) with D1: every route and status, retransmit dedup,
// allowlist, token, failing closed without one, /decode bounds, and 1,000 datagrams from 50
// IMEIs with every ack checked.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { datagrams, fleetviewBin, pool, postUdp, REPO_DIR, startWorker } from './helpers.mjs';

// A Codec 8 TCP frame (protocol text example) and the UDP example datagram (no GPS fix).
const TCP_FRAME = '000000000000003608010000016B40D8EA30010000000000000000000000000000000105021503010101425E0F01F10000601A014E0000000000000000010000C7CF';
const UDP_EXAMPLE = '003DCAFE0105000F33353230393330383634303336353508010000016B4F815B30010000000000000000000000000000000103021503010101425DBC000001';
// A UDP datagram carrying a Codec 12 "getinfo" command instead of records (checked through
// /decode below, i.e. by core, before it is used).
const IMEI_HEX = Buffer.from('352093086403655').toString('hex');
// length 0x24 | packet id 0001 | type 01 | AVL packet id 01 | IMEI length 000F | IMEI | 0C 01 05 len text 01
const UDP_COMMAND = `002400010101000F${IMEI_HEX}0C010500000007${Buffer.from('getinfo').toString('hex')}01`;

const hex = (buf) => Buffer.from(buf).toString('hex');
// The explicit opt-out of authentication (wrangler.toml [vars]) for the suites that test
// everything else.
const OPEN = { ALLOW_UNAUTHENTICATED: 'true' };

/** CRC-16/IBM (ARC) of the frame's data field. */
function crc16(bytes) {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

/** A Codec 8 TCP frame of `n` records without IO elements (30 bytes each). */
function codec8Frame(n) {
  const records = [];
  for (let i = 0; i < n; i++) {
    const r = Buffer.alloc(30);
    r.writeBigUInt64BE(1_560_000_000_000n + BigInt(i) * 1000n, 0);
    records.push(r);
  }
  const data = Buffer.concat([Buffer.from([0x08, n]), ...records, Buffer.from([n])]);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 4);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc16(data));
  return Buffer.concat([head, data, crc]);
}

async function count(db, sql, ...args) {
  const row = await db.prepare(sql).bind(...args).first();
  return Object.values(row)[0];
}

describe('worker routes in workerd', () => {
  let w;
  let fixtures;
  before(async () => {
    fixtures = datagrams({ devices: 50, count: 1000, seed: 7 });
    w = await startWorker({ bindings: OPEN });
  });
  after(async () => {
    await w?.mf.dispose();
  });

  test('GET /health answers 200 with D1 reachable', async () => {
    const r = await w.mf.dispatchFetch('http://relay.test/health');
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { status: 'ok', service: 'fleetview-worker', version: '0.1.0', db: 'ok' });
  });

  test('unknown route is 404, wrong method 405 with Allow, both as error JSON', async () => {
    let r = await w.mf.dispatchFetch('http://relay.test/nope');
    assert.equal(r.status, 404);
    assert.equal((await r.json()).error.kind, 'not_found');
    r = await w.mf.dispatchFetch('http://relay.test/udp');
    assert.equal(r.status, 405);
    assert.equal(r.headers.get('allow'), 'POST');
    assert.equal((await r.json()).error.kind, 'method_not_allowed');
    r = await w.mf.dispatchFetch('http://relay.test/health', { method: 'POST', body: 'x' });
    assert.equal(r.status, 405);
  });

  test('POST /decode: hex text and binary bodies give the JSON model', async () => {
    let r = await w.mf.dispatchFetch('http://relay.test/decode', { method: 'POST', body: TCP_FRAME.toLowerCase() });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /application\/json/);
    let j = await r.json();
    assert.equal(j.kind, 'avl');
    assert.equal(j.transport, 'tcp');
    assert.equal(j.codec, '8');
    assert.equal(j.crc.ok, true);
    assert.equal(j.records[0].timestamp_ms, 1560161086000);
    assert.equal(j.ack, '00000001');

    r = await w.mf.dispatchFetch('http://relay.test/decode', {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: Buffer.from(UDP_EXAMPLE, 'hex'),
    });
    assert.equal(r.status, 200);
    j = await r.json();
    assert.equal(j.transport, 'udp');
    assert.equal(j.imei, '352093086403655');
    assert.deepEqual(j.udp, { length: 61, packet_id: 0xcafe, packet_type: 1, avl_packet_id: 5 });
    assert.equal(j.ack, '0005cafe010501');

    // Two frames back to back: an array, as `fleetview decode` prints them.
    r = await w.mf.dispatchFetch('http://relay.test/decode', { method: 'POST', body: `${TCP_FRAME}\n${TCP_FRAME}` });
    assert.equal(r.status, 200);
    j = await r.json();
    assert.equal(j.length, 2);
    assert.equal(j[1].offset, TCP_FRAME.length / 2);
  });

  test('POST /decode: composite values decoded and the serving cell, as `fleetview decode` gives them', async () => {
    // core's test vector: an FMB device in beacon mode, 24 records.
    const vector = JSON.parse(readFileSync(join(REPO_DIR, 'core', 'tests', 'vectors',
      'composite_fmb_codec8e_24_records_beacons_sensors.json'), 'utf8'));
    const r = await w.mf.dispatchFetch('http://relay.test/decode', { method: 'POST', body: vector.hex });
    assert.equal(r.status, 200);
    const j = await r.json();
    assert.equal(j.records.length, 24);
    const beacons = j.records[0].io.find((e) => e.id === 385).decoded;
    assert.deepEqual(beacons.beacons[0], {
      type: 'ibeacon', uuid: 'e2c56db5-dffb-48d2-b060-d0f5a71096e0', major: 1, minor: 2, rssi: -55,
      battery_mv: 3048, temperature_c: 21.5,
    });
    assert.equal(j.records[0].io.find((e) => e.id === 11317).decoded.beacons[0].name, 'EYE_CARGO');
    assert.deepEqual(j.records[0].network, { mcc: 246, mnc: 2, mnc_digits: 2, lac: 3401, cell_id: 24721, signal: 4 });
    // One JSON model: the native decoder prints the very same.
    const native = JSON.parse(execFileSync(fleetviewBin(), ['decode', vector.hex], { encoding: 'utf8' }));
    assert.deepEqual(j, native);
  });

  test('POST /decode: bad input is 400 with kind, offset and message', async () => {
    let r = await w.mf.dispatchFetch('http://relay.test/decode', { method: 'POST', body: '00zz' });
    assert.equal(r.status, 400);
    let j = await r.json();
    assert.equal(j.error.kind, 'invalid_hex');
    assert.equal(j.error.offset, 2);

    const badCrc = `${TCP_FRAME.slice(0, -4)}0000`;
    r = await w.mf.dispatchFetch('http://relay.test/decode', { method: 'POST', body: badCrc });
    assert.equal(r.status, 400);
    j = await r.json();
    assert.equal(j.error.kind, 'crc_mismatch');
    assert.equal(j.error.offset, TCP_FRAME.length / 2 - 4);
    assert.match(j.error.message, /CRC/);

    // Lenient: decoded, with the problem as a warning.
    r = await w.mf.dispatchFetch('http://relay.test/decode?lenient=1', { method: 'POST', body: badCrc });
    assert.equal(r.status, 200);
    j = await r.json();
    assert.equal(j.crc.ok, false);
    assert.equal(j.warnings[0].kind, 'crc_mismatch');

    r = await w.mf.dispatchFetch('http://relay.test/decode?lenient=perhaps', { method: 'POST', body: TCP_FRAME });
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error.kind, 'invalid_query');
  });

  test('POST /udp: 200 with exactly the 7-byte ack, records in D1', async () => {
    const r = await postUdp(w.mf, Buffer.from(UDP_EXAMPLE, 'hex'));
    assert.equal(r.status, 200);
    // Running without a token was asked for, and every answer says so.
    assert.match(r.headers.get('x-fleetview-warning'), /^unauthenticated: RELAY_TOKEN is not set/);
    assert.equal(r.headers.get('content-type'), 'application/octet-stream');
    assert.equal(hex(await r.arrayBuffer()), '0005cafe010501');
    assert.equal(await count(w.db, 'SELECT COUNT(*) FROM records WHERE imei = ?', '352093086403655'), 1);
    const row = await w.db.prepare('SELECT * FROM records WHERE imei = ?').bind('352093086403655').first();
    assert.equal(row.timestamp_ms, 1560407006000);
    assert.equal(row.codec, '8');
    assert.equal(row.valid, 0);
    assert.equal(row.record_key.length, 16); // core's record identity (fleetview::identity)
  });

  test('POST /udp: a retransmit inserts nothing and gets the same ack', async () => {
    const d = fixtures.find((f) => f.records.length === 3);
    const first = await postUdp(w.mf, d.bytes);
    assert.equal(first.status, 200);
    assert.equal(hex(await first.arrayBuffer()), d.ack);
    const rows = await count(w.db, 'SELECT COUNT(*) FROM records WHERE imei = ?', d.imei);
    assert.equal(rows, 3);
    for (let i = 0; i < 3; i++) {
      const again = await postUdp(w.mf, d.bytes);
      assert.equal(again.status, 200);
      assert.equal(hex(await again.arrayBuffer()), d.ack);
    }
    assert.equal(await count(w.db, 'SELECT COUNT(*) FROM records WHERE imei = ?', d.imei), rows);
    // Same records under new packet ids (a device resending after a reboot): the ack echoes the
    // new ids, still no new rows.
    const bytes = Buffer.from(d.bytes);
    bytes.writeUInt16BE((d.packet_id + 1) & 0xffff, 2);
    bytes[5] = (d.avl_packet_id + 1) & 0xff;
    const moved = await postUdp(w.mf, bytes);
    assert.equal(moved.status, 200);
    const ack = Buffer.from(await moved.arrayBuffer());
    assert.equal(ack.readUInt16BE(2), (d.packet_id + 1) & 0xffff);
    assert.equal(ack[5], (d.avl_packet_id + 1) & 0xff);
    assert.equal(ack[6], 3);
    assert.equal(await count(w.db, 'SELECT COUNT(*) FROM records WHERE imei = ?', d.imei), rows);
    await w.db.prepare('DELETE FROM records WHERE imei = ?').bind(d.imei).run();
  });

  test('POST /udp: malformed datagrams are 400 with the error JSON, nothing stored', async () => {
    const before = await count(w.db, 'SELECT COUNT(*) FROM records');
    const full = Buffer.from(UDP_EXAMPLE, 'hex');
    const cases = [
      [Buffer.alloc(0), 'empty_input', 0],
      [full.subarray(0, 40), 'length_mismatch', 0],
      [Buffer.from('hello, worker'), null, 0],
    ];
    for (const [body, kind, offset] of cases) {
      const r = await postUdp(w.mf, body);
      assert.equal(r.status, 400, `for ${hex(body)}`);
      assert.match(r.headers.get('content-type'), /application\/json/);
      const j = await r.json();
      if (kind) assert.equal(j.error.kind, kind);
      assert.equal(j.error.offset, offset);
      assert.ok(j.error.message.length > 0);
    }
    // Wrong record count trailer: the offset points into the datagram.
    const badCount = Buffer.from(full);
    badCount[badCount.length - 1] = 2;
    let r = await postUdp(w.mf, badCount);
    assert.equal(r.status, 400);
    let j = await r.json();
    assert.ok(j.error.offset > 20, JSON.stringify(j));

    // A command datagram is well formed but carries no records: core says so, the Worker rejects it.
    const dec = await w.mf.dispatchFetch('http://relay.test/decode', { method: 'POST', body: UDP_COMMAND });
    const decoded = await dec.json();
    assert.equal(dec.status, 200, JSON.stringify(decoded));
    assert.equal(decoded.kind, 'command');
    assert.equal(decoded.transport, 'udp');
    assert.equal(decoded.messages[0].text, 'getinfo');
    r = await postUdp(w.mf, Buffer.from(UDP_COMMAND, 'hex'));
    assert.equal(r.status, 400);
    j = await r.json();
    assert.equal(j.error.kind, 'unexpected_codec');
    assert.equal(j.error.offset, 23);
    assert.equal(await count(w.db, 'SELECT COUNT(*) FROM records'), before);
  });

  test('POST /udp: allowlist in D1, 403 for others, empty table accepts all', async () => {
    const [a, b] = [fixtures[0], fixtures[1]];
    assert.notEqual(a.imei, b.imei);
    await w.db.prepare('INSERT INTO allowed_imeis (imei) VALUES (?)').bind(a.imei).run();
    try {
      let r = await postUdp(w.mf, b.bytes);
      assert.equal(r.status, 403);
      const j = await r.json();
      assert.equal(j.error.kind, 'imei_not_allowed');
      assert.match(j.error.message, new RegExp(b.imei));
      assert.equal(await count(w.db, 'SELECT COUNT(*) FROM records WHERE imei = ?', b.imei), 0);
      r = await postUdp(w.mf, a.bytes);
      assert.equal(r.status, 200);
      assert.equal(hex(await r.arrayBuffer()), a.ack);
    } finally {
      await w.db.prepare('DELETE FROM allowed_imeis').run();
      await w.db.prepare('DELETE FROM records WHERE imei = ?').bind(a.imei).run();
    }
    const r = await postUdp(w.mf, b.bytes);
    assert.equal(r.status, 200);
    await w.db.prepare('DELETE FROM records WHERE imei = ?').bind(b.imei).run();
  });

  test('1,000 datagrams from 50 IMEIs: every ack exact, every record stored once', async () => {
    assert.equal(fixtures.length, 1000);
    assert.equal(new Set(fixtures.map((d) => d.imei)).size, 50);
    const before = await count(w.db, 'SELECT COUNT(*) FROM records');
    const acks = await pool(fixtures, 16, async (d) => {
      const r = await postUdp(w.mf, d.bytes);
      return [r.status, hex(await r.arrayBuffer())];
    });
    acks.forEach(([status, ack], i) => {
      assert.equal(status, 200, `datagram ${i}`);
      assert.equal(ack, fixtures[i].ack, `datagram ${i}`);
    });
    const records = fixtures.reduce((n, d) => n + d.records.length, 0);
    assert.equal(await count(w.db, 'SELECT COUNT(*) FROM records') - before, records);
    assert.equal(await count(w.db, 'SELECT COUNT(DISTINCT imei) FROM records') >= 50, true);
  });

  test('GET /devices/{imei}/positions: GeoJSON of the fixes, [lon, lat], since and limit', async () => {
    const imei = fixtures[3].imei;
    const expected = fixtures.filter((d) => d.imei === imei)
      .flatMap((d) => d.records)
      .filter((r) => r.valid)
      .sort((x, y) => x.timestamp_ms - y.timestamp_ms);
    assert.ok(expected.length > 10);
    let r = await w.mf.dispatchFetch(`http://relay.test/devices/${imei}/positions?limit=10000`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/geo+json');
    const fc = await r.json();
    assert.equal(fc.type, 'FeatureCollection');
    assert.equal(fc.features.length, expected.length);
    fc.features.forEach((f, i) => {
      assert.equal(f.type, 'Feature');
      assert.equal(f.geometry.type, 'Point');
      assert.deepEqual(f.geometry.coordinates, [expected[i].longitude, expected[i].latitude]);
      assert.equal(f.properties.timestamp_ms, expected[i].timestamp_ms);
      assert.equal(f.properties.imei, imei);
      assert.ok(Array.isArray(f.properties.io) && f.properties.io.length >= 4);
    });
    const since = expected[4].timestamp_ms;
    r = await w.mf.dispatchFetch(`http://relay.test/devices/${imei}/positions?since=${since}&limit=3`);
    const page = await r.json();
    assert.deepEqual(page.features.map((f) => f.properties.timestamp_ms), expected.slice(5, 8).map((e) => e.timestamp_ms));

    r = await w.mf.dispatchFetch('http://relay.test/devices/111111111111111/positions');
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { type: 'FeatureCollection', features: [] });

    r = await w.mf.dispatchFetch(`http://relay.test/devices/${imei}/positions?since=yesterday`);
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error.kind, 'invalid_query');
    r = await w.mf.dispatchFetch(`http://relay.test/devices/${imei}/positions?limit=0`);
    assert.equal(r.status, 400);
    r = await w.mf.dispatchFetch('http://relay.test/devices/35x/positions');
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error.kind, 'invalid_imei');
  });
});

describe('bearer token (secret RELAY_TOKEN)', () => {
  let w;
  before(async () => {
    w = await startWorker({ bindings: { RELAY_TOKEN: 's3cret-token' } });
  });
  after(async () => {
    await w?.mf.dispose();
  });

  test('/udp and /devices need the token: 401 when missing or wrong', async () => {
    const bytes = Buffer.from(UDP_EXAMPLE, 'hex');
    for (const headers of [{}, { Authorization: 'Bearer nope' }, { Authorization: 'Basic s3cret-token' }]) {
      const r = await postUdp(w.mf, bytes, headers);
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.equal((await r.json()).error.kind, 'unauthorized');
    }
    assert.equal(await count(w.db, 'SELECT COUNT(*) FROM records'), 0);
    const ok = await postUdp(w.mf, bytes, { Authorization: 'Bearer s3cret-token' });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('x-fleetview-warning'), null);
    assert.equal(hex(await ok.arrayBuffer()), '0005cafe010501');

    let r = await w.mf.dispatchFetch('http://relay.test/devices/352093086403655/positions');
    assert.equal(r.status, 401);
    r = await w.mf.dispatchFetch('http://relay.test/devices/352093086403655/positions', {
      headers: { Authorization: 'Bearer s3cret-token' },
    });
    assert.equal(r.status, 200);
  });

  test('/decode and /health stay open', async () => {
    let r = await w.mf.dispatchFetch('http://relay.test/health');
    assert.equal(r.status, 200);
    r = await w.mf.dispatchFetch('http://relay.test/decode', { method: 'POST', body: TCP_FRAME });
    assert.equal(r.status, 200);
  });
});

describe('fails closed without RELAY_TOKEN', () => {
  let w;
  before(async () => {
    w = await startWorker();
  });
  after(async () => {
    await w?.mf.dispose();
  });

  test('/udp and /devices are 503 with how to configure; nothing stored', async () => {
    let r = await postUdp(w.mf, Buffer.from(UDP_EXAMPLE, 'hex'));
    assert.equal(r.status, 503);
    let j = await r.json();
    assert.equal(j.error.kind, 'relay_token_missing');
    assert.match(j.error.message, /wrangler secret put RELAY_TOKEN/);
    assert.match(j.error.message, /ALLOW_UNAUTHENTICATED = "true"/);
    r = await w.mf.dispatchFetch('http://relay.test/devices/352093086403655/positions');
    assert.equal(r.status, 503);
    assert.equal((await r.json()).error.kind, 'relay_token_missing');
    assert.equal(await count(w.db, 'SELECT COUNT(*) FROM records'), 0);
  });

  test('/decode and /health stay open', async () => {
    let r = await w.mf.dispatchFetch('http://relay.test/health');
    assert.equal(r.status, 200);
    r = await w.mf.dispatchFetch('http://relay.test/decode', { method: 'POST', body: TCP_FRAME });
    assert.equal(r.status, 200);
  });

  test('an opt-out that is not "true" or "false" keeps them closed and says why', async () => {
    const bad = await startWorker({ bindings: { ALLOW_UNAUTHENTICATED: 'yes' } });
    try {
      const r = await postUdp(bad.mf, Buffer.from(UDP_EXAMPLE, 'hex'));
      assert.equal(r.status, 503);
      const j = await r.json();
      assert.equal(j.error.kind, 'invalid_configuration');
      assert.match(j.error.message, /ALLOW_UNAUTHENTICATED = "yes"/);
    } finally {
      await bad.mf.dispose();
    }
  });
});

describe('/decode and /udp are bounded', () => {
  let w;
  before(async () => {
    w = await startWorker({ bindings: OPEN });
  });
  after(async () => {
    await w?.mf.dispose();
  });

  const decode = (body, init = {}) =>
    w.mf.dispatchFetch('http://relay.test/decode', { method: 'POST', body, ...init });

  test('a body over 256 KiB is 413, declared or streamed', async () => {
    const cap = 256 * 1024;
    // Exactly the cap: decoded (hex of keep-alives, within the packet bound).
    let r = await decode(`${'FF'.repeat(500)}${' '.repeat(cap - 1000)}`);
    assert.equal(r.status, 200);
    assert.equal((await r.json()).length, 500);
    r = await decode(Buffer.alloc(cap + 1, 0x20));
    assert.equal(r.status, 413);
    let j = await r.json();
    assert.equal(j.error.kind, 'body_too_large');
    assert.match(j.error.message, /262144 bytes/);
    // No Content-Length: the Worker stops reading at the cap. The client sees the 413, or a
    // failed upload when the answer comes before its body is sent (undici reports that as a
    // fetch error); either way it could not send its 64 MiB.
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const chunks = 1024;
    let sent = 0;
    const stream = new ReadableStream({
      pull(c) {
        if (sent >= chunks) return c.close();
        sent += 1;
        c.enqueue(chunk);
      },
    });
    try {
      r = await decode(stream, { duplex: 'half' });
      assert.equal(r.status, 413);
      assert.equal((await r.json()).error.kind, 'body_too_large');
    } catch (e) {
      assert.match(String(e), /fetch failed/);
    }
    assert.ok(sent < chunks, `the Worker read all ${sent} chunks of 64 KiB`);
  });

  test('more than 1,000 packets or 2,000 records is 413 with where it stopped', async () => {
    let r = await decode('FF'.repeat(1000));
    assert.equal(r.status, 200);
    assert.equal((await r.json()).length, 1000);
    r = await decode('FF'.repeat(1001));
    assert.equal(r.status, 413);
    let j = await r.json();
    assert.equal(j.error.kind, 'too_much_to_decode');
    assert.match(j.error.message, /packet 1001 starts at byte 1000/);

    const frame = codec8Frame(250);
    r = await decode(hex(frame));
    assert.equal(r.status, 200, JSON.stringify(await r.clone().json()).slice(0, 300));
    assert.equal((await r.json()).records.length, 250);
    r = await decode(Buffer.concat(Array(8).fill(frame)), { headers: { 'Content-Type': 'application/octet-stream' } });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).reduce((n, p) => n + p.records.length, 0), 2000);
    r = await decode(Buffer.concat(Array(9).fill(frame)), { headers: { 'Content-Type': 'application/octet-stream' } });
    assert.equal(r.status, 413);
    j = await r.json();
    assert.equal(j.error.kind, 'too_much_to_decode');
    assert.match(j.error.message, new RegExp(`2000 records \\(reached in the packet at byte ${frame.length * 8}\\)`));
  });

  test('a /udp body over 65,535 bytes is 413, nothing stored', async () => {
    const r = await postUdp(w.mf, Buffer.alloc(65_536));
    assert.equal(r.status, 413);
    assert.equal((await r.json()).error.kind, 'body_too_large');
    assert.equal(await count(w.db, 'SELECT COUNT(*) FROM records'), 0);
  });
});

describe('storage failure', () => {
  let w;
  before(async () => {
    w = await startWorker({ bindings: OPEN });
  });
  after(async () => {
    await w?.mf.dispose();
  });

  test('no ack when the D1 write fails: 500 with the error JSON', async () => {
    await w.db.prepare('DROP TABLE records').run();
    const r = await postUdp(w.mf, Buffer.from(UDP_EXAMPLE, 'hex'));
    assert.equal(r.status, 500);
    const j = await r.json();
    assert.equal(j.error.kind, 'internal');
    assert.match(j.error.message, /records/);
  });
});
