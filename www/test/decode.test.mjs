// The package from Node: the official examples of Teltonika's documentation with their values,
// errors (kind and offset), the encoders, the IO catalogue, and the fast object path checked against
// core's serde rendering of the same JSON model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  decode, decodeAll, decodeJson, encodeCommand, loginFrame, tcpAck, udpAck, ioInfo, models,
} from 'fleetview';

const vectors = JSON.parse(readFileSync(new URL('./vectors.json', import.meta.url), 'utf8'));
const hexOf = (name) => vectors.find((v) => v.name === name).hex;
const bytesOf = (name) => Buffer.from(hexOf(name), 'hex');
const hex = (u8) => Buffer.from(u8).toString('hex');
const io = (record, id) => record.io.find((e) => e.id === id);

/** Thrown error with the given kind and offset. */
function throwsKind(fn, kind, offset) {
  let error;
  assert.throws(fn, (e) => {
    error = e;
    return e instanceof Error && e.kind === kind && (offset === undefined || e.offset === offset);
  }, `expected ${kind} at ${offset}, got ${error?.kind} at ${error?.offset}`);
  return error;
}

test('T1: Codec 8, one IO of each size, CRC, ack', () => {
  const p = decode(bytesOf('T1'));
  assert.equal(p.kind, 'avl');
  assert.equal(p.transport, 'tcp');
  assert.equal(p.codec, '8');
  assert.equal(p.codec_id, 8);
  assert.deepEqual(p.crc, { received: 0xc7cf, computed: 0xc7cf, ok: true });
  assert.equal(p.ack, '00000001');
  assert.equal(p.offset, 0);
  assert.equal(p.length, 66);
  assert.deepEqual(p.warnings, []);
  const [r] = p.records;
  assert.equal(r.timestamp_ms, 1560161086000);
  assert.equal(r.time, '2019-06-10T10:04:46.000Z');
  assert.equal(r.priority, 1);
  assert.equal(r.event_id, 1);
  assert.equal(r.generation_type, null);
  assert.equal(r.valid, false);
  assert.deepEqual(r.io.map((e) => [e.id, e.size, e.raw]), [[21, 1, 3], [1, 1, 1], [66, 2, 0x5e0f], [241, 4, 0x601a], [78, 8, 0]]);
  assert.deepEqual(io(r, 66), { id: 66, size: 2, raw: 24079, name: 'External Voltage', value: 24.079, unit: 'V' });
});

test('T2 and T3: Codec 8, acks count the records', () => {
  const t2 = decode(hexOf('T2'));
  assert.equal(t2.records[0].timestamp_ms, 1560161136000);
  assert.equal(io(t2.records[0], 66).raw, 0x5e10);
  const t3 = decode(hexOf('T3'));
  assert.equal(t3.ack, '00000002');
  assert.deepEqual(t3.records.map((r) => [r.timestamp_ms, io(r, 1).raw]), [[1560160861000, 0], [1560160879000, 1]]);
});

test('T4: Codec 8 Extended, 2-byte ids, 8-byte values', () => {
  const [r] = decode(hexOf('T4')).records;
  assert.equal(decode(hexOf('T4')).codec, '8E');
  assert.equal(r.time, '2019-06-10T11:36:32.000Z');
  assert.deepEqual(r.io.map((e) => [e.id, e.raw]), [[1, 1], [17, 0x1d], [16, 0x015e2c88], [11, 0x3544c87a], [14, 0x1dd7e06a]]);
});

test('T5: Codec 16, generation type', () => {
  const p = decode(hexOf('T5'));
  assert.equal(p.codec, '16');
  assert.deepEqual(p.records.map((r) => [r.timestamp_ms, r.generation_type, r.event_id, io(r, 11).raw]), [
    [1562760414000, 5, 11, 0x27],
    [1562760415000, 5, 11, 0x26],
  ]);
});

test('T6–T10, T12, T13: command codecs, never acked', () => {
  const t6 = decode(hexOf('T6'));
  assert.equal(t6.kind, 'command');
  assert.equal(t6.codec, '12');
  assert.equal(t6.ack, null);
  assert.deepEqual(t6.messages, [{ type: 5, text: 'getinfo', payload_hex: '676574696e666f', timestamp_s: null, imei: null }]);
  assert.match(decode(hexOf('T7')).messages[0].text, /^INI:2019\/7\/22 7:22 RTC/);
  assert.equal(decode(hexOf('T8')).messages[0].text, 'DI1:1 DI2:0 DI3:0 AIN1:0 AIN2:16924 DO1:0 DO2:1');
  const t9 = decode(hexOf('T9')).messages[0];
  assert.deepEqual([t9.type, t9.text, t9.imei], [5, 'getver', '352093081452251']);
  assert.match(decode(hexOf('T10')).messages[0].text, /^Ver:03\.18\.14_04 .*IMEI:352093081452251/);
  const t12 = decode(hexOf('T12')).messages[0];
  assert.deepEqual([t12.type, t12.text, t12.timestamp_s, t12.imei], [0x0b, 'Hello!\n', 1699440036, '123456789123456']);
  const t13 = decode(hexOf('T13a')).messages[0];
  assert.deepEqual([t13.type, t13.timestamp_s, t13.text], [5, 176276256, 'getinfo']);
});

test('T11: the widely copied nACK has a bad CRC: strict rejects, lenient warns', () => {
  const e = throwsKind(() => decode(hexOf('T11')), 'crc_mismatch', 24);
  assert.equal(e.field, 'crc');
  assert.match(e.message, /CRC mismatch at byte 24: computed 0x635e, received 0x32ac/);
  const p = decode(hexOf('T11'), { lenient: true });
  assert.equal(p.messages[0].type, 0x11);
  assert.equal(p.messages[0].imei, '352093081452468');
  assert.equal(p.crc.ok, false);
  assert.deepEqual(p.warnings.map((w) => [w.kind, w.offset]), [['crc_mismatch', 24]]);
});

test('T14–T16: UDP datagrams carry the IMEI and the ack echoes both ids', () => {
  const t14 = decode(hexOf('T14'));
  assert.equal(t14.transport, 'udp');
  assert.equal(t14.imei, '352093086403655');
  assert.deepEqual(t14.udp, { length: 61, packet_id: 0xcafe, packet_type: 1, avl_packet_id: 5 });
  assert.equal(t14.ack, '0005cafe010501');
  assert.equal(io(t14.records[0], 66).raw, 0x5dbc);
  const t15 = decode(hexOf('T15'));
  assert.equal(t15.codec, '8E');
  assert.equal(io(t15.records[0], 17).raw, 0x9d);
  assert.equal(t15.ack, '0005cafe010701');
  const t16 = decode(hexOf('T16'));
  assert.equal(t16.imei, '352094085231592');
  assert.equal(t16.records[0].time, '2015-11-18T00:00:01.000Z');
  assert.equal(t16.records[0].event_id, 239);
  assert.equal(t16.ack, '0005cafe010701');
});

test('8-byte values above 2^53 are exact BigInts', () => {
  // complete-teltonika-parser's sample: ICCID digits as ASCII in 8-byte IO 219 (0xDB).
  const [r] = decode(bytesOf('ctp-sample')).records;
  assert.equal(io(r, 219).raw, 0x3839343435303231n);
  assert.equal(typeof io(r, 218).raw, 'number'); // 0x0000D548705BEF7E < 2^53
  assert.equal(r.io.length, 41);
  assert.ok(r.valid);
  assert.equal(r.latitude, 45.7946066);
  assert.equal(r.longitude, 13.5133066);
  // The JSON text keeps it exact too.
  assert.ok(decodeJson(bytesOf('ctp-sample')).includes(`"raw":${0x3839343435303231n}`));
});

test('inputs: bytes, ArrayBuffer, hex text with spaces and 0x; model option', () => {
  const h = hexOf('T1');
  const a = decode(h);
  assert.deepEqual(decode(new Uint8Array(Buffer.from(h, 'hex')).buffer), a);
  assert.deepEqual(decode(new Uint8Array(Buffer.from(h, 'hex'))), a);
  assert.deepEqual(decode(h.match(/../g).map((b) => `0x${b}`).join(', ')), a);
  assert.deepEqual(decode(h, { model: 'FMB920' }).records[0].io.map((e) => e.name), a.records[0].io.map((e) => e.name));
});

test('the objects equal core serde rendering (JSON.parse(decodeJson)), strict and lenient', () => {
  const plain = (v) => JSON.parse(JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? Number(x) : x)));
  let compared = 0;
  for (const v of vectors) {
    for (const options of [undefined, { lenient: true }, { model: 'FMC640' }]) {
      let json;
      try {
        json = decodeJson(v.hex, options);
      } catch (e) {
        throwsKind(() => decode(v.hex, options), e.kind, e.offset);
        continue;
      }
      assert.deepEqual(plain(decode(v.hex, options)), JSON.parse(json), `${v.name} ${JSON.stringify(options)}`);
      compared++;
    }
  }
  assert.ok(compared >= 45, `compared ${compared}`);
});

test('decode takes one packet; decodeAll takes a captured stream', () => {
  const login = loginFrame('356307042441013');
  const stream = Buffer.concat([login, bytesOf('T1'), Buffer.from([0xff]), bytesOf('T3')]);
  const packets = decodeAll(stream);
  assert.deepEqual(packets.map((p) => [p.kind, p.offset, p.length]), [
    ['imei', 0, 17], ['avl', 17, 66], ['keepalive', 83, 1], ['avl', 84, 79],
  ]);
  assert.equal(packets[0].imei, '356307042441013');
  assert.equal(packets[0].ack, '01');
  const e = throwsKind(() => decode(stream), 'trailing_bytes', 17);
  assert.deepEqual(e.packets.map((p) => p.kind), ['imei']);
});

test('errors carry kind, offset and field', () => {
  const t1 = bytesOf('T1');
  throwsKind(() => decode(new Uint8Array()), 'empty_input', 0);
  const bad = Buffer.from(t1);
  bad[bad.length - 1] ^= 1;
  const crc = throwsKind(() => decode(bad), 'crc_mismatch', 62);
  assert.equal(crc.field, 'crc');
  throwsKind(() => decode(t1.subarray(0, 40)), 'length_mismatch', 4);
  const codec = Buffer.from(t1);
  codec[8] = 0x55;
  throwsKind(() => decode(codec), 'crc_mismatch', 62); // the CRC is checked first
  assert.equal(throwsKind(() => decode(codec, { lenient: true }), 'unknown_codec', 8).field, 'codec id');
  const e = throwsKind(() => decode('0000 00zz'), 'invalid_hex', 7);
  assert.match(e.message, /'z' is not a hex digit/);
  // Frames after a good one: the error offset counts from the start of the input.
  const two = Buffer.concat([t1, bad]);
  const later = throwsKind(() => decodeAll(two), 'crc_mismatch', 66 + 62);
  assert.equal(later.packets.length, 1);
  throwsKind(() => decode(42), 'invalid_input');
  throwsKind(() => decode(t1, { lenient: 'yes' }), 'invalid_option');
  throwsKind(() => decode(t1, { maxFrameLen: 10 }), 'frame_too_large', 4);
});

test('encodeCommand, loginFrame and the acks give the official bytes', () => {
  assert.equal(hex(encodeCommand('getinfo')), hexOf('T6').toLowerCase());
  assert.equal(hex(encodeCommand('getver', { codec: 14, imei: '352093081452251' })), hexOf('T9').toLowerCase());
  assert.equal(hex(encodeCommand(new TextEncoder().encode('setdigout 1'))), '00000000000000130c01050000000b7365746469676f7574203101000087a2');
  assert.equal(hex(loginFrame('356307042441013')), '000f333536333037303432343431303133');
  assert.equal(hex(tcpAck(2)), '00000002');
  assert.equal(hex(udpAck(0xcafe, 5, 1)), '0005cafe010501');
  throwsKind(() => encodeCommand('getver', { codec: 14 }), 'invalid_option');
  throwsKind(() => encodeCommand('getver', { codec: 13 }), 'invalid_option');
  throwsKind(() => encodeCommand('getver', { codec: 14, imei: 'x1' }), 'invalid_imei');
  throwsKind(() => encodeCommand(12), 'invalid_input');
  throwsKind(() => tcpAck(-1), 'out_of_range');
  throwsKind(() => udpAck(0x10000, 1, 1), 'out_of_range');
  throwsKind(() => udpAck(1, 1, 1.5), 'out_of_range');
  throwsKind(() => loginFrame('35630704244101x'), 'invalid_imei');
});

test('IO catalogue: ioInfo and models', () => {
  const info = ioInfo(66, 'FMB920');
  assert.equal(info.name, 'External Voltage');
  assert.equal(info.unit, 'V');
  assert.equal(info.multiplier, 0.001);
  assert.equal(info.type, 'unsigned');
  assert.equal(info.bytes, 2);
  assert.equal(info.exact, true);
  assert.ok(info.models.includes('FMB920'));
  assert.equal(ioInfo(66).exact, false);
  assert.equal(ioInfo(65535), null);
  const list = models();
  assert.ok(list.includes('FMB920'));
  assert.deepEqual([...list].sort(), list);
  assert.throws(() => ioInfo(70000), (e) => e.kind === 'out_of_range');
});

test('times: JS renders what core renders, up to year 9999 and beyond', () => {
  // Lenient decoding accepts the CRC that no longer matches the patched timestamp.
  const frame = bytesOf('T1');
  const stamps = [0, 1, 86399999, 86400000, 951782400123, 1560161086000, 4102444800000, 253402300799999, 253402300800000, 2 ** 53 - 1];
  for (let k = 0; k < 300; k++) stamps.push(Math.floor(Math.random() * 253402300800000));
  for (const ms of stamps) {
    frame.writeBigUInt64BE(BigInt(ms), 10);
    const json = JSON.parse(decodeJson(frame, { lenient: true })).records[0];
    const record = decode(frame, { lenient: true }).records[0];
    assert.equal(record.time, json.time, String(ms));
    assert.equal(record.timestamp_ms, ms);
  }
});

test('names: false leaves IO elements unnamed, in both renderings', () => {
  const p = decode(hexOf('T1'), { names: false });
  assert.deepEqual(p.records[0].io[2], { id: 66, size: 2, raw: 24079 });
  assert.deepEqual(JSON.parse(decodeJson(hexOf('T1'), { names: false })), p);
  throwsKind(() => decode(hexOf('T1'), { names: 1 }), 'invalid_option');
});

test('every 8-byte value survives as a BigInt, NaN bit patterns included', () => {
  const frame = bytesOf('T1');
  const at = frame.length - 4 - 1 - 8; // IO 78's value: the last field before Number of Data 2 and the CRC
  for (const v of [2n ** 53n + 1n, 0x7ff0000000000001n, 0x7ff8000000000000n, 0xfff8000000000001n, 2n ** 64n - 1n]) {
    frame.writeBigUInt64BE(v, at);
    const e = decode(frame, { lenient: true }).records[0].io.find((x) => x.id === 78);
    assert.equal(e.raw, v, v.toString(16));
    assert.ok(decodeJson(frame, { lenient: true }).includes(`"raw":${v}`));
  }
});

test('options set once are re-read when they change, in place too; IO names follow the model', () => {
  const plain = (v) => JSON.parse(JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? Number(x) : x)));
  const same = (input, options) => assert.deepEqual(plain(decode(input, options)), JSON.parse(decodeJson(input, options)), JSON.stringify(options));
  // Models interleaved, by the same and by new option objects: the wasm side caches IO
  // descriptors per model, the JS side the options it last set.
  const models = ['FMB920', undefined, 'FMC640', 'fmb920', 'NOT-A-MODEL', 'FMB640'];
  for (let round = 0; round < 2; round++) {
    for (const v of vectors) {
      for (const model of models) {
        let options = model === undefined ? undefined : { model };
        try {
          decodeJson(v.hex, options);
        } catch {
          continue;
        }
        same(Buffer.from(v.hex, 'hex'), options);
        same(v.hex, options);
      }
    }
  }
  const o = { model: 'FMB920' };
  const t1 = bytesOf('T1');
  same(t1, o);
  o.names = false;
  assert.deepEqual(decode(t1, o).records[0].io[2], { id: 66, size: 2, raw: 24079 });
  o.names = true;
  o.model = 'FMC640';
  same(t1, o);
  o.lenient = 'yes';
  throwsKind(() => decode(t1, o), 'invalid_option');
  throwsKind(() => decode(t1, o), 'invalid_option'); // a rejected object is never taken as set
  o.lenient = true;
  same(t1, o);
  throwsKind(() => decode(t1, 5), 'invalid_option');
  same(t1, undefined);
});

test('inputs larger than any before, and tapes that grow the wasm memory', () => {
  const t1 = bytesOf('T1'), ctp = bytesOf('ctp-sample');
  const stream = Buffer.concat(Array.from({ length: 4000 }, (_, k) => (k % 2 ? t1 : ctp)));
  const packets = decodeAll(stream);
  assert.equal(packets.length, 4000);
  assert.deepEqual(packets[3998], { ...decode(ctp), offset: 1999 * (t1.length + ctp.length) });
  assert.deepEqual(packets[3999], { ...decode(t1), offset: 1999 * (t1.length + ctp.length) + ctp.length });
  assert.equal(decode(t1).records[0].io.length, 5);
});

test('composite values: beacons, EYE sensors, fault codes, VIN and the serving cell; malformed ones kept as hex with a warning', () => {
  const p = decode(bytesOf('composite_fmb_codec8e_24_records_beacons_sensors'));
  assert.equal(p.records.length, 24);
  assert.deepEqual(p.warnings, []);
  const [first] = p.records;
  assert.deepEqual(io(first, 385).decoded, {
    part: 1, parts: 1,
    beacons: [
      { type: 'ibeacon', uuid: 'e2c56db5-dffb-48d2-b060-d0f5a71096e0', major: 1, minor: 2, rssi: -55, battery_mv: 3048, temperature_c: 21.5 },
      { type: 'ibeacon', uuid: 'fda50693-a4e2-4fb1-afcf-c6eb07647825', major: 10065, minor: 26049, rssi: -77 },
    ],
  });
  const eye = io(first, 11317).decoded.beacons[0];
  assert.equal(eye.name, 'EYE_CARGO');
  assert.equal(eye.mac, '7c:d9:f4:03:8a:21');
  assert.deepEqual(eye.eye, { temperature_c: -11.87, humidity: 41, movement: true, movement_count: 17, low_battery: false, battery_mv: 2950 });
  // IO 548: raw advertisements, with the EYE data of Teltonika's manufacturer data.
  const advanced = io(p.records[1], 548).decoded.beacons;
  assert.equal(advanced[0].eye.temperature_c, 23.05);
  assert.deepEqual(advanced[0].unknown, [{ id: 20, hex: '0102' }]);
  assert.equal(advanced[1].name, 'EYE_DOOR');
  assert.deepEqual(io(first, 256).decoded, { vin: 'WVWZZZ1KZAW000152' });
  assert.deepEqual(io(p.records[9], 281).decoded, { codes: ['P0101', 'P0300'] });
  assert.deepEqual(first.network, { mcc: 246, mnc: 2, mnc_digits: 2, lac: 3401, cell_id: 24721, signal: 4 });
  assert.equal(p.records[12].network.cell_id, 27449604);
  // The same objects as core's serde rendering, names or not.
  assert.deepEqual(p, JSON.parse(decodeJson(bytesOf('composite_fmb_codec8e_24_records_beacons_sensors'))));

  const bad = decode(bytesOf('composite_malformed_values'));
  assert.deepEqual(bad.warnings.map((w) => [w.kind, w.offset]), [
    ['composite_truncated', 110], ['composite_length_overrun', 193], ['composite_bad_part', 282], ['composite_not_text', 395],
  ]);
  const truncated = io(bad.records[0], 385);
  assert.equal(typeof truncated.hex, 'string');
  assert.equal(truncated.decoded, undefined);
});
