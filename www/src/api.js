// The public API of the `fleetview` npm package, on top of the wasm-bindgen glue of core's
// `wasm` feature (core/src/wasm.rs). The same code serves every entry point (Node `require` and
// `import`, bundlers, browsers): scripts/build.mjs wraps it for each. It holds no protocol
// logic: decoding, encoding and the JSON model are core's; this file turns the flat "tape" that
// core writes (layout documented on `Tape` in core/src/wasm.rs) into plain objects, which is
// several times faster than building them across the wasm boundary property by property.

/** @param {any} glue the wasm-bindgen module, instantiated */
export function createApi(glue) {
  // Item tags and flags: keep in step with core/src/wasm.rs.
  const ITEM_PACKET = 0;
  const ITEM_INVALID = 1;
  const IO_RAW = 1, IO_RAW_BIG = 2, IO_HEX = 4, IO_NAME = 8, IO_UNIT = 128;
  const P_CODEC = 1, P_IMEI = 2, P_CRC = 4, P_UDP = 8, P_RECORDS = 16, P_MESSAGES = 32, P_ACK = 64;

  // Static strings (IO names, units, kinds), by the slot core assigns them: core sends a text
  // only when the slot does not hold it already, and every packet shares the same string.
  // Filled up front: slots are set in any order, which would turn a growing array into a slow
  // dictionary. 1024 = SENT_SLOTS in core.
  const statics = new Array(1024).fill('');
  const core = new glue.Api();
  const memory = core.memory();
  const utf8 = new TextDecoder();

  // Reader state over one tape. Module-level variables keep the hot loop free of allocations.
  let t, i, s, sp, x, xp;

  function stat() {
    const slot = t[i], len = t[i + 1];
    i += 2;
    if (len === -1) return statics[slot];
    // A flat copy: a slice would keep this call's whole string alive in the cache.
    const v = s.slice(sp, sp + len).split('').join('');
    sp += len;
    statics[slot] = v;
    return v;
  }

  // Views over the whole wasm memory, made again only when the memory grows (which detaches
  // them): a view per call cost as much as decoding a small packet.
  let f64 = new Float64Array(memory.buffer);
  let u64 = new BigUint64Array(memory.buffer);
  let u8 = new Uint8Array(memory.buffer);

  /** The UTF-8 text at `ptr`, `len` bytes, in the wasm memory. */
  function str(ptr, len, ascii) {
    if (len === 0) return '';
    if (ascii && len <= 64) {
      // Short ASCII text (the common case: acks, IMEIs) is built faster than by TextDecoder.
      let v = '';
      for (let k = ptr; k < ptr + len; k++) v += String.fromCharCode(u8[k]);
      return v;
    }
    return utf8.decode(u8.subarray(ptr, ptr + len));
  }

  function text() {
    const len = t[i++];
    const v = x.slice(xp, xp + len);
    xp += len;
    return v;
  }

  function nullableText() {
    if (t[i] === -1) {
      i++;
      return null;
    }
    return text();
  }

  /** A u64 whose bits core stored in a tape slot. */
  function big() {
    return u64[i++];
  }

  /** A number from the tape, as a small integer when it is one (no heap number in objects). */
  function num(v) {
    return v === (v | 0) ? v | 0 : v;
  }

  function ioElement() {
    const id = t[i] | 0, size = t[i + 1] | 0, f = t[i + 2] | 0;
    i += 3;
    let raw, hex, name, value, unit;
    if (f & IO_RAW) raw = f & IO_RAW_BIG ? big() : num(t[i++]);
    if (f & IO_HEX) hex = text();
    if (f & IO_NAME) name = stat();
    switch ((f >> 4) & 7) {
      case 1: value = num(t[i++]); break;
      case 2: value = big(); break;
      case 3: value = BigInt.asIntN(64, big()); break;
      case 4: value = text(); break;
    }
    if (f & IO_UNIT) unit = stat();
    // Object literals, one per shape: adding properties one by one cost several times more.
    // The catalogue gives a name and a value together, and a unit only with them.
    if (f & IO_RAW) {
      if (!(f & IO_NAME)) return { id, size, raw };
      if (!(f & IO_UNIT)) return { id, size, raw, name, value };
      return { id, size, raw, name, value, unit };
    }
    if (!(f & IO_NAME)) return { id, size, hex };
    if (!(f & IO_UNIT)) return { id, size, hex, name, value };
    return { id, size, hex, name, value, unit };
  }

  // `new Date(ms).toISOString()`, which core leaves to JS for years up to 9999, was the single
  // largest cost of small packets: the date part is cached per day (records of a batch share
  // it) and the time of day is assembled from two-digit strings.
  const pad2 = Array.from({ length: 100 }, (_, k) => String(k).padStart(2, '0'));
  const pad3 = Array.from({ length: 1000 }, (_, k) => String(k).padStart(3, '0'));
  let cachedDay = -1, cachedDate = '';

  function isoTime(ms) {
    const day = Math.floor(ms / 86400000);
    if (day !== cachedDay) {
      cachedDay = day;
      cachedDate = new Date(day * 86400000).toISOString().slice(0, 11);
    }
    let rest = ms - day * 86400000;
    const milli = rest % 1000;
    rest = (rest - milli) / 1000;
    const sec = rest % 60;
    rest = (rest - sec) / 60;
    const min = rest % 60;
    return cachedDate + pad2[(rest - min) / 60] + ':' + pad2[min] + ':' + pad2[sec] + '.' + pad3[milli] + 'Z';
  }

  function record() {
    const timestamp_ms = t[i++];
    let time;
    if (t[i] === -1) {
      i++;
      time = isoTime(timestamp_ms);
    } else {
      time = text();
    }
    const r = {
      timestamp_ms,
      time,
      priority: t[i] | 0,
      longitude: t[i + 1],
      latitude: t[i + 2],
      altitude: t[i + 3] | 0,
      angle: t[i + 4] | 0,
      satellites: t[i + 5] | 0,
      speed: t[i + 6] | 0,
      valid: t[i + 7] === 1,
      event_id: t[i + 8] | 0,
      generation_type: t[i + 9] === -1 ? null : t[i + 9] | 0,
      io: null,
    };
    const n = t[i + 10] | 0;
    i += 11;
    const io = new Array(n);
    for (let k = 0; k < n; k++) io[k] = ioElement();
    r.io = io;
    return r;
  }

  function message() {
    const type = t[i++] | 0;
    const msg = { type, text: nullableText(), payload_hex: text(), timestamp_s: null, imei: null };
    msg.timestamp_s = t[i] === -1 ? null : t[i];
    i++;
    msg.imei = nullableText();
    return msg;
  }

  // Keys in the order of the JSON model (core's PacketJson), optional ones only when present.
  function packet() {
    const p = { kind: stat(), transport: stat() };
    const f = t[i++] | 0;
    if (f & P_CODEC) {
      p.codec = stat();
      p.codec_id = t[i++] | 0;
    }
    if (f & P_IMEI) p.imei = text();
    if (f & P_CRC) {
      p.crc = { received: num(t[i]), computed: t[i + 1] | 0, ok: t[i + 2] === 1 };
      i += 3;
    }
    if (f & P_UDP) {
      p.udp = { length: t[i] | 0, packet_id: t[i + 1] | 0, packet_type: t[i + 2] | 0, avl_packet_id: t[i + 3] | 0 };
      i += 4;
    }
    if (f & P_RECORDS) {
      const n = t[i++];
      const records = new Array(n);
      for (let k = 0; k < n; k++) records[k] = record();
      p.records = records;
    }
    if (f & P_MESSAGES) {
      const n = t[i++];
      const messages = new Array(n);
      for (let k = 0; k < n; k++) messages[k] = message();
      p.messages = messages;
    }
    p.ack = f & P_ACK ? text() : null;
    const nw = t[i++];
    const warnings = new Array(nw);
    for (let k = 0; k < nw; k++) warnings[k] = { kind: stat(), offset: num(t[i++]), message: text() };
    p.warnings = warnings;
    p.offset = num(t[i++]);
    p.length = num(t[i++]);
    return p;
  }

  function errorInfo() {
    return { kind: stat(), offset: num(t[i++]), field: stat(), message: text() };
  }

  /** Read the tape core wrote at `where` (address + length × 2^32): the packets, and the error that ended it (thrown, carrying them). */
  function read(where) {
    // Growing the memory detaches the views (their length drops to 0).
    if (f64.length === 0) {
      f64 = new Float64Array(memory.buffer);
      u64 = new BigUint64Array(memory.buffer);
      u8 = new Uint8Array(memory.buffer);
    }
    const len = Math.floor(where / 4294967296);
    const start = (where - len * 4294967296) / 8;
    const end = start + len;
    t = f64;
    const ascii = t[start + 4] === 1;
    s = str(t[start], t[start + 1], ascii);
    x = str(t[start + 2], t[start + 3], ascii);
    i = start + 5;
    sp = xp = 0;
    const out = [];
    while (i < end) {
      const tag = t[i++];
      if (tag === ITEM_PACKET) {
        out.push(packet());
        continue;
      }
      const frameOffset = t[i++];
      const error = errorInfo();
      if (tag === ITEM_INVALID) {
        out.push({ kind: 'invalid', transport: 'tcp', offset: frameOffset, ack: null, warnings: [], error });
        continue;
      }
      throw fleetviewError(error, out);
    }
    return out;
  }

  function fleetviewError(info, packets) {
    const e = new Error(info.message);
    e.kind = info.kind;
    e.offset = info.offset;
    e.field = info.field;
    e.packets = packets;
    return e;
  }

  function usageError(kind, field, message) {
    const e = new Error(message);
    e.kind = kind;
    e.field = field;
    return e;
  }

  function stringArg(v, name) {
    if (typeof v !== 'string') throw usageError('invalid_input', name, `Invalid ${name}: expected a string`);
    return v;
  }

  function bytesOf(input, hexOk) {
    if (input instanceof Uint8Array) return input;
    if (input instanceof ArrayBuffer) return new Uint8Array(input);
    if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    if (hexOk && typeof input === 'string') return glue.hexBytes(input);
    const expected = hexOk ? 'a Uint8Array, an ArrayBuffer or a hex string' : 'a Uint8Array or an ArrayBuffer';
    throw usageError('invalid_input', 'input', `Invalid input: expected ${expected}`);
  }

  function decodeTape(input, all, options) {
    return typeof input === 'string' ? core.decodeHex(input, all, options) : core.decode(bytesOf(input, true), all, options);
  }

  function decode(input, options) {
    return read(decodeTape(input, false, options))[0];
  }

  function decodeAll(input, options) {
    return read(decodeTape(input, true, options));
  }

  function decodeJson(input, options) {
    return glue.decodeJson(bytesOf(input, true), false, options);
  }

  class Decoder {
    #core;

    constructor(options) {
      this.#core = new glue.DecoderCore(options);
    }

    push(chunk) {
      return read(this.#core.push(core, bytesOf(chunk, false)));
    }

    take() {
      return read(this.#core.take(core));
    }

    accept(accept = true) {
      return this.#core.accept(Boolean(accept));
    }

    ack(n) {
      return this.#core.ack(n);
    }

    command(command, options) {
      return this.#core.command(command, options);
    }

    get imei() {
      return this.#core.imei ?? null;
    }

    get closed() {
      return this.#core.closed;
    }

    get buffered() {
      return this.#core.buffered;
    }

    get offset() {
      return this.#core.offset;
    }

    free() {
      this.#core.free();
    }
  }

  return {
    decode,
    decodeAll,
    decodeJson,
    Decoder,
    encodeCommand: (command, options) => glue.encodeCommand(command, options),
    loginFrame: (imei) => glue.loginFrame(stringArg(imei, 'imei')),
    tcpAck: (n) => glue.tcpAck(n),
    udpAck: (packetId, avlPacketId, n) => glue.udpAck(packetId, avlPacketId, n),
    ioInfo: (id, model) => glue.ioInfo(id, model == null ? undefined : stringArg(model, 'model')),
    models: () => glue.models(),
  };
}
