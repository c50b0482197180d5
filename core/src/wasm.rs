//! wasm-bindgen exports for the npm package `fleetview` (www/). Feature `wasm`.
//!
//! A thin shell: every byte is decoded by the rest of this crate and every packet is rendered
//! by the [`crate::json`] model. These exports are the package's *internal* layer; the public
//! JavaScript API (`decode`, `decodeAll`, `Decoder`, …, with its TypeScript types) is
//! `www/src/api.js`, which calls them.
//!
//! Why a "tape" instead of handing objects over with serde-wasm-bindgen: building a JS object
//! from wasm costs one boundary call per property, and a JSON string costs number formatting
//! here plus `JSON.parse` there. Both were slower than the pure-JS decoder the package is
//! benchmarked against. So the decoders here walk the packets as the [`PacketJson`] model
//! renders them and write a flat list of numbers plus two strings: one with the `'static`
//! strings (IO names, units, kinds), which JS keeps in an array and so reads once per process,
//! and one with the text that changes per packet. IO catalogue entries cross as one number, an
//! index of JS's (name, unit) cache. `www/src/api.js` turns that into plain objects with one
//! JIT-compiled loop. The layout is below ([`Tape`]); `www/test` checks that the objects equal
//! `JSON.parse(decodeJson(...))`, the serde rendering of the same model.
//!
//! Options and input bytes avoid the boundary too: JS sets options only when they change
//! ([`Api::set_options`]) and copies input into a buffer that lives in the wasm memory
//! ([`Api::reserve`]).
//!
//! Errors about the arguments are thrown from here as JS `Error`s with `kind`, `offset` and
//! `field`; decoding errors travel on the tape so that the packets decoded before them survive.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use js_sys::{Array, Object, Reflect, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::avl::{AvlRecord, IoElement, IoValue};
use crate::codec::Codec;
use crate::command::CommandPacket;
use crate::data::Content;
use crate::error::{DecodeError, EncodeError, ErrorKind};
use crate::hex::HexError;
use crate::io_catalog::{self, IoInfo, IoType, IoValueView};
use crate::json::{DecodedJson, JsonOptions, MessageJson, NetworkJson, PacketJson};
use crate::packet::{Packet, Transport};
use crate::session::{Event, Session};
use crate::{DecodeOptions, Imei};

/// A JS `Error` with `kind`, `offset` (when the error is about input bytes) and `field`.
fn js_error(kind: &str, offset: Option<usize>, field: &str, message: &str) -> JsValue {
    let e = js_sys::Error::new(message);
    // Setting a property on a fresh Error object cannot fail.
    let _ = Reflect::set(&e, &"kind".into(), &kind.into());
    if let Some(offset) = offset {
        let _ = Reflect::set(&e, &"offset".into(), &(offset as f64).into());
    }
    let _ = Reflect::set(&e, &"field".into(), &field.into());
    e.into()
}

fn decode_error(e: &DecodeError) -> JsValue {
    js_error(e.code(), Some(e.offset), e.field_name(), &e.to_string())
}

fn encode_error(e: &EncodeError) -> JsValue {
    let (kind, field) = match e {
        EncodeError::OutOfRange { field, .. } => ("out_of_range", *field),
        EncodeError::NotSupported { .. } => ("not_supported", ""),
        EncodeError::InvalidImei => ("invalid_imei", "imei"),
    };
    js_error(kind, None, field, &e.to_string())
}

fn option_error(field: &str, why: &str) -> JsValue {
    js_error(
        "invalid_option",
        None,
        field,
        &alloc::format!("Invalid option {field}: {why}"),
    )
}

/// Decoding settings and the model for naming IO values, from a JS options object.
struct Options {
    decode: DecodeOptions,
    json: JsonOptions,
    /// `names: false`: IO elements without the catalogue's name, value and unit.
    names: bool,
}

fn get(obj: &JsValue, key: &str) -> JsValue {
    Reflect::get(obj, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

fn parse_options(options: &JsValue) -> Result<Options, JsValue> {
    let mut decode = DecodeOptions::default();
    let mut json = JsonOptions::default();
    let mut names = true;
    if options.is_undefined() || options.is_null() {
        return Ok(Options {
            decode,
            json,
            names,
        });
    }
    if !options.is_object() {
        return Err(option_error("options", "expected an object"));
    }
    let lenient = get(options, "lenient");
    if !lenient.is_undefined() {
        decode.lenient = lenient
            .as_bool()
            .ok_or_else(|| option_error("lenient", "expected a boolean"))?;
    }
    let model = get(options, "model");
    if !model.is_undefined() && !model.is_null() {
        json.model = Some(
            model
                .as_string()
                .ok_or_else(|| option_error("model", "expected a string such as \"FMB920\""))?,
        );
    }
    let max = get(options, "maxFrameLen");
    if !max.is_undefined() {
        decode.max_frame_len = max
            .as_f64()
            .filter(|n| n.fract() == 0.0 && *n >= 1.0 && *n <= 16_777_216.0)
            .ok_or_else(|| option_error("maxFrameLen", "expected an integer from 1 to 16777216"))?
            as usize;
    }
    let n = get(options, "names");
    if !n.is_undefined() {
        names = n
            .as_bool()
            .ok_or_else(|| option_error("names", "expected a boolean"))?;
    }
    Ok(Options {
        decode,
        json,
        names,
    })
}

/// A whole number in `0..=max`, or an `out_of_range` error naming the argument.
fn int_arg(v: f64, name: &str, max: u64) -> Result<u64, JsValue> {
    if v.fract() == 0.0 && v >= 0.0 && v <= max as f64 {
        Ok(v as u64)
    } else {
        Err(js_error(
            "out_of_range",
            None,
            name,
            &alloc::format!("{name} must be a whole number from 0 to {max}, got {v}"),
        ))
    }
}

/// Largest integer a JS number holds exactly; the JSON model turns larger ones into BigInt.
const SAFE: u64 = 1 << 53;

/// Up to 9999-12-31T23:59:59.999Z, `Date.prototype.toISOString` gives exactly what
/// [`crate::time::iso8601`] gives (beyond, JS writes years with a sign and six digits).
const JS_ISO_MAX_MS: u64 = 253_402_300_799_999;

/// Item tags: what follows on the tape.
const ITEM_PACKET: f64 = 0.0;
const ITEM_INVALID: f64 = 1.0;
const ITEM_ERROR: f64 = 2.0;

/// IO element flags: the low byte of an element's second slot (its descriptor is above them).
const IO_HEX: u32 = 1;
const IO_RAW_BIG: u32 = 2;
const IO_VALUE_SHIFT: u32 = 2;
/// A composite value: its `decoded` follows the value, as JSON text.
const IO_DECODED: u32 = 32;
/// Value kinds (3 bits at `IO_VALUE_SHIFT`): none (no catalogue entry), a number, a u64's bits
/// (BigInt), an i64's bits (signed BigInt), a text, or the same as `raw` (the common case:
/// unscaled unsigned values, sent once and shared on the JS side, BigInts included).
const V_NUMBER: u32 = 1;
const V_BIG: u32 = 2;
const V_SIGNED_BIG: u32 = 3;
const V_TEXT: u32 = 4;
const V_RAW: u32 = 5;

/// Packet flags: which optional members are present.
const P_CODEC: u32 = 1;
const P_IMEI: u32 = 2;
const P_CRC: u32 = 4;
const P_UDP: u32 = 8;
const P_RECORDS: u32 = 16;
const P_MESSAGES: u32 = 32;
const P_ACK: u32 = 64;

/// Definition tags in the tape's `defs` list.
const DEF_STRING: f64 = 0.0;
const DEF_DESC: f64 = 1.0;

/// Slots of a record after its timestamp (and time text): priority, longitude, latitude,
/// altitude, angle, satellites, speed, valid, event id, generation type, IO count.
const RECORD_SLOTS: usize = 11;

/// The tape's tags, flags and sizes, for `www/src/api.js`: the JS reader takes them from here
/// instead of keeping its own copy, so the two sides cannot drift apart.
#[wasm_bindgen(js_name = tapeLayout)]
pub fn tape_layout() -> JsValue {
    let o = Object::new();
    let constants: [(&str, f64); 25] = [
        ("ITEM_PACKET", ITEM_PACKET),
        ("ITEM_INVALID", ITEM_INVALID),
        ("ITEM_ERROR", ITEM_ERROR),
        ("IO_HEX", f64::from(IO_HEX)),
        ("IO_RAW_BIG", f64::from(IO_RAW_BIG)),
        ("IO_VALUE_SHIFT", f64::from(IO_VALUE_SHIFT)),
        ("IO_DECODED", f64::from(IO_DECODED)),
        ("V_NUMBER", f64::from(V_NUMBER)),
        ("V_BIG", f64::from(V_BIG)),
        ("V_SIGNED_BIG", f64::from(V_SIGNED_BIG)),
        ("V_TEXT", f64::from(V_TEXT)),
        ("V_RAW", f64::from(V_RAW)),
        ("P_CODEC", f64::from(P_CODEC)),
        ("P_IMEI", f64::from(P_IMEI)),
        ("P_CRC", f64::from(P_CRC)),
        ("P_UDP", f64::from(P_UDP)),
        ("P_RECORDS", f64::from(P_RECORDS)),
        ("P_MESSAGES", f64::from(P_MESSAGES)),
        ("P_ACK", f64::from(P_ACK)),
        ("DEF_STRING", DEF_STRING),
        ("DEF_DESC", DEF_DESC),
        ("RECORD_SLOTS", RECORD_SLOTS as f64),
        ("JS_ISO_MAX_MS", JS_ISO_MAX_MS as f64),
        ("HEADER", HEADER as f64),
        ("NULL", -1.0),
    ];
    for (name, value) in constants {
        let _ = Reflect::set(&o, &name.into(), &value.into());
    }
    o.into()
}

/// Packets flattened for `www/src/api.js`; both sides must agree on this layout:
///
/// - Header (7 slots): address and byte length of `statics`, of `texts`, bit 0 set if `statics`
///   is ASCII and bit 1 if `texts` is, address and slot count of `defs`.
/// - `defs`: what JS must add to its caches before reading the items, in order: a static string
///   (`DEF_STRING`, its length in UTF-16 units; its text is next in `statics`; JS appends it to
///   its string array, so indices count up from 0) or an IO descriptor (`DEF_DESC`, the string
///   index of the catalogue name, of the unit or -1; descriptors count up from 1). Both are sent
///   once per [`Api`]: the IO catalogue's names and units cross the boundary as one index.
/// - `nums`: items until the end, each starting with its tag. A packet (`ITEM_PACKET`): kind
///   (string), transport (string), flags (`P_*`); codec (string) and codec id if `P_CODEC`;
///   imei (text) if `P_IMEI`; received, computed, ok if `P_CRC`; length, packet id, packet type,
///   AVL packet id if `P_UDP`; if `P_RECORDS` a count, then per record timestamp_ms (followed by
///   the time as a text only when JS's `toISOString` would not give core's text, above
///   [`JS_ISO_MAX_MS`]), priority, longitude, latitude, altitude, angle, satellites, speed,
///   valid, event_id, generation_type (-1 for null), IO count, and per IO element `id + size ×
///   2^16`, `flags + descriptor × 2^8` (`IO_*`, descriptor 0: not in the catalogue, so no name,
///   value nor unit), then raw (a number, or the u64's bits if `IO_RAW_BIG`, read by JS as a
///   BigInt) or, if `IO_HEX`, hex (text), then the value unless its kind is none or `V_RAW`,
///   then if `IO_DECODED` the composite value's `decoded` as JSON (text); after the IO elements
///   0 (no `network`) or 1 and mcc, mnc, mnc_digits, lac, cell_id, signal (-1 for null); if
///   `P_MESSAGES` a count, then per message type, text (nullable text), payload_hex (text),
///   timestamp_s (-1 for null), imei (nullable text); ack (text) if `P_ACK`; warnings count,
///   then per warning kind (string), offset, message (text); offset; length. An invalid frame
///   skipped by a stream (`ITEM_INVALID`) or the error that stopped decoding (`ITEM_ERROR`,
///   always last): stream offset of the frame, then kind (string), offset, field (string),
///   message (text).
/// - A string is an index in JS's string array (see `defs`). A text is its length in UTF-16
///   units in `nums` and its characters in `texts`; a nullable text is -1 for null, else a text.
/// - JS reads `nums`, `defs` and both strings straight from the wasm memory, before its next
///   call into the module (which may reuse or move the buffers).
struct Tape<'a> {
    shared: &'a mut Shared,
    /// The model IO elements are named for, with its cache key; `None` leaves them unnamed
    /// (`names: false`).
    names: Option<(u32, Option<&'a str>)>,
}

fn utf16_len(s: &str) -> f64 {
    if s.is_ascii() {
        s.len() as f64
    } else {
        s.encode_utf16().count() as f64
    }
}

/// Small integer keys to sequential indices (open addressing): which static strings and IO
/// descriptors JS already holds, and where.
struct Interner {
    slots: Vec<(u64, u32)>,
    len: u32,
}

const EMPTY: u64 = u64::MAX;

impl Interner {
    fn new() -> Self {
        Self {
            slots: alloc::vec![(EMPTY, 0); 256],
            len: 0,
        }
    }

    /// The index of `key`, and whether it was assigned just now.
    fn get(&mut self, key: u64) -> (u32, bool) {
        let mask = self.slots.len() - 1;
        let mut h = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask;
        loop {
            let (k, v) = self.slots[h];
            if k == key {
                return (v, false);
            }
            if k == EMPTY {
                let v = self.len;
                self.len += 1;
                self.slots[h] = (key, v);
                if self.len as usize * 2 > self.slots.len() {
                    self.grow();
                }
                return (v, true);
            }
            h = (h + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let bigger = alloc::vec![(EMPTY, 0); self.slots.len() * 2];
        let old = core::mem::replace(&mut self.slots, bigger);
        let mask = self.slots.len() - 1;
        for (k, v) in old.into_iter().filter(|(k, _)| *k != EMPTY) {
            let mut h = (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask;
            while self.slots[h].0 != EMPTY {
                h = (h + 1) & mask;
            }
            self.slots[h] = (k, v);
        }
    }
}

/// A remembered catalogue lookup: `key` is model key × 2^16 + id (`u32::MAX`: empty slot).
#[derive(Clone, Copy)]
struct Lookup {
    key: u32,
    desc: u32,
    /// Unsigned and unscaled: [`IoInfo::value`] gives `Uint(raw)`, so it need not be called
    /// (most elements; the call and its 128-bit scaling were a quarter of the decoding time).
    plain: bool,
    /// Type hex: [`IoInfo::value`] gives the hex of the wire bytes, written here straight onto
    /// the tape (the call allocates a string).
    hex: bool,
    /// Unsigned with a fractional multiplier: its mantissa and power of ten, for the fast path
    /// of `Scale::apply` (`raw × mantissa / 10^k`, one correctly rounded division), without the
    /// call and its 128-bit arguments.
    scaled: Option<(i64, f64)>,
    info: Option<IoInfo>,
}

/// What one instance of the JS API keeps between calls.
struct Shared {
    /// IO catalogue lookups with their descriptors, direct-mapped by model key and id.
    cache: Vec<Lookup>,
    /// The model strings seen; model key = index + 1 (0: the default definitions).
    models: Vec<String>,
    /// The static strings JS holds, by address and length.
    strings: Interner,
    /// The IO descriptors JS holds, by name and unit string index.
    descs: Interner,
    /// The tape being written, reused from call to call.
    nums: Vec<f64>,
    defs: Vec<f64>,
    statics: String,
    texts: String,
}

const CACHE_SLOTS: usize = 1024;
const HEADER: usize = 7;

impl Shared {
    fn new() -> Self {
        Self {
            cache: alloc::vec![
                Lookup {
                    key: u32::MAX,
                    desc: 0,
                    plain: false,
                    hex: false,
                    scaled: None,
                    info: None
                };
                CACHE_SLOTS
            ],
            models: Vec::new(),
            strings: Interner::new(),
            descs: Interner::new(),
            nums: Vec::new(),
            defs: Vec::new(),
            statics: String::new(),
            texts: String::new(),
        }
    }

    /// The cache key of `model`: the same string always gets the same key.
    fn model_key(&mut self, model: Option<&str>) -> u32 {
        let Some(model) = model else { return 0 };
        if let Some(k) = self.models.iter().position(|m| m == model) {
            return k as u32 + 1;
        }
        if self.models.len() >= 0xFFFE {
            // Keys must fit in 16 bits: start over (lookups are only a cache).
            self.models.clear();
            self.cache.iter_mut().for_each(|l| l.key = u32::MAX);
        }
        self.models.push(String::from(model));
        self.models.len() as u32
    }

    /// The index of a static string in JS's array, defined on the tape the first time.
    fn string(&mut self, s: &'static str) -> u32 {
        // Address and length identify a static string for as long as the module lives.
        let (k, new) = self
            .strings
            .get(((s.as_ptr() as usize as u64) << 32) | s.len() as u64);
        if new {
            self.defs.push(DEF_STRING);
            self.defs.push(utf16_len(s));
            self.statics.push_str(s);
        }
        k
    }

    /// The descriptor (name and unit) of a catalogue entry, defined on the tape the first time.
    fn desc(&mut self, info: &IoInfo) -> u32 {
        let name = self.string(info.name);
        let unit = info.unit.map_or(0, |u| self.string(u) + 1);
        let (d, new) = self.descs.get((u64::from(name) << 32) | u64::from(unit));
        if new {
            self.defs.push(DEF_DESC);
            self.defs.push(f64::from(name));
            self.defs.push(f64::from(unit) - 1.0);
        }
        d + 1
    }

    /// `io_catalog::lookup` and the entry's descriptor, remembered (an IO id recurs in every
    /// record of every packet): the slot of `cache` that holds them.
    fn lookup(&mut self, id: u16, model_key: u32, model: Option<&str>) -> usize {
        let key = (model_key << 16) | u32::from(id);
        let slot = (usize::from(id) ^ (model_key as usize).wrapping_mul(0x9E5)) % CACHE_SLOTS;
        if self.cache[slot].key != key {
            let info = io_catalog::lookup(id, model);
            let desc = info.as_ref().map_or(0, |i| self.desc(i));
            let plain = info
                .as_ref()
                .is_some_and(|i| i.io_type == IoType::Unsigned && i.scale.is_one());
            let hex = info.as_ref().is_some_and(|i| i.io_type == IoType::Hex);
            let scaled = info
                .as_ref()
                .filter(|i| {
                    i.io_type == IoType::Unsigned && (i8::MIN + 1..0).contains(&i.scale.exp10)
                })
                .map(|i| {
                    // 10^k exactly as `Scale::apply` divides by it (`as_f64` of 1 × 10^k).
                    let k = io_catalog::Scale {
                        mantissa: 1,
                        exp10: -i.scale.exp10,
                    };
                    (i64::from(i.scale.mantissa), k.as_f64())
                });
            self.cache[slot] = Lookup {
                key,
                desc,
                plain,
                hex,
                scaled,
                info,
            };
        }
        slot
    }
}

impl<'a> Tape<'a> {
    fn new(shared: &'a mut Shared, names: Option<Option<&'a str>>) -> Self {
        shared.nums.clear();
        shared.nums.resize(HEADER, 0.0);
        shared.defs.clear();
        shared.statics.clear();
        shared.texts.clear();
        let names = names.map(|model| (shared.model_key(model), model));
        Self { shared, names }
    }

    fn num(&mut self, v: impl Into<f64>) {
        self.shared.nums.push(v.into());
    }

    fn usize(&mut self, v: usize) {
        self.shared.nums.push(v as f64);
    }

    fn stat(&mut self, s: &'static str) {
        let k = self.shared.string(s);
        self.shared.nums.push(f64::from(k));
    }

    fn text(&mut self, s: &str) {
        self.shared.nums.push(utf16_len(s));
        self.shared.texts.push_str(s);
    }

    /// A text: the lowercase hex of `bytes`, as [`crate::hex::encode`] writes it, without
    /// allocating it first.
    fn hex_text(&mut self, bytes: &[u8]) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        self.shared.nums.push(bytes.len() as f64 * 2.0);
        let texts = &mut self.shared.texts;
        texts.reserve(bytes.len() * 2);
        for &b in bytes {
            texts.push(char::from(DIGITS[usize::from(b >> 4)]));
            texts.push(char::from(DIGITS[usize::from(b & 15)]));
        }
    }

    fn nullable_text(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.text(s),
            None => self.shared.nums.push(-1.0),
        }
    }

    /// The 64 bits themselves in an f64 slot: JS reads the slot through a `BigUint64Array` view,
    /// which makes the BigInt in one step.
    fn big(&mut self, v: u64) {
        self.num(f64::from_bits(v));
    }

    /// The fields of [`PacketJson::new`], in its order.
    fn packet(&mut self, p: &Packet) {
        self.num(ITEM_PACKET);
        self.stat(p.kind().as_str());
        self.stat(p.transport.name());
        let codec = p.codec();
        let imei = p.imei();
        let ack = p.ack();
        let flag = |present: bool, bit: u32| if present { bit } else { 0 };
        let flags = flag(codec.is_some(), P_CODEC)
            | flag(imei.is_some(), P_IMEI)
            | flag(p.crc().is_some(), P_CRC)
            | flag(p.udp().is_some(), P_UDP)
            | flag(matches!(p.content, Content::Avl(_)), P_RECORDS)
            | flag(matches!(p.content, Content::Command(_)), P_MESSAGES)
            | flag(ack.is_some(), P_ACK);
        self.num(flags);
        if let Some(codec) = codec {
            self.stat(codec.name());
            self.num(codec.id());
        }
        if let Some(imei) = imei {
            self.text(imei.as_str());
        }
        if let Some(crc) = p.crc() {
            self.num(crc.received);
            self.num(crc.computed);
            self.num(u8::from(crc.ok()));
        }
        if let Some(udp) = p.udp() {
            self.num(udp.length);
            self.num(udp.packet_id);
            self.num(udp.packet_type);
            self.num(udp.avl_packet_id);
        }
        match &p.content {
            Content::Avl(d) => {
                self.usize(d.records.len());
                for r in &d.records {
                    self.record(r);
                }
            }
            Content::Command(c) => {
                self.usize(c.messages.len());
                for m in &c.messages {
                    self.message(&MessageJson::new(m));
                }
            }
            _ => {}
        }
        if let Some(ack) = ack {
            self.hex_text(&ack);
        }
        self.usize(p.warnings.len());
        for w in &p.warnings {
            self.stat(w.code());
            self.usize(w.offset);
            self.text(&w.message);
        }
        self.usize(p.offset);
        self.usize(p.len);
    }

    /// The fields of [`crate::json::RecordJson::new`], in its order.
    fn record(&mut self, r: &AvlRecord) {
        // Beyond 2^53 ms (year 285 000) the timestamp is garbage anyway; it stays a number.
        self.num(r.timestamp_ms as f64);
        if r.timestamp_ms > JS_ISO_MAX_MS {
            // Below, formatting dominated small packets here: JS renders the same text.
            self.text(&crate::time::iso8601(r.timestamp_ms));
        }
        let gps = &r.gps;
        let fields: [f64; RECORD_SLOTS] = [
            f64::from(r.priority.0),
            gps.longitude_deg(),
            gps.latitude_deg(),
            f64::from(gps.altitude),
            f64::from(gps.angle),
            f64::from(gps.satellites),
            f64::from(gps.speed),
            f64::from(u8::from(gps.has_fix())),
            f64::from(r.event_id),
            r.generation_type.map_or(-1.0, |g| f64::from(g.0)),
            r.io.len() as f64,
        ];
        self.shared.nums.extend_from_slice(&fields);
        for e in &r.io {
            self.io(e);
        }
        match NetworkJson::from_io(&r.io) {
            None => self.num(0),
            Some(n) => {
                let opt = |v: Option<u32>| v.map_or(-1.0, f64::from);
                self.shared.nums.extend_from_slice(&[
                    1.0,
                    opt(n.mcc.map(u32::from)),
                    opt(n.mnc.map(u32::from)),
                    opt(n.mnc_digits.map(u32::from)),
                    opt(n.lac.map(u32::from)),
                    opt(n.cell_id),
                    opt(n.signal.map(u32::from)),
                ]);
            }
        }
    }

    /// The fields of [`crate::json::IoJson::with_info`], in its order, with the catalogue's name and unit as
    /// a descriptor.
    fn io(&mut self, e: &IoElement) {
        let size = e.value.size();
        let (desc, plain, hex, scaled, info) = match self.names {
            Some((key, model)) => {
                let slot = self.shared.lookup(e.id, key, model);
                let l = &self.shared.cache[slot];
                (l.desc, l.plain, l.hex, l.scaled, l.info.as_ref())
            }
            None => (0, false, false, None, None),
        };
        let head = f64::from(e.id) + size as f64 * 65_536.0;
        let kind = |value: &Option<IoValueView>| match value {
            None => 0,
            Some(IoValueView::Uint(v)) if *v > SAFE => V_BIG,
            Some(IoValueView::Int(v)) if v.unsigned_abs() > SAFE => V_SIGNED_BIG,
            Some(IoValueView::Int(_) | IoValueView::Uint(_) | IoValueView::Decimal(_)) => V_NUMBER,
            Some(IoValueView::Text(_) | IoValueView::Hex(_)) => V_TEXT,
        };
        let value = match &e.value {
            IoValue::Bytes(b) => {
                let value = info.map(|i| i.value_bytes(b));
                let decoded = DecodedJson::new(e.id, b);
                let flags = IO_HEX
                    | kind(&value) << IO_VALUE_SHIFT
                    | if decoded.is_some() { IO_DECODED } else { 0 }
                    | desc << 8;
                self.num(head);
                self.num(flags);
                self.hex_text(b);
                self.value(value);
                if let Some(d) = decoded {
                    // Rare and nested: serde's text, parsed by JS, is simpler than a tape shape.
                    self.text(&serde_json::to_string(&d).unwrap_or_default());
                }
                return;
            }
            v => {
                let raw = v.raw().unwrap_or_default();
                let big = if raw > SAFE { IO_RAW_BIG } else { 0 };
                let raw_slot = if raw > SAFE {
                    f64::from_bits(raw)
                } else {
                    raw as f64
                };
                if plain {
                    // What `IoInfo::value` gives: `Uint(raw)`.
                    let flags = big | V_RAW << IO_VALUE_SHIFT | desc << 8;
                    self.shared
                        .nums
                        .extend_from_slice(&[head, f64::from(flags), raw_slot]);
                    return;
                }
                if hex {
                    // What `IoInfo::value` gives: `Hex` of the value's bytes on the wire.
                    let flags = big | V_TEXT << IO_VALUE_SHIFT | desc << 8;
                    self.shared
                        .nums
                        .extend_from_slice(&[head, f64::from(flags), raw_slot]);
                    self.hex_text(&raw.to_be_bytes()[8 - size.clamp(1, 8)..]);
                    return;
                }
                let fast = scaled.and_then(|(mantissa, ten_k)| {
                    let num = i64::try_from(raw).ok()?.checked_mul(mantissa)?;
                    Some(IoValueView::Decimal(num as f64 / ten_k))
                });
                let value = fast.or_else(|| info.map(|i| i.value(size, raw)));
                let value_kind = match value {
                    Some(IoValueView::Uint(v)) if v == raw => V_RAW,
                    _ => kind(&value),
                };
                let flags = big | value_kind << IO_VALUE_SHIFT | desc << 8;
                self.shared
                    .nums
                    .extend_from_slice(&[head, f64::from(flags), raw_slot]);
                if value_kind == V_RAW {
                    return;
                }
                value
            }
        };
        self.value(value);
    }

    /// An IO element's value after its raw or hex, as its kind in the flags says.
    fn value(&mut self, value: Option<IoValueView>) {
        match value {
            Some(IoValueView::Uint(v)) if v > SAFE => self.big(v),
            Some(IoValueView::Int(v)) if v.unsigned_abs() > SAFE => self.big(v as u64),
            Some(IoValueView::Int(v)) => self.num(v as f64),
            Some(IoValueView::Uint(v)) => self.num(v as f64),
            Some(IoValueView::Decimal(v)) => self.num(v),
            Some(IoValueView::Text(t) | IoValueView::Hex(t)) => self.text(&t),
            None => {}
        }
    }

    fn message(&mut self, m: &MessageJson) {
        self.num(m.kind);
        self.nullable_text(m.text.as_deref());
        self.text(&m.payload_hex);
        self.num(m.timestamp_s.map_or(-1.0, f64::from));
        self.nullable_text(m.imei.as_deref());
    }

    /// `ITEM_INVALID` or `ITEM_ERROR`.
    fn error(&mut self, tag: f64, frame_offset: usize, e: &DecodeError) {
        let message = e.to_string();
        self.error_parts(
            tag,
            frame_offset,
            e.code(),
            e.offset,
            e.field_name(),
            &message,
        );
    }

    /// An error of hex text: the offset is a character offset in the text.
    fn hex_error(&mut self, e: &HexError) {
        let message = e.to_string();
        self.error_parts(ITEM_ERROR, 0, e.code(), e.offset, HEX_FIELD, &message);
    }

    fn error_parts(
        &mut self,
        tag: f64,
        frame_offset: usize,
        code: &'static str,
        offset: usize,
        field: &'static str,
        message: &str,
    ) {
        self.num(tag);
        self.usize(frame_offset);
        self.stat(code);
        self.usize(offset);
        self.stat(field);
        self.text(message);
    }

    /// Finish the header; returns where the tape is in the wasm memory: address plus length
    /// times 2^32 (both below 2^32, so the sum is an exact f64).
    fn finish(self) -> f64 {
        let sh = self.shared;
        sh.nums[0] = sh.statics.as_ptr() as usize as f64;
        sh.nums[1] = sh.statics.len() as f64;
        sh.nums[2] = sh.texts.as_ptr() as usize as f64;
        sh.nums[3] = sh.texts.len() as f64;
        sh.nums[4] =
            f64::from(u8::from(sh.statics.is_ascii()) | u8::from(sh.texts.is_ascii()) << 1);
        sh.nums[5] = sh.defs.as_ptr() as usize as f64;
        sh.nums[6] = sh.defs.len() as f64;
        sh.nums.as_ptr() as usize as f64 + sh.nums.len() as f64 * 4_294_967_296.0
    }
}

/// Decode complete input onto a tape (see [`Tape`]): the first packet only when `all` is
/// false, with a `trailing_bytes` error if more follows; every packet otherwise.
fn decode_to_tape(shared: &mut Shared, input: &[u8], all: bool, opts: &Options) -> f64 {
    let names = opts.names.then_some(opts.json.model.as_deref());
    let mut tape = Tape::new(shared, names);
    let mut start = 0;
    for r in crate::decode_each(input, &opts.decode) {
        match r {
            Ok(p) => {
                start = p.offset + p.len;
                tape.packet(&p);
                if !all {
                    if start < input.len() {
                        tape.error(ITEM_ERROR, start, &trailing(start, input.len()));
                    }
                    break;
                }
            }
            Err(e) => {
                tape.error(ITEM_ERROR, start, &e);
                break;
            }
        }
    }
    tape.finish()
}

/// The state one instance of the JS API keeps: IO catalogue lookups, the strings and IO
/// descriptors JS has cached, the current decoding options and the input buffer. Created once
/// by `www/src/api.js` and passed to every decoding call.
#[wasm_bindgen]
pub struct Api {
    shared: Shared,
    /// Set by [`Api::set_options`]; JS calls it only when the options change, because reading
    /// a JS object from here costs a boundary crossing per property.
    options: Options,
    /// Where JS copies the bytes to decode ([`Api::reserve`]): no allocation per call.
    input: Vec<u8>,
}

impl Default for Api {
    fn default() -> Self {
        Self::new()
    }
}

#[wasm_bindgen]
impl Api {
    /// Fresh state (JS starts with empty caches), default options.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Api {
        Self {
            shared: Shared::new(),
            options: Options {
                decode: DecodeOptions::default(),
                json: JsonOptions::default(),
                names: true,
            },
            input: Vec::new(),
        }
    }

    /// Check and keep the options of the next decoding calls (`undefined`: the defaults). On
    /// error the previous options stay.
    #[wasm_bindgen(js_name = setOptions)]
    pub fn set_options(&mut self, options: JsValue) -> Result<(), JsValue> {
        self.options = parse_options(&options)?;
        Ok(())
    }

    /// Make the input buffer at least `len` bytes; returns its address, stable until the next
    /// call that needs it larger.
    pub fn reserve(&mut self, len: usize) -> usize {
        if self.input.len() < len {
            self.input = alloc::vec![0; len.max(self.input.len() * 2)];
        }
        self.input.as_ptr() as usize
    }

    /// Decode the first `len` bytes of the input buffer onto a tape (see [`Tape`]): the first
    /// packet only when `all` is false, every packet otherwise.
    #[wasm_bindgen(js_name = decodeInput)]
    pub fn decode_input(&mut self, len: usize, all: bool) -> f64 {
        let input = &self.input[..len.min(self.input.len())];
        decode_to_tape(&mut self.shared, input, all, &self.options)
    }

    /// [`Api::decode_input`] for hex text (spaces, `0x`, commas are fine); a character that is
    /// not hex is an error on the tape, at its offset in the text.
    #[wasm_bindgen(js_name = decodeHex)]
    pub fn decode_hex(&mut self, text: &str, all: bool) -> f64 {
        match crate::hex::decode(text) {
            Ok(bytes) => decode_to_tape(&mut self.shared, &bytes, all, &self.options),
            Err(e) => {
                let mut tape = Tape::new(&mut self.shared, None);
                tape.hex_error(&e);
                tape.finish()
            }
        }
    }

    /// The module's memory, where JS reads the tapes and writes the input.
    pub fn memory(&self) -> JsValue {
        wasm_bindgen::memory()
    }
}

/// Bytes from hex text as people paste it (spaces, `0x`, commas are fine).
#[wasm_bindgen(js_name = hexBytes)]
pub fn hex_bytes(text: &str) -> Result<Vec<u8>, JsValue> {
    crate::hex::decode(text)
        .map_err(|e| js_error(e.code(), Some(e.offset), HEX_FIELD, &e.to_string()))
}

/// The `field` of hex text errors.
const HEX_FIELD: &str = "hex";

/// `decode` takes one packet: more input after it is an error (`decodeAll` takes them all).
fn trailing(end: usize, len: usize) -> DecodeError {
    DecodeError::at(end, ErrorKind::TrailingBytes { count: len - end })
}

/// The JSON model as text, rendered by serde: the first packet (`all` false: input holding
/// more throws `trailing_bytes`) or an array of every packet.
#[wasm_bindgen(js_name = decodeJson)]
pub fn decode_json(input: &[u8], all: bool, options: JsValue) -> Result<String, JsValue> {
    let opts = parse_options(&options)?;
    let mut packets = Vec::new();
    for r in crate::decode_each(input, &opts.decode) {
        let p = r.map_err(|e| decode_error(&e))?;
        let end = p.offset + p.len;
        let mut json = PacketJson::new(&p, &opts.json);
        if !opts.names {
            for e in json.records.iter_mut().flatten().flat_map(|r| &mut r.io) {
                (e.name, e.value, e.unit) = (None, None, None);
            }
        }
        packets.push(json);
        if !all {
            if end < input.len() {
                return Err(decode_error(&trailing(end, input.len())));
            }
            break;
        }
    }
    let text = if all {
        serde_json::to_string(&packets)
    } else {
        serde_json::to_string(&packets[0])
    };
    // The JSON model has only strings, numbers, booleans, options, sequences and structs.
    text.map_err(|e| js_error("internal", None, "", &e.to_string()))
}

/// The 4-byte TCP ack: `n` records accepted, big-endian. Zero makes the device send them again.
#[wasm_bindgen(js_name = tcpAck)]
pub fn tcp_ack(n: f64) -> Result<Vec<u8>, JsValue> {
    Ok(crate::tcp_ack(int_arg(n, "n", u32::MAX.into())? as u32).to_vec())
}

/// The 7-byte UDP ack echoing the datagram's packet id and AVL packet id, with the number of
/// records accepted.
#[wasm_bindgen(js_name = udpAck)]
pub fn udp_ack(packet_id: f64, avl_packet_id: f64, n: f64) -> Result<Vec<u8>, JsValue> {
    let packet_id = int_arg(packet_id, "packetId", 0xFFFF)? as u16;
    let avl_packet_id = int_arg(avl_packet_id, "avlPacketId", 0xFF)? as u8;
    let n = int_arg(n, "n", 0xFF)? as u8;
    Ok(crate::udp::ack(packet_id, avl_packet_id, n).to_vec())
}

fn command_packet(payload: &JsValue, options: &JsValue) -> Result<CommandPacket, JsValue> {
    let bytes = if let Some(text) = payload.as_string() {
        text.into_bytes()
    } else if let Some(a) = payload.dyn_ref::<Uint8Array>() {
        a.to_vec()
    } else {
        return Err(js_error(
            "invalid_input",
            None,
            "command",
            "Invalid command: expected a string or a Uint8Array",
        ));
    };
    let (mut codec, mut imei) = (12.0, None);
    if !options.is_undefined() && !options.is_null() {
        if !options.is_object() {
            return Err(option_error("options", "expected an object"));
        }
        let c = get(options, "codec");
        if !c.is_undefined() {
            codec = c
                .as_f64()
                .ok_or_else(|| option_error("codec", "expected 12 or 14"))?;
        }
        let i = get(options, "imei");
        if !i.is_undefined() && !i.is_null() {
            imei = Some(
                i.as_string()
                    .ok_or_else(|| option_error("imei", "expected a string of digits"))?,
            );
        }
    }
    let codec = match codec {
        12.0 => Codec::Codec12,
        14.0 => Codec::Codec14,
        _ => return Err(option_error("codec", "expected 12 or 14")),
    };
    if codec == Codec::Codec14 && imei.is_none() {
        return Err(option_error("imei", "Codec 14 needs the device's IMEI"));
    }
    let imei = imei.filter(|_| codec == Codec::Codec14);
    CommandPacket::new(codec, bytes, imei.as_deref()).map_err(|e| encode_error(&e))
}

/// A TCP frame carrying one command: Codec 12 by default, Codec 14 with `{codec: 14, imei}`.
#[wasm_bindgen(js_name = encodeCommand)]
pub fn encode_command(command: JsValue, options: JsValue) -> Result<Vec<u8>, JsValue> {
    let packet = command_packet(&command, &options)?;
    crate::encode::command_frame(&packet).map_err(|e| encode_error(&e))
}

/// The IMEI login frame a device sends first (for simulators and tests).
#[wasm_bindgen(js_name = loginFrame)]
pub fn login_frame(imei: &str) -> Result<Vec<u8>, JsValue> {
    Imei::new(imei).map(|i| i.login_frame()).ok_or_else(|| {
        js_error(
            "invalid_imei",
            None,
            "imei",
            "Invalid IMEI: expected 1 to 32 ASCII digits",
        )
    })
}

#[derive(Serialize)]
struct IoInfoJson {
    id: u16,
    name: &'static str,
    bytes: Option<u16>,
    #[serde(rename = "type")]
    io_type: &'static str,
    unit: Option<&'static str>,
    group: &'static str,
    multiplier: f64,
    models: Vec<&'static str>,
    exact: bool,
}

/// What the IO catalogue knows about IO `id` on `model` (the FMB-family definition when the
/// model is omitted, unknown or has no definition of its own), or `null` for an unknown id.
#[wasm_bindgen(js_name = ioInfo)]
pub fn io_info(id: f64, model: Option<String>) -> Result<JsValue, JsValue> {
    let id = int_arg(id, "id", 0xFFFF)? as u16;
    let Some(info) = io_catalog::lookup(id, model.as_deref()) else {
        return Ok(JsValue::NULL);
    };
    let json = IoInfoJson {
        id: info.id,
        name: info.name,
        bytes: info.bytes,
        io_type: match info.io_type {
            IoType::Unsigned => "unsigned",
            IoType::Signed => "signed",
            IoType::Hex => "hex",
            IoType::Ascii => "ascii",
        },
        unit: info.unit,
        group: info.group,
        multiplier: info.multiplier(),
        models: info.supported_models().collect(),
        exact: model.as_deref().is_some_and(|m| info.supports_model(m)),
    };
    // Plain objects with `null` for `None`; nothing here can fail to convert.
    json.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| js_error("internal", None, "", &e.to_string()))
}

/// The device models the IO catalogue knows, sorted.
#[wasm_bindgen(js_name = models)]
pub fn models() -> Array {
    io_catalog::models()
        .iter()
        .map(|m| JsValue::from_str(m))
        .collect()
}

/// One device's TCP connection, server side: the crate's sans-IO [`Session`] with its events
/// on a tape. Wrapped by the `Decoder` class of `www/src/api.js`.
#[wasm_bindgen]
pub struct DecoderCore {
    session: Session,
    json: JsonOptions,
    names: bool,
    /// Stream offset where the last packet handed out ended: the start of the next one.
    end: usize,
}

#[wasm_bindgen]
impl DecoderCore {
    /// A decoder waiting for the device's IMEI login.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> Result<DecoderCore, JsValue> {
        let opts = parse_options(&options)?;
        Ok(Self {
            session: Session::new(opts.decode),
            json: opts.json,
            names: opts.names,
            end: 0,
        })
    }

    /// Feed the first `len` bytes of `api`'s input buffer (bytes read from the socket); the
    /// events they complete, on a tape. An error that ends the stream is the tape's last item.
    #[wasm_bindgen(js_name = pushInput)]
    pub fn push_input(&mut self, api: &mut Api, len: usize) -> f64 {
        let result = self
            .session
            .handle_input(&api.input[..len.min(api.input.len())]);
        let names = self.names.then_some(self.json.model.as_deref());
        let mut tape = Tape::new(&mut api.shared, names);
        Self::events(&mut self.session, &mut self.end, &mut tape);
        if let Err(e) = result {
            tape.error(ITEM_ERROR, self.end, &e);
        }
        tape.finish()
    }

    /// Events not handed out yet (frames that came with the login, decoded once it is accepted).
    pub fn take(&mut self, api: &mut Api) -> f64 {
        let names = self.names.then_some(self.json.model.as_deref());
        let mut tape = Tape::new(&mut api.shared, names);
        Self::events(&mut self.session, &mut self.end, &mut tape);
        tape.finish()
    }

    fn events(session: &mut Session, end: &mut usize, tape: &mut Tape<'_>) {
        while let Some(event) = session.poll_event() {
            let packet = match event {
                Event::Login(imei) => Packet {
                    offset: *end,
                    len: 2 + imei.as_str().len(),
                    transport: Transport::Tcp { crc: None },
                    content: Content::Imei(imei),
                    warnings: Vec::new(),
                },
                Event::Records(p) | Event::Message(p) => p,
                Event::KeepAlive { offset } => Packet {
                    offset,
                    len: 1,
                    transport: Transport::Tcp { crc: None },
                    content: Content::KeepAlive,
                    warnings: Vec::new(),
                },
                Event::Invalid(e) => {
                    tape.error(ITEM_INVALID, *end, &e);
                    continue;
                }
            };
            *end = packet.offset + packet.len;
            tape.packet(&packet);
        }
    }

    /// Answer the login: the byte to write, `01` to accept or `00` to reject.
    pub fn accept(&mut self, accept: bool) -> Vec<u8> {
        self.session.accept_imei(accept);
        self.transmit()
    }

    /// The 4 bytes acknowledging a data frame: the number of records stored.
    pub fn ack(&mut self, n: f64) -> Result<Vec<u8>, JsValue> {
        self.session.ack(int_arg(n, "n", u32::MAX.into())? as u32);
        Ok(self.transmit())
    }

    /// A command frame for this device; Codec 14 addresses the IMEI it logged in with unless
    /// the options name another.
    pub fn command(&mut self, command: JsValue, options: JsValue) -> Result<Vec<u8>, JsValue> {
        let options = match self.session.imei() {
            Some(imei) if options.is_object() && get(&options, "imei").is_undefined() => {
                let copy = Object::assign(&Object::new(), options.unchecked_ref());
                let _ = Reflect::set(&copy, &"imei".into(), &imei.as_str().into());
                copy.into()
            }
            _ => options,
        };
        let packet = command_packet(&command, &options)?;
        self.session
            .send_command(&packet)
            .map_err(|e| encode_error(&e))?;
        Ok(self.transmit())
    }

    fn transmit(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(bytes) = self.session.poll_transmit() {
            out.extend_from_slice(&bytes);
        }
        out
    }

    /// The IMEI the device logged in with, once it has.
    #[wasm_bindgen(getter)]
    pub fn imei(&self) -> Option<String> {
        self.session.imei().map(|i| String::from(i.as_str()))
    }

    /// Whether the stream is over: the login was rejected, or an error ended it.
    #[wasm_bindgen(getter)]
    pub fn closed(&self) -> bool {
        self.session.is_closed()
    }

    /// Bytes received and not decoded yet (an incomplete frame).
    #[wasm_bindgen(getter)]
    pub fn buffered(&self) -> usize {
        self.session.buffered()
    }

    /// Stream offset of the next byte to decode.
    #[wasm_bindgen(getter)]
    pub fn offset(&self) -> usize {
        self.session.offset()
    }
}
