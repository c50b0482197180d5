//! The JSON model (`core/docs/json-model.md`): one shape for the CLI, the npm package, the
//! Worker, the playground and the HTTP API. Built from a [`Packet`] by [`PacketJson::new`];
//! every type here implements `serde::Serialize`.
//!
//! IO values keep `raw` (the unsigned integer on the wire) or `hex` (variable-length values);
//! `name`, `value` and `unit` come from the IO catalogue for the chosen device model.

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize, Serializer};

use crate::avl::{AvlRecord, IoElement, IoValue};
use crate::command::CommandMessage;
use crate::error::{DecodeError, Warning};
use crate::hex::HexError;
use crate::io_catalog::{self, IoValueView};
use crate::packet::{Content, Packet, PacketKind, TransportKind};

/// How to render packets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JsonOptions {
    /// Device model for IO names (`"FMB920"`); `None` uses the most common FMB definitions.
    pub model: Option<String>,
}

/// A packet in the JSON model.
#[derive(Clone, Debug, Serialize)]
pub struct PacketJson {
    /// `avl`, `imei`, `command` or `keepalive`.
    pub kind: PacketKind,
    /// `tcp`, `udp` or `bare`.
    pub transport: TransportKind,
    /// `"7"`, `"8"`, `"8E"`, `"16"`, `"12"` …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codec: Option<&'static str>,
    /// The codec id byte.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codec_id: Option<u8>,
    /// The device's IMEI (login, UDP datagram).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imei: Option<String>,
    /// TCP data frames: the CRC received and computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crc: Option<CrcJson>,
    /// UDP datagrams: the channel header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub udp: Option<UdpJson>,
    /// AVL records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<Vec<RecordJson>>,
    /// Command messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<MessageJson>>,
    /// Hex of exactly what a server answers, or null (keep-alives, commands, bare arrays).
    pub ack: Option<String>,
    /// Problems tolerated by lenient decoding, and remarks.
    pub warnings: Vec<WarningJson>,
    /// Offset of the packet in the input.
    pub offset: usize,
    /// Bytes the packet took.
    pub length: usize,
}

/// CRC of a TCP frame.
#[derive(Clone, Debug, Serialize)]
pub struct CrcJson {
    /// The 4-byte trailer.
    pub received: u32,
    /// Computed over the data field.
    pub computed: u16,
    /// Whether they agree.
    pub ok: bool,
}

/// UDP channel header.
#[derive(Clone, Debug, Serialize)]
pub struct UdpJson {
    /// Declared length.
    pub length: u16,
    /// Channel packet id.
    pub packet_id: u16,
    /// Packet type (0x01 normally).
    pub packet_type: u8,
    /// AVL packet id.
    pub avl_packet_id: u8,
}

/// One AVL record. `Io` holds the IO elements: the JSON model's (the default) when written; a
/// reader that does not need them reads [`serde::de::IgnoredAny`] (the HTTP API's stored
/// records, [`crate::api::PositionJson`], embed this type).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// Field by field (not the container's `default`): the same for serde, and utoipa's
// derive cannot name `Self::default()` of a generic type.
#[serde(bound(deserialize = "Io: Deserialize<'de> + Default"))]
pub struct RecordJson<Io = Vec<IoJson>> {
    /// Milliseconds since 1970 UTC.
    #[serde(default)]
    pub timestamp_ms: u64,
    /// ISO 8601 UTC.
    #[serde(default)]
    pub time: String,
    /// 0–3.
    #[serde(default)]
    pub priority: u8,
    /// Degrees, west negative.
    #[serde(default)]
    pub longitude: f64,
    /// Degrees, south negative.
    #[serde(default)]
    pub latitude: f64,
    /// Metres.
    #[serde(default)]
    pub altitude: i16,
    /// Degrees from north.
    #[serde(default)]
    pub angle: u16,
    /// Visible satellites.
    #[serde(default)]
    pub satellites: u8,
    /// km/h.
    #[serde(default)]
    pub speed: u16,
    /// Whether the position is a fix worth plotting.
    #[serde(default)]
    pub valid: bool,
    /// IO id that triggered the record, 0 for none.
    #[serde(default)]
    pub event_id: u16,
    /// Codec 16 generation type.
    #[serde(default)]
    pub generation_type: Option<u8>,
    /// IO elements.
    #[serde(default)]
    pub io: Io,
}

/// One IO element.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IoJson {
    /// IO id.
    pub id: u16,
    /// Bytes on the wire.
    pub size: usize,
    /// Fixed-size values: the unsigned integer on the wire (JS: BigInt above 2^53).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "exact_u64")]
    pub raw: Option<u64>,
    /// Variable-length values: lowercase hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hex: Option<String>,
    /// Name from the IO catalogue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'static str>,
    /// Value with sign and multiplier applied; text for ASCII, hex for HEX types.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Value>))]
    pub value: Option<IoValueView>,
    /// Unit, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<&'static str>,
}

/// One command message (also read back: the web UI reads a command's answer as this type).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct MessageJson {
    /// 5 command, 6 response, 17 nACK …
    #[serde(rename = "type")]
    pub kind: u8,
    /// The payload as text, when it is text.
    pub text: Option<String>,
    /// The payload as hex.
    pub payload_hex: String,
    /// Codec 13/15 timestamp, seconds.
    pub timestamp_s: Option<u32>,
    /// Codec 14/15 IMEI.
    pub imei: Option<String>,
}

/// A warning.
#[derive(Clone, Debug, Serialize)]
pub struct WarningJson {
    /// Stable snake_case kind.
    pub kind: &'static str,
    /// Offset from the start of the input.
    pub offset: usize,
    /// What, where, why.
    pub message: String,
}

/// A packet or the error that stopped decoding: one item of the CLI's output.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum ItemJson {
    /// A decoded packet.
    Packet(PacketJson),
    /// `{"error": {...}}`.
    Error(ErrorJson),
}

impl ItemJson {
    /// JSON for a decoding result.
    pub fn new(result: &Result<Packet, DecodeError>, opts: &JsonOptions) -> Self {
        match result {
            Ok(p) => Self::Packet(PacketJson::new(p, opts)),
            Err(e) => Self::Error(ErrorJson::from(e)),
        }
    }
}

/// `{"error": {...}}`.
#[derive(Clone, Debug, Serialize)]
pub struct ErrorJson {
    /// The error.
    pub error: ErrorBody,
}

/// The error's fields.
#[derive(Clone, Debug, Serialize)]
pub struct ErrorBody {
    /// Stable snake_case kind.
    pub kind: &'static str,
    /// Offset from the start of the input.
    pub offset: usize,
    /// The protocol field being read.
    pub field: &'static str,
    /// What, where and why.
    pub message: String,
}

impl From<&DecodeError> for ErrorJson {
    fn from(e: &DecodeError) -> Self {
        Self {
            error: ErrorBody {
                kind: e.code(),
                offset: e.offset,
                field: e.field_name(),
                message: alloc::format!("{e}"),
            },
        }
    }
}

/// Hex text errors: `field` is `"hex"` and `offset` a character offset in the text.
impl From<&HexError> for ErrorJson {
    fn from(e: &HexError) -> Self {
        Self {
            error: ErrorBody {
                kind: e.code(),
                offset: e.offset,
                field: "hex",
                message: alloc::format!("{e}"),
            },
        }
    }
}

impl From<&Warning> for WarningJson {
    fn from(w: &Warning) -> Self {
        Self {
            kind: w.code(),
            offset: w.offset,
            message: w.message.clone(),
        }
    }
}

/// Numbers above 2^53 lose precision as JSON doubles; as u128 they stay exact in serde_json and
/// become a BigInt through serde-wasm-bindgen.
fn exact_u64<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match *v {
        Some(n) if n > (1u64 << 53) => s.serialize_u128(u128::from(n)),
        Some(n) => s.serialize_u64(n),
        None => s.serialize_none(),
    }
}

impl PacketJson {
    /// The JSON view of a packet.
    pub fn new(p: &Packet, opts: &JsonOptions) -> Self {
        let model = opts.model.as_deref();
        let (records, messages) = match &p.content {
            Content::Avl(d) => (
                Some(
                    d.records
                        .iter()
                        .map(|r| RecordJson::new(r, model))
                        .collect(),
                ),
                None,
            ),
            Content::Command(c) => (
                None,
                Some(c.messages.iter().map(MessageJson::new).collect()),
            ),
            _ => (None, None),
        };
        Self {
            kind: p.kind(),
            transport: p.transport.kind(),
            codec: p.codec().map(|c| c.name()),
            codec_id: p.codec().map(|c| c.id()),
            imei: p.imei().map(|i| String::from(i.as_str())),
            crc: p.crc().map(|c| CrcJson {
                received: c.received,
                computed: c.computed,
                ok: c.ok(),
            }),
            udp: p.udp().map(|u| UdpJson {
                length: u.length,
                packet_id: u.packet_id,
                packet_type: u.packet_type,
                avl_packet_id: u.avl_packet_id,
            }),
            records,
            messages,
            ack: p.ack().map(|a| crate::hex::encode(&a)),
            warnings: p.warnings.iter().map(WarningJson::from).collect(),
            offset: p.offset,
            length: p.len,
        }
    }
}

impl RecordJson {
    /// The JSON view of a record, IO named for `model`.
    pub fn new(r: &AvlRecord, model: Option<&str>) -> Self {
        Self {
            timestamp_ms: r.timestamp_ms,
            time: crate::time::iso8601(r.timestamp_ms),
            priority: r.priority.0,
            longitude: r.gps.longitude_deg(),
            latitude: r.gps.latitude_deg(),
            altitude: r.gps.altitude,
            angle: r.gps.angle,
            satellites: r.gps.satellites,
            speed: r.gps.speed,
            valid: r.gps.has_fix(),
            event_id: r.event_id,
            generation_type: r.generation_type.map(|g| g.0),
            io: r.io.iter().map(|e| IoJson::new(e, model)).collect(),
        }
    }
}

impl IoJson {
    /// The JSON view of an IO element, named for `model`.
    pub fn new(e: &IoElement, model: Option<&str>) -> Self {
        Self::with_info(e, io_catalog::lookup(e.id, model))
    }

    /// The JSON view of an IO element with its catalogue entry already looked up (`None`: not
    /// in the catalogue), for callers that cache lookups (the npm package).
    pub fn with_info(e: &IoElement, info: Option<io_catalog::IoInfo>) -> Self {
        let (raw, hex, value) = match &e.value {
            IoValue::Bytes(b) => (
                None,
                Some(crate::hex::encode(b)),
                info.as_ref().map(|i| i.value_bytes(b)),
            ),
            v => {
                let raw = v.raw().unwrap_or_default();
                (
                    Some(raw),
                    None,
                    info.as_ref().map(|i| i.value(v.size(), raw)),
                )
            }
        };
        Self {
            id: e.id,
            size: e.value.size(),
            raw,
            hex,
            name: info.as_ref().map(|i| i.name),
            value,
            unit: info.and_then(|i| i.unit),
        }
    }
}

impl MessageJson {
    /// The JSON view of a command message.
    pub fn new(m: &CommandMessage) -> Self {
        Self {
            kind: m.kind,
            text: m.text().map(String::from),
            payload_hex: crate::hex::encode(&m.payload),
            timestamp_s: m.timestamp_s,
            imei: m.imei_digits(),
        }
    }
}
