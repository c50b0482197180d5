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
//! benchmarked against. So the decoders here walk the [`PacketJson`] values and write them as a
//! flat list of numbers plus two strings: one with the `'static` strings (IO names, units,
//! kinds), which JS caches by address and so reads once per process, and one with the text that
//! changes per packet. `www/src/api.js` turns that into plain objects with one JIT-compiled
//! loop. The layout is below ([`Tape`]); `www/test` checks that the objects equal
//! `JSON.parse(decodeJson(...))`, the serde rendering of the same model.
//!
//! Errors about the arguments are thrown from here as JS `Error`s with `kind`, `offset` and
//! `field`; decoding errors travel on the tape so that the packets decoded before them survive.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use js_sys::{Array, Object, Reflect, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::avl::AvlRecord;
use crate::command::CommandPacket;
use crate::error::{DecodeError, EncodeError, ErrorKind};
use crate::io_catalog::{self, IoInfo, IoType, IoValueView};
use crate::json::{IoJson, JsonOptions, MessageJson, PacketJson};
use crate::packet::{Content, Packet, Transport};
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
    js_error(e.code(), Some(e.offset), e.field, &e.to_string())
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

/// IO element flags.
const IO_RAW: u32 = 1;
const IO_RAW_BIG: u32 = 2;
const IO_HEX: u32 = 4;
const IO_NAME: u32 = 8;
const IO_VALUE_SHIFT: u32 = 4; // 3 bits: 0 none, 1 number, 2 BigInt, 3 signed BigInt, 4 text
const IO_UNIT: u32 = 128;

/// Packet flags: which optional members are present.
const P_CODEC: u32 = 1;
const P_IMEI: u32 = 2;
const P_CRC: u32 = 4;
const P_UDP: u32 = 8;
const P_RECORDS: u32 = 16;
const P_MESSAGES: u32 = 32;
const P_ACK: u32 = 64;

/// Packets flattened for `www/src/api.js`; both sides must agree on this layout:
///
/// - `nums`: items until the end, each starting with its tag. A packet (`ITEM_PACKET`): kind
///   (static), transport (static), flags (`P_*`); codec (static) and codec id if `P_CODEC`;
///   imei (text) if `P_IMEI`; received, computed, ok if `P_CRC`; length, packet id, packet
///   type, AVL packet id if `P_UDP`; if `P_RECORDS` a count, then per record timestamp_ms,
///   time (-1: JS renders it from timestamp_ms, else a text), priority, longitude, latitude, altitude, angle, satellites, speed, valid,
///   event_id, generation_type (-1 for null), IO count and per IO element id, size, flags
///   (`IO_*`), then raw (a number, or if `IO_RAW_BIG` the u64's bits, read by JS as a BigInt), hex
///   (text), name (static), value, unit (static), each when flagged; if `P_MESSAGES` a count,
///   then per message type, text (nullable text), payload_hex (text), timestamp_s (-1 for
///   null), imei (nullable text); ack (text) if `P_ACK`; warnings count, then per warning kind
///   (static), offset, message (text); offset; length. An invalid frame skipped by a stream
///   (`ITEM_INVALID`) or the error that stopped decoding (`ITEM_ERROR`, always last): stream
///   offset of the frame, then kind (static), offset, field (static), message (text).
/// - A static string is a slot of JS's cache, then its length in UTF-16 units if its text
///   follows in `statics` (JS stores it in the slot), or -1 when the slot already holds it.
/// - A text is its length in UTF-16 units in `nums` and its text in `texts`.
/// - A nullable text is -1 for null, else a text.
/// - The tape starts with a header: the address and byte length of `statics`, then of
///   `texts`, then 1 if both are ASCII (JS then skips the UTF-8 decoder). JS reads `nums` and both strings straight from the wasm memory, before its next
///   call into the module (which may reuse or move the buffers).
struct Tape<'a> {
    shared: &'a mut Shared,
    /// The model IO elements are named for; `None` leaves them unnamed (`names: false`).
    names: Option<Option<&'a str>>,
}

fn utf16_len(s: &str) -> f64 {
    if s.is_ascii() {
        s.len() as f64
    } else {
        s.encode_utf16().count() as f64
    }
}

/// What one instance of the JS API keeps between calls.
struct Shared {
    /// IO catalogue lookups for `cache_model`, direct-mapped by id.
    cache: Vec<Option<(u16, Option<IoInfo>)>>,
    cache_model: Option<String>,
    /// The static string held by each slot of JS's cache, by `(address, length)`: direct-mapped
    /// by address, so that JS looks its strings up by array index.
    sent: Vec<(usize, usize)>,
    /// The tape being written, reused from call to call.
    nums: Vec<f64>,
    statics: String,
    texts: String,
}

const CACHE_SLOTS: usize = 512;
const SENT_SLOTS: usize = 1024;
const HEADER: usize = 5;

impl Shared {
    fn new() -> Self {
        Self {
            cache: alloc::vec![None; CACHE_SLOTS],
            cache_model: None,
            sent: alloc::vec![(0, 0); SENT_SLOTS],
            nums: Vec::new(),
            statics: String::new(),
            texts: String::new(),
        }
    }

    /// `io_catalog::lookup`, remembered: an IO id recurs in every record of every packet.
    fn lookup(&mut self, id: u16, model: Option<&str>) -> Option<IoInfo> {
        if self.cache_model.as_deref() != model {
            self.cache.iter_mut().for_each(|slot| *slot = None);
            self.cache_model = model.map(String::from);
        }
        let slot = &mut self.cache[usize::from(id) % CACHE_SLOTS];
        match slot {
            Some((cached, info)) if *cached == id => *info,
            _ => {
                let info = io_catalog::lookup(id, model);
                *slot = Some((id, info));
                info
            }
        }
    }
}

impl<'a> Tape<'a> {
    fn new(shared: &'a mut Shared, names: Option<Option<&'a str>>) -> Self {
        shared.nums.clear();
        shared.nums.resize(HEADER, 0.0);
        shared.statics.clear();
        shared.texts.clear();
        Self { shared, names }
    }

    fn num(&mut self, v: impl Into<f64>) {
        self.shared.nums.push(v.into());
    }

    fn usize(&mut self, v: usize) {
        self.shared.nums.push(v as f64);
    }

    fn stat(&mut self, s: &'static str) {
        // Address and length identify a static string for as long as the module lives.
        let key = (s.as_ptr() as usize, s.len());
        let slot = (key.0 ^ (key.1 << 7)) % SENT_SLOTS;
        self.shared.nums.push(slot as f64);
        if self.shared.sent[slot] == key {
            self.shared.nums.push(-1.0);
        } else {
            self.shared.sent[slot] = key;
            self.shared.nums.push(utf16_len(s));
            self.shared.statics.push_str(s);
        }
    }

    fn text(&mut self, s: &str) {
        self.shared.nums.push(utf16_len(s));
        self.shared.texts.push_str(s);
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
        self.stat(p.kind());
        self.stat(p.transport.name());
        let codec = p.codec();
        let imei = p.imei();
        let ack = p.ack();
        let flag = |present: bool, bit: u32| if present { bit } else { 0 };
        let flags = flag(codec.is_some(), P_CODEC)
            | flag(imei.is_some(), P_IMEI)
            | flag(p.crc.is_some(), P_CRC)
            | flag(p.udp.is_some(), P_UDP)
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
        if let Some(crc) = &p.crc {
            self.num(crc.received);
            self.num(crc.computed);
            self.num(u8::from(crc.ok()));
        }
        if let Some(udp) = &p.udp {
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
            self.text(&crate::hex::encode(&ack));
        }
        self.usize(p.warnings.len());
        for w in &p.warnings {
            self.stat(w.kind);
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
        if r.timestamp_ms <= JS_ISO_MAX_MS {
            // Formatting dominated small packets here; JS's Date renders the same text.
            self.num(-1.0);
        } else {
            self.text(&crate::time::iso8601(r.timestamp_ms));
        }
        self.num(r.priority.0);
        self.num(r.gps.longitude_deg());
        self.num(r.gps.latitude_deg());
        self.num(r.gps.altitude);
        self.num(r.gps.angle);
        self.num(r.gps.satellites);
        self.num(r.gps.speed);
        self.num(u8::from(r.gps.has_fix()));
        self.num(r.event_id);
        self.num(r.generation_type.map_or(-1.0, |g| f64::from(g.0)));
        self.usize(r.io.len());
        for e in &r.io {
            let info = match self.names {
                Some(model) => self.shared.lookup(e.id, model),
                None => None,
            };
            self.io(&IoJson::with_info(e, info));
        }
    }

    fn io(&mut self, e: &IoJson) {
        self.num(e.id);
        self.usize(e.size);
        let mut flags = 0;
        if let Some(raw) = e.raw {
            flags |= IO_RAW | if raw > SAFE { IO_RAW_BIG } else { 0 };
        }
        if e.hex.is_some() {
            flags |= IO_HEX;
        }
        if e.name.is_some() {
            flags |= IO_NAME;
        }
        let value_kind = match &e.value {
            None => 0,
            Some(IoValueView::Uint(v)) if *v > SAFE => 2,
            Some(IoValueView::Int(v)) if v.unsigned_abs() > SAFE => 3,
            Some(IoValueView::Int(_) | IoValueView::Uint(_) | IoValueView::Decimal(_)) => 1,
            Some(IoValueView::Text(_) | IoValueView::Hex(_)) => 4,
        };
        flags |= value_kind << IO_VALUE_SHIFT;
        if e.unit.is_some() {
            flags |= IO_UNIT;
        }
        self.num(flags);
        match e.raw {
            Some(raw) if raw > SAFE => self.big(raw),
            Some(raw) => self.num(raw as f64),
            None => {}
        }
        if let Some(hex) = &e.hex {
            self.text(hex);
        }
        if let Some(name) = e.name {
            self.stat(name);
        }
        match &e.value {
            Some(IoValueView::Uint(v)) if *v > SAFE => self.big(*v),
            Some(IoValueView::Int(v)) if v.unsigned_abs() > SAFE => self.big(*v as u64),
            Some(IoValueView::Int(v)) => self.num(*v as f64),
            Some(IoValueView::Uint(v)) => self.num(*v as f64),
            Some(IoValueView::Decimal(v)) => self.num(*v),
            Some(IoValueView::Text(t) | IoValueView::Hex(t)) => self.text(t),
            None => {}
        }
        if let Some(unit) = e.unit {
            self.stat(unit);
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
        self.num(tag);
        self.usize(frame_offset);
        self.stat(e.code());
        self.usize(e.offset);
        self.stat(e.field);
        self.text(&e.to_string());
    }

    /// Finish the header; returns where the tape is in the wasm memory: address plus length
    /// times 2^32 (both below 2^32, so the sum is an exact f64).
    fn finish(self) -> f64 {
        let sh = self.shared;
        sh.nums[0] = sh.statics.as_ptr() as usize as f64;
        sh.nums[1] = sh.statics.len() as f64;
        sh.nums[2] = sh.texts.as_ptr() as usize as f64;
        sh.nums[3] = sh.texts.len() as f64;
        sh.nums[4] = f64::from(u8::from(sh.statics.is_ascii() && sh.texts.is_ascii()));
        sh.nums.as_ptr() as usize as f64 + sh.nums.len() as f64 * 4_294_967_296.0
    }
}

/// The state one instance of the JS API keeps: IO catalogue lookups and the static strings JS
/// has already cached. Created once by `www/src/api.js` and passed to every decoding call.
#[wasm_bindgen]
pub struct Api {
    shared: Shared,
}

impl Default for Api {
    fn default() -> Self {
        Self::new()
    }
}

#[wasm_bindgen]
impl Api {
    /// Fresh state (JS starts with an empty static-string cache).
    #[wasm_bindgen(constructor)]
    pub fn new() -> Api {
        Self {
            shared: Shared::new(),
        }
    }

    /// Decode complete input onto a tape (see [`Tape`]): the first packet only when `all` is
    /// false, with a `trailing_bytes` error if more follows; every packet otherwise.
    pub fn decode(&mut self, input: &[u8], all: bool, options: JsValue) -> Result<f64, JsValue> {
        let opts = parse_options(&options)?;
        Ok(self.decode_bytes(input, all, &opts))
    }

    /// [`Api::decode`] for hex text (spaces, `0x`, commas are fine); a character that is not
    /// hex is an error on the tape, at its offset in the text.
    #[wasm_bindgen(js_name = decodeHex)]
    pub fn decode_hex(&mut self, text: &str, all: bool, options: JsValue) -> Result<f64, JsValue> {
        let opts = parse_options(&options)?;
        match crate::hex::decode(text) {
            Ok(bytes) => Ok(self.decode_bytes(&bytes, all, &opts)),
            Err(e) => {
                let mut tape = Tape::new(&mut self.shared, None);
                tape.error(ITEM_ERROR, 0, &e);
                Ok(tape.finish())
            }
        }
    }

    fn decode_bytes(&mut self, input: &[u8], all: bool, opts: &Options) -> f64 {
        let names = opts.names.then_some(opts.json.model.as_deref());
        let mut tape = Tape::new(&mut self.shared, names);
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

    /// The module's memory, where JS reads the tapes.
    pub fn memory(&self) -> JsValue {
        wasm_bindgen::memory()
    }
}

/// Bytes from hex text as people paste it (spaces, `0x`, commas are fine).
#[wasm_bindgen(js_name = hexBytes)]
pub fn hex_bytes(text: &str) -> Result<Vec<u8>, JsValue> {
    crate::hex::decode(text).map_err(|e| decode_error(&e))
}

/// `decode` takes one packet: more input after it is an error (`decodeAll` takes them all).
fn trailing(end: usize, len: usize) -> DecodeError {
    DecodeError::new(end, "", ErrorKind::TrailingBytes { count: len - end })
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
    let mut packet = if codec == 12.0 {
        CommandPacket::codec12("")
    } else if codec == 14.0 {
        let imei = imei.ok_or_else(|| option_error("imei", "Codec 14 needs the device's IMEI"))?;
        CommandPacket::codec14("", &imei).map_err(|e| encode_error(&e))?
    } else {
        return Err(option_error("codec", "expected 12 or 14"));
    };
    packet.messages[0].payload = bytes;
    Ok(packet)
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

    /// Feed bytes read from the socket; the events they complete, on a tape. An error that ends
    /// the stream is the tape's last item.
    pub fn push(&mut self, api: &mut Api, chunk: &[u8]) -> f64 {
        let result = self.session.handle_input(chunk);
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
                    transport: Transport::Tcp,
                    content: Content::Imei(imei),
                    crc: None,
                    udp: None,
                    warnings: Vec::new(),
                },
                Event::Records(p) | Event::Message(p) => p,
                Event::KeepAlive { offset } => Packet {
                    offset,
                    len: 1,
                    transport: Transport::Tcp,
                    content: Content::KeepAlive,
                    crc: None,
                    udp: None,
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
