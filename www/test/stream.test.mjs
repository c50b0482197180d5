// Decoder: the TCP stream of one device, server side: handshake, keep-alives, split and joined
// frames, invalid frames skipped, fatal errors, commands.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Decoder, decodeAll, encodeCommand, loginFrame } from 'fleetview';

const vectors = JSON.parse(readFileSync(new URL('./vectors.json', import.meta.url), 'utf8'));
const frame = (name) => Buffer.from(vectors.find((v) => v.name === name).hex, 'hex');
const hex = (u8) => Buffer.from(u8).toString('hex');
const IMEI = '356307042441013';

// A session as a device sends it: login, records, a keep-alive, more records, a command
// response, a Codec 8E frame and a Codec 16 frame.
const stream = Buffer.concat([
  loginFrame(IMEI), frame('T1'), Buffer.from([0xff]), frame('T3'), frame('T7'), frame('T4'), frame('T5'), frame('ctp-sample'),
]);

function drive(decoder, chunks) {
  const out = [];
  for (const c of chunks) {
    for (const p of decoder.push(c)) {
      out.push(p);
      if (p.kind === 'imei') assert.equal(hex(decoder.accept(true)), '01');
    }
    out.push(...decoder.take());
  }
  return out;
}

test('fed one byte at a time, the Decoder gives what decodeAll gives for the whole capture', () => {
  const bytes = [...stream].map((b) => Uint8Array.of(b));
  const got = drive(new Decoder(), bytes);
  assert.deepEqual(got, decodeAll(stream));
  assert.deepEqual(got.map((p) => p.kind), ['imei', 'avl', 'keepalive', 'avl', 'command', 'avl', 'avl', 'avl']);
});

test('the same stream in one piece and cut at every offset gives the same packets', () => {
  const whole = drive(new Decoder(), [stream]);
  assert.deepEqual(whole, decodeAll(stream));
  for (let cut = 1; cut < stream.length; cut += 7) {
    assert.deepEqual(drive(new Decoder(), [stream.subarray(0, cut), stream.subarray(cut)]), whole, `cut at ${cut}`);
  }
});

test('the Decoder never answers by itself; login and data in one chunk wait for accept', () => {
  const d = new Decoder();
  const first = d.push(Buffer.concat([loginFrame(IMEI), frame('T1')]));
  assert.deepEqual(first.map((p) => [p.kind, p.imei, p.ack]), [['imei', IMEI, '01']]);
  assert.equal(d.imei, IMEI);
  assert.equal(d.buffered, 66);
  assert.equal(hex(d.accept(true)), '01');
  const later = d.take();
  assert.deepEqual(later.map((p) => [p.kind, p.offset, p.ack]), [['avl', 17, '00000001']]);
  assert.equal(hex(d.ack(later[0].records.length)), '00000001');
  assert.equal(hex(d.ack(0)), '00000000');
  assert.equal(d.offset, 83);
});

test('a rejected login closes the stream', () => {
  const d = new Decoder();
  d.push(loginFrame(IMEI));
  assert.equal(hex(d.accept(false)), '00');
  assert.equal(d.closed, true);
  assert.throws(() => d.push(frame('T1')), (e) => e.kind === 'unexpected_data' && e.offset === 17);
});

test('a frame with a bad CRC is skipped as "invalid" and the stream goes on', () => {
  const bad = frame('T1');
  bad[bad.length - 1] ^= 0xff;
  const d = new Decoder();
  const got = drive(d, [Buffer.concat([loginFrame(IMEI), bad, frame('T2')])]);
  assert.deepEqual(got.map((p) => p.kind), ['imei', 'invalid', 'avl']);
  const invalid = got[1];
  assert.equal(invalid.offset, 17);
  assert.equal(invalid.ack, null);
  assert.equal(invalid.error.kind, 'crc_mismatch');
  assert.equal(invalid.error.offset, 17 + 62);
  assert.equal(got[2].offset, 17 + 66);
  assert.equal(d.closed, false);
});

test('garbage it cannot resynchronise from throws with the stream offset and the packets before it', () => {
  const d = new Decoder();
  d.push(loginFrame(IMEI));
  d.accept(true);
  let error;
  assert.throws(() => d.push(Buffer.concat([frame('T2'), Buffer.from('GET / HTTP/1.1\r\n\r\n')])), (e) => {
    error = e;
    return e.kind === 'bad_preamble' && e.offset === 17 + 52;
  });
  assert.deepEqual(error.packets.map((p) => p.kind), ['avl']);
  assert.equal(d.closed, true);
});

test('a login with a non-digit IMEI is an error at its byte', () => {
  const login = loginFrame(IMEI);
  login[5] = 0x41;
  assert.throws(() => new Decoder().push(login), (e) => e.kind === 'invalid_imei_digit' && e.offset === 5);
});

test('maxFrameLen bounds what a device can make the server buffer', () => {
  const d = new Decoder({ maxFrameLen: 100 });
  d.push(loginFrame(IMEI));
  d.accept(true);
  const huge = Buffer.from('00000000000fffff08', 'hex');
  assert.throws(() => d.push(huge), (e) => e.kind === 'frame_too_large' && e.offset === 17 + 4);
});

test('commands: Codec 12, and Codec 14 addressed to the logged-in IMEI', () => {
  const d = new Decoder();
  d.push(loginFrame('352093081452251'));
  d.accept(true);
  assert.equal(hex(d.command('getinfo')), hex(encodeCommand('getinfo')));
  assert.equal(hex(d.command('getver', { codec: 14 })), vectors.find((v) => v.name === 'T9').hex.toLowerCase());
  const [response] = d.push(frame('T10'));
  assert.equal(response.kind, 'command');
  assert.equal(response.ack, null);
  assert.match(response.messages[0].text, /IMEI:352093081452251/);
});

test('options: lenient and model apply to the stream', () => {
  const d = new Decoder({ lenient: true, model: 'FMB920' });
  d.push(loginFrame(IMEI));
  d.accept(true);
  const [nack] = d.push(frame('T11'));
  assert.equal(nack.kind, 'command');
  assert.deepEqual(nack.warnings.map((w) => w.kind), ['crc_mismatch']);
  assert.throws(() => new Decoder({ maxFrameLen: -1 }), (e) => e.kind === 'invalid_option' && e.field === 'maxFrameLen');
  assert.throws(() => new Decoder().push('00'), (e) => e.kind === 'invalid_input');
});
