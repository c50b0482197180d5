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
use crate::composite::{
    self, beacon, sensor, BeaconId, BeaconList, Composite, EyeData, Parameter, SensorList,
    ServingCell,
};
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
    /// The serving cell, when the record has cell tower IO elements (241, 206, 205, 636).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkJson>,
}

/// The serving cell of a record: what cell geolocation services take.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct NetworkJson {
    /// Mobile country code (IO 241), `null` without a valid operator code.
    pub mcc: Option<u16>,
    /// Mobile network code (IO 241).
    pub mnc: Option<u16>,
    /// 2 or 3: the digits of the MNC (IO 241 is MCC × 100 + MNC or MCC × 1000 + MNC).
    pub mnc_digits: Option<u8>,
    /// Location area code (IO 206).
    pub lac: Option<u16>,
    /// Cell id: IO 636 (UMTS/LTE), else IO 205 (GSM).
    pub cell_id: Option<u32>,
    /// GSM signal, 0–5 (IO 21).
    pub signal: Option<u8>,
}

impl NetworkJson {
    /// The serving cell of these IO elements, if they carry one.
    pub fn from_io<'a>(io: impl IntoIterator<Item = &'a IoElement>) -> Option<Self> {
        ServingCell::from_io(io).map(|c| Self {
            mcc: c.operator.map(|o| o.mcc),
            mnc: c.operator.map(|o| o.mnc),
            mnc_digits: c.operator.map(|o| o.mnc_digits),
            lac: c.lac,
            cell_id: c.cell_id,
            signal: c.signal,
        })
    }
}

/// A composite IO value decoded (`decoded` of an IO element).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum DecodedJson {
    /// IO 385: `{"part":1,"parts":1,"beacons":[…]}`.
    Beacons(BeaconListJson),
    /// IOs 548, 10828, 10829, 10831, 11317: `{"header":1,"beacons":[…]}`.
    Sensors(SensorListJson),
    /// IOs 256, 325: `{"vin":"…"}`.
    Vin {
        /// The VIN.
        vin: String,
    },
    /// IO 281: `{"codes":["P0101",…]}`.
    Codes {
        /// The fault codes.
        codes: Vec<String>,
    },
}

/// One part of the beacon list (IO 385).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BeaconListJson {
    /// This part's number, from 1.
    pub part: u8,
    /// The number of parts.
    pub parts: u8,
    /// The beacons.
    pub beacons: Vec<BeaconJson>,
}

/// A beacon of IO 385.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BeaconJson {
    /// `ibeacon` or `eddystone`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// iBeacon: the UUID, `e2c56db5-dffb-48d2-b060-d0f5a71096e0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// iBeacon: major.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub major: Option<u16>,
    /// iBeacon: minor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minor: Option<u16>,
    /// Eddystone: the namespace, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Eddystone: the instance, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// dBm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rssi: Option<i8>,
    /// mV.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub battery_mv: Option<u16>,
    /// °C.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<f64>,
}

/// A TLV sensor list.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SensorListJson {
    /// The first byte (protocol version).
    pub header: u8,
    /// One object per beacon.
    pub beacons: Vec<SensorJson>,
}

/// A beacon of a sensor list: its parameters by name. Units: `temperature_c` in °C,
/// `battery_mv` in mV, `humidity` in %, `pitch` and `roll` in degrees.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SensorJson {
    /// dBm (parameter 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rssi: Option<i8>,
    /// Beacon id, hex (1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// MAC address, `7c:d9:f4:01:02:03` (15).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Name (5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// °C (6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<f64>,
    /// % (7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub humidity: Option<u8>,
    /// Magnet detected (8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub magnet: Option<bool>,
    /// Moving (9).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub movement: Option<bool>,
    /// Movement count (10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub movement_count: Option<u16>,
    /// Degrees (11).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pitch: Option<i16>,
    /// Degrees (12).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roll: Option<i16>,
    /// Low battery (13).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low_battery: Option<bool>,
    /// mV (14).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub battery_mv: Option<u16>,
    /// Magnet trigger count (16).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub magnet_count: Option<u16>,
    /// IO 548: the raw advertisement, hex (2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertisement: Option<String>,
    /// The EYE values: parameter 2 of the EYE lists, or an EYE advertisement in IO 548.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eye: Option<EyeJson>,
    /// Parameters with ids this decoder does not know.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<UnknownParameterJson>,
}

/// What an EYE sensor's flags announce.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EyeJson {
    /// °C.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<f64>,
    /// %.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub humidity: Option<u8>,
    /// Magnet state, when the sensor has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub magnet: Option<bool>,
    /// Moving.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub movement: Option<bool>,
    /// Movement count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub movement_count: Option<u16>,
    /// Degrees.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pitch: Option<i16>,
    /// Degrees.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roll: Option<i16>,
    /// The battery is low.
    pub low_battery: bool,
    /// mV.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub battery_mv: Option<u16>,
}

/// A parameter with an unknown id.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnknownParameterJson {
    /// The parameter id.
    pub id: u8,
    /// Its value, hex.
    pub hex: String,
}

fn centi(v: i16) -> f64 {
    f64::from(v) / 100.0
}

impl DecodedJson {
    /// The decoded view of IO `id`'s value; `None` when the id has no composite layout or the
    /// value is malformed (decoding reported it as a warning).
    pub fn new(id: u16, value: &[u8]) -> Option<Self> {
        Some(match composite::decode(id, value)?.ok()? {
            Composite::Beacons(b) => Self::Beacons(BeaconListJson::from(&b)),
            Composite::Sensors(s) => Self::Sensors(SensorListJson::from(&s)),
            Composite::Vin(v) => Self::Vin { vin: v.0 },
            Composite::FaultCodes(c) => Self::Codes { codes: c.0 },
        })
    }
}

impl From<&BeaconList> for BeaconListJson {
    fn from(b: &BeaconList) -> Self {
        Self {
            part: b.part,
            parts: b.parts,
            beacons: b
                .beacons
                .iter()
                .map(|b| {
                    let mut j = BeaconJson {
                        kind: "ibeacon",
                        uuid: None,
                        major: None,
                        minor: None,
                        namespace: None,
                        instance: None,
                        rssi: b.rssi,
                        battery_mv: b.battery_mv,
                        temperature_c: b.temperature.map(centi),
                    };
                    match b.id {
                        BeaconId::IBeacon { uuid, major, minor } => {
                            j.uuid = Some(beacon::uuid_text(&uuid));
                            j.major = Some(major);
                            j.minor = Some(minor);
                        }
                        BeaconId::Eddystone {
                            namespace,
                            instance,
                        } => {
                            j.kind = "eddystone";
                            j.namespace = Some(crate::hex::encode(&namespace));
                            j.instance = Some(crate::hex::encode(&instance));
                        }
                    }
                    j
                })
                .collect(),
        }
    }
}

impl From<&EyeData> for EyeJson {
    fn from(e: &EyeData) -> Self {
        Self {
            temperature_c: e.temperature.map(centi),
            humidity: e.humidity,
            magnet: e.magnet,
            movement: e.moving(),
            movement_count: e.movement_count(),
            pitch: e.angle.map(|a| i16::from(a.0)),
            roll: e.angle.map(|a| a.1),
            low_battery: e.low_battery,
            battery_mv: e.battery_mv(),
        }
    }
}

impl From<&SensorList> for SensorListJson {
    fn from(s: &SensorList) -> Self {
        Self {
            header: s.header,
            beacons: s
                .sensors
                .iter()
                .map(|sensor| {
                    let mut j = SensorJson::default();
                    for p in &sensor.parameters {
                        match p {
                            Parameter::Rssi(v) => j.rssi = Some(*v),
                            Parameter::Id(v) => j.id = Some(crate::hex::encode(v)),
                            Parameter::Advertisement(a) => {
                                j.advertisement = Some(crate::hex::encode(&a.0));
                                j.eye = a.eye().as_ref().map(EyeJson::from);
                            }
                            Parameter::Eye(e) => j.eye = Some(EyeJson::from(e)),
                            Parameter::Name(n) => j.name = Some(n.clone()),
                            Parameter::Temperature(v) => j.temperature_c = Some(centi(*v)),
                            Parameter::Humidity(v) => j.humidity = Some(*v),
                            Parameter::Magnet(v) => j.magnet = Some(*v != 0),
                            Parameter::Movement(v) => j.movement = Some(*v != 0),
                            Parameter::MovementCount(v) => j.movement_count = Some(*v),
                            Parameter::Pitch(v) => j.pitch = Some(i16::from(*v)),
                            Parameter::Roll(v) => j.roll = Some(*v),
                            Parameter::LowBattery(v) => j.low_battery = Some(*v != 0),
                            Parameter::BatteryVoltage(v) => j.battery_mv = Some(*v),
                            Parameter::Mac(m) => j.mac = Some(sensor::mac_text(m)),
                            Parameter::MagnetCount(v) => j.magnet_count = Some(*v),
                            Parameter::Unknown { id, value } => {
                                j.unknown.push(UnknownParameterJson {
                                    id: *id,
                                    hex: crate::hex::encode(value),
                                })
                            }
                        }
                    }
                    j
                })
                .collect(),
        }
    }
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
    /// Composite values (beacons, sensors, VIN, fault codes) decoded; absent for other values
    /// and for a malformed one (its `hex` stays, and the packet has a warning).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decoded: Option<DecodedJson>,
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
            network: NetworkJson::from_io(&r.io),
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
        let (raw, hex, value, decoded) = match &e.value {
            IoValue::Bytes(b) => (
                None,
                Some(crate::hex::encode(b)),
                info.as_ref().map(|i| i.value_bytes(b)),
                DecodedJson::new(e.id, b),
            ),
            v => {
                let raw = v.raw().unwrap_or_default();
                (
                    Some(raw),
                    None,
                    info.as_ref().map(|i| i.value(v.size(), raw)),
                    None,
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
            decoded,
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
