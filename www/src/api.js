// The public API of the `fleetview` npm package, on top of the wasm-bindgen glue of core's
// `wasm` feature (core/src/wasm.rs). The same code serves every entry point (Node `require` and
// `import`, bundlers, browsers): scripts/build.mjs wraps it for each. It holds no protocol
// logic: decoding, encoding and the JSON model are core's; this file turns the flat "tape" that
// core writes (layout documented on `Tape` in core/src/wasm.rs) into plain objects, which is
// several times faster than building them across the wasm boundary property by property.

/** @param {any} glue the wasm-bindgen module, instantiated */
export function createApi(glue) {
  // The tape's tags, flags and sizes, from core (`tapeLayout` in core/src/wasm.rs): one
  // definition, on the Rust side.
  const {
    ITEM_PACKET, ITEM_INVALID, IO_HEX, IO_RAW_BIG, IO_VALUE_SHIFT, IO_DECODED, V_NUMBER, V_BIG, V_SIGNED_BIG,
    V_TEXT, P_CODEC, P_IMEI, P_CRC, P_UDP, P_RECORDS, P_MESSAGES, P_ACK, DEF_STRING,
    RECORD_SLOTS, JS_ISO_MAX_MS, HEADER, NULL,
  } = glue.tapeLayout();
  // The two packet shapes of every data frame: TCP, and UDP (which carries the IMEI).
  const TCP_AVL = P_CODEC | P_CRC | P_RECORDS | P_ACK;
  const UDP_AVL = P_CODEC | P_IMEI | P_UDP | P_RECORDS | P_ACK;
  // Up to 9999-12-31T23:59:59.999Z, `toISOString` writes what core writes.
  const ISO_MAX = JS_ISO_MAX_MS;

  // What core sends once and then refers to by index (the `defs` of a tape): static strings
  // (kinds, codec names, IO names, units), and IO descriptors, the catalogue name and unit of an
  // IO id on a model. Indices count up, so the arrays stay packed.
  const strings = [];
  const descName = [''];
  const descUnit = [undefined];
  const core = new glue.Api();
  const memory = core.memory();
  const utf8 = new TextDecoder();

  // Reader state over one tape. Module-level variables keep the hot loop free of allocations.
  let t, i, x, xp;

  // Views over the whole wasm memory, made again only when the memory grows (which detaches
  // them): a view per call cost as much as decoding a small packet.
  let f64 = new Float64Array(memory.buffer);
  let u64 = new BigUint64Array(memory.buffer);
  let u8 = new Uint8Array(memory.buffer);

  function views() {
    if (u8.length === 0) {
      f64 = new Float64Array(memory.buffer);
      u64 = new BigUint64Array(memory.buffer);
      u8 = new Uint8Array(memory.buffer);
    }
  }

  /** The UTF-8 text at `ptr`, `len` bytes, in the wasm memory. */
  function str(ptr, len, ascii) {
    if (len === 0) return '';
    if (ascii && len <= 12) {
      // Short ASCII text (acks) is built faster than by TextDecoder, which wins from 13 characters on.
      let v = '';
      for (let k = ptr; k < ptr + len; k++) v += String.fromCharCode(u8[k]);
      return v;
    }
    return utf8.decode(u8.subarray(ptr, ptr + len));
  }

  /** Add a tape's definitions (`defs`, `n` slots from slot `k`) to the caches. */
  function define(k, n, s) {
    let sp = 0;
    for (const end = k + n; k < end; ) {
      if (t[k] === DEF_STRING) {
        const len = t[k + 1];
        // A flat copy: a slice would keep this call's whole string alive in the cache.
        strings.push(s.slice(sp, sp + len).split('').join(''));
        sp += len;
        k += 2;
      } else {
        descName.push(strings[t[k + 1]]);
        descUnit.push(t[k + 2] === NULL ? undefined : strings[t[k + 2]]);
        k += 3;
      }
    }
  }

  function text() {
    const len = t[i++];
    const v = x.slice(xp, xp + len);
    xp += len;
    return v;
  }

  function nullableText() {
    if (t[i] === NULL) {
      i++;
      return null;
    }
    return text();
  }

  /** A number from the tape, as a small integer when it is one (no heap number in objects). */
  function num(v) {
    return v === (v | 0) ? v | 0 : v;
  }

  /** An IO element's value after its raw or hex (kind: 3 bits of its flags). */
  function ioValue(b, raw) {
    switch ((b >>> IO_VALUE_SHIFT) & 7) {
      case V_NUMBER: return num(t[i++]);
      case V_BIG: return u64[i++];
      case V_SIGNED_BIG: return BigInt.asIntN(64, u64[i++]);
      case V_TEXT: return text();
      default: return raw;
    }
  }

  function ioElement() {
    const a = t[i], b = t[i + 1];
    const id = a & 0xffff, size = a >>> 16, d = b >>> 8;
    i += 2;
    // Object literals, one per shape: adding properties one by one cost several times more.
    // A descriptor gives a name and a value together, and maybe a unit.
    if ((b & IO_HEX) === 0) {
      const raw = b & IO_RAW_BIG ? u64[i++] : num(t[i++]);
      if (d === 0) return { id, size, raw };
      const name = descName[d], value = ioValue(b, raw), unit = descUnit[d];
      if (unit === undefined) return { id, size, raw, name, value };
      return { id, size, raw, name, value, unit };
    }
    const hex = text();
    let e;
    if (d === 0) e = { id, size, hex };
    else {
      const name = descName[d], value = ioValue(b, undefined), unit = descUnit[d];
      e = unit === undefined ? { id, size, hex, name, value } : { id, size, hex, name, value, unit };
    }
    // Composite values (beacons, sensors, VIN, fault codes): core's serde text of `decoded`.
    if (b & IO_DECODED) e.decoded = JSON.parse(text());
    return e;
  }

  /** A nullable number of the tape. */
  const orNull = (v) => (v === NULL ? null : v);

  /** The serving cell after a record's IO elements, or undefined. */
  function network() {
    if (t[i++] !== 1) return undefined;
    const n = {
      mcc: orNull(t[i]), mnc: orNull(t[i + 1]), mnc_digits: orNull(t[i + 2]),
      lac: orNull(t[i + 3]), cell_id: orNull(t[i + 4]), signal: orNull(t[i + 5]),
    };
    i += 6;
    return n;
  }

  // `new Date(ms).toISOString()`, which core leaves to JS for years up to 9999, was the single
  // largest cost of small packets: the date part is cached per day (8 days, direct-mapped: a
  // server's records come from the last few days, whatever the device) and the time of day is
  // put together from three precomputed pieces.
  const pad = (n, w) => String(n).padStart(w, '0');
  const hh = Array.from({ length: 24 }, (_, k) => pad(k, 2) + ':');
  const mmss = Array.from({ length: 3600 }, (_, k) => pad(Math.floor(k / 60), 2) + ':' + pad(k % 60, 2) + '.');
  const msz = Array.from({ length: 1000 }, (_, k) => pad(k, 3) + 'Z');
  const days = [-1, -1, -1, -1, -1, -1, -1, -1];
  const dates = ['', '', '', '', '', '', '', ''];

  function isoTime(ms) {
    const day = Math.floor(ms / 86400000);
    const slot = day & 7;
    if (days[slot] !== day) {
      days[slot] = day;
      dates[slot] = new Date(day * 86400000).toISOString().slice(0, 11);
    }
    const rest = ms - day * 86400000;
    const milli = rest % 1000;
    const sec = (rest - milli) / 1000;
    const s3600 = sec % 3600;
    return dates[slot] + hh[(sec - s3600) / 3600] + mmss[s3600] + msz[milli];
  }

  function record() {
    const timestamp_ms = t[i++];
    const time = timestamp_ms <= ISO_MAX ? isoTime(timestamp_ms) : text();
    const j = i, n = t[j + RECORD_SLOTS - 1];
    i += RECORD_SLOTS;
    const io = new Array(n);
    for (let k = 0; k < n; k++) io[k] = ioElement();
    const net = network();
    const r = {
      timestamp_ms,
      time,
      priority: t[j] | 0,
      longitude: t[j + 1],
      latitude: t[j + 2],
      altitude: t[j + 3] | 0,
      angle: t[j + 4] | 0,
      satellites: t[j + 5] | 0,
      speed: t[j + 6] | 0,
      valid: t[j + 7] === 1,
      event_id: t[j + 8] | 0,
      generation_type: t[j + 9] === NULL ? null : t[j + 9] | 0,
      io,
    };
    if (net !== undefined) r.network = net;
    return r;
  }

  function records() {
    const n = t[i++];
    const out = new Array(n);
    for (let k = 0; k < n; k++) out[k] = record();
    return out;
  }

  function message() {
    const type = t[i++] | 0;
    const text_ = nullableText(), payload_hex = text();
    const timestamp_s = t[i] === NULL ? null : t[i];
    i++;
    return { type, text: text_, payload_hex, timestamp_s, imei: nullableText() };
  }

  function warnings() {
    const n = t[i++];
    const out = new Array(n);
    for (let k = 0; k < n; k++) out[k] = { kind: strings[t[i++]], offset: num(t[i++]), message: text() };
    return out;
  }

  function crc() {
    const c = { received: num(t[i]), computed: t[i + 1] | 0, ok: t[i + 2] === 1 };
    i += 3;
    return c;
  }

  function udp() {
    const u = { length: t[i] | 0, packet_id: t[i + 1] | 0, packet_type: t[i + 2] | 0, avl_packet_id: t[i + 3] | 0 };
    i += 4;
    return u;
  }

  // Keys in the order of the JSON model (core's PacketJson), optional ones only when present.
  function packet() {
    const kind = strings[t[i]], transport = strings[t[i + 1]], f = t[i + 2];
    i += 3;
    // Data frames, nearly all traffic, as one literal each.
    if (f === TCP_AVL) {
      const codec = strings[t[i]], codec_id = t[i + 1] | 0;
      i += 2;
      const c = crc(), r = records(), ack = text(), w = warnings();
      const offset = num(t[i]), length = num(t[i + 1]);
      i += 2;
      return { kind, transport, codec, codec_id, crc: c, records: r, ack, warnings: w, offset, length };
    }
    if (f === UDP_AVL) {
      const codec = strings[t[i]], codec_id = t[i + 1] | 0;
      i += 2;
      const imei = text(), u = udp(), r = records(), ack = text(), w = warnings();
      const offset = num(t[i]), length = num(t[i + 1]);
      i += 2;
      return { kind, transport, codec, codec_id, imei, udp: u, records: r, ack, warnings: w, offset, length };
    }
    const p = { kind, transport };
    if (f & P_CODEC) {
      p.codec = strings[t[i++]];
      p.codec_id = t[i++] | 0;
    }
    if (f & P_IMEI) p.imei = text();
    if (f & P_CRC) p.crc = crc();
    if (f & P_UDP) p.udp = udp();
    if (f & P_RECORDS) p.records = records();
    if (f & P_MESSAGES) {
      const n = t[i++];
      const messages = new Array(n);
      for (let k = 0; k < n; k++) messages[k] = message();
      p.messages = messages;
    }
    p.ack = f & P_ACK ? text() : null;
    p.warnings = warnings();
    p.offset = num(t[i++]);
    p.length = num(t[i++]);
    return p;
  }

  function errorInfo() {
    return { kind: strings[t[i++]], offset: num(t[i++]), field: strings[t[i++]], message: text() };
  }

  /** Read the tape core wrote at `where` (address + length × 2^32): the packets, and the error that ended it (thrown, carrying them). */
  function read(where) {
    views();
    const len = Math.floor(where / 4294967296);
    const start = (where - len * 4294967296) / 8;
    const end = start + len;
    t = f64;
    const ascii = t[start + 4];
    if (t[start + 6] > 0) define(t[start + 5] / 8, t[start + 6], str(t[start], t[start + 1], ascii & 1));
    x = str(t[start + 2], t[start + 3], ascii & 2);
    i = start + HEADER;
    xp = 0;
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

  // Options cross into core only when they change: reading a JS object from wasm costs a
  // boundary crossing per property, more than decoding a small packet. The four values are
  // compared, not the object, so an options object changed in place is noticed.
  let optionsSet = 0; // 0: core has the defaults; 1: the object options below; 2: unknown
  let oLenient, oModel, oMax, oNames;

  function useOptions(o) {
    if (o === undefined || o === null) {
      if (optionsSet !== 0) {
        optionsSet = 2;
        core.setOptions(undefined);
        optionsSet = 0;
      }
      return;
    }
    if (typeof o === 'object' && optionsSet === 1 && o.lenient === oLenient && o.model === oModel && o.maxFrameLen === oMax && o.names === oNames) return;
    optionsSet = 2;
    core.setOptions(o); // checks them, throws `invalid_option`
    oLenient = o.lenient;
    oModel = o.model;
    oMax = o.maxFrameLen;
    oNames = o.names;
    optionsSet = 1;
  }

  // The input buffer in the wasm memory, where bytes are copied for core (no allocation per call).
  let inPtr = 0, inCap = -1;

  /** Copy `bytes` into the input buffer; returns their length. */
  function load(bytes) {
    const n = bytes.length;
    if (n > inCap) {
      inPtr = core.reserve(n);
      inCap = n;
    }
    views();
    u8.set(bytes, inPtr);
    return n;
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
    if (typeof input === 'string') {
      useOptions(options);
      return core.decodeHex(input, all);
    }
    const bytes = bytesOf(input, true);
    useOptions(options);
    return core.decodeInput(load(bytes), all);
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
      return read(this.#core.pushInput(core, load(bytesOf(chunk, false))));
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
