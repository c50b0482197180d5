//! Every byte in words: what a traced [`Span`] is and what its bytes mean, for the playground's
//! byte map (and anyone else who shows packets to people). The shells render these texts; the
//! protocol knowledge behind them stays here.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::command::MessageType;
use crate::composite::sensor::mac_text;
use crate::composite::{
    beacon, Beacon, BeaconId, CompositeKind, EyeData, Parameter, SensorListKind,
};
use crate::data::Content;
use crate::field::{Field, SpanKind};
use crate::io_catalog::{self, IoValueView};
use crate::packet::Packet;
use crate::reader::Span;

/// A span explained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// Where the bytes belong: `"Record 2 · IO 66 External Voltage · IO value"`.
    pub label: String,
    /// What they say: `"24.079 V (raw 24079)"`.
    pub value: String,
    /// The broad class of the field, for colouring.
    pub kind: SpanKind,
}

/// Explain the span `span` whose bytes are `raw`, found in `packet` (the packet that contains
/// it, when decoding got that far), naming IO elements for `model`.
///
/// ```
/// use fleetview::{annotate, explain::explain, DecodeOptions, Field};
/// let bytes = fleetview::hex::decode("000F333536333037303432343431303133").unwrap();
/// let (spans, packets) = annotate(&bytes, &DecodeOptions::default());
/// let imei = spans.iter().find(|s| s.field == Field::Imei).unwrap();
/// let raw = &bytes[imei.offset..imei.offset + imei.len];
/// let e = explain(imei, raw, packets[0].as_ref().ok(), None);
/// assert_eq!((e.label.as_str(), e.value.as_str()), ("IMEI", "IMEI 356307042441013"));
/// ```
pub fn explain(
    span: &Span,
    raw: &[u8],
    packet: Option<&Packet>,
    model: Option<&str>,
) -> Explanation {
    Explanation {
        label: label(span, raw, packet, model),
        value: value(span, raw, packet, model),
        kind: span.field.kind(),
    }
}

/// The field's name for people: `"data field length"` → `"Data field length"`, acronyms kept.
pub fn title(field: Field) -> String {
    let words: Vec<&str> = field
        .name()
        .split(' ')
        .map(|w| match w {
            "io" => "IO",
            "crc" => "CRC",
            "imei" => "IMEI",
            "avl" => "AVL",
            "id" => "ID",
            "gps" => "GPS",
            other => other,
        })
        .collect();
    let joined = words.join(" ");
    let mut c = joined.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn be_uint(raw: &[u8]) -> Option<u64> {
    (raw.len() <= 8).then(|| raw.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

fn spaced_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn io_name(id: u16, model: Option<&str>) -> String {
    io_catalog::lookup(id, model)
        .map(|i| i.name.to_string())
        .unwrap_or_else(|| "not in the catalogue".to_string())
}

fn label(span: &Span, raw: &[u8], packet: Option<&Packet>, model: Option<&str>) -> String {
    let mut parts = Vec::new();
    if let (Some(r), Some(p)) = (span.record, packet) {
        let what = match p.content {
            Content::Command(_) => "Message",
            _ => "Record",
        };
        parts.push(format!("{what} {}", r + 1));
    }
    if let Some(id) = span.io_id {
        parts.push(format!("IO {id} {}", io_name(id, model)));
    }
    if let Some(i) = span.item {
        let what = if span.field.kind() == SpanKind::Beacon {
            "Beacon"
        } else {
            "Sensor"
        };
        parts.push(format!("{what} {}", u32::from(i) + 1));
    }
    match (span.field, raw.first()) {
        // "Beacon 2" says it all.
        (Field::Beacon, _) => {}
        (Field::SensorParameter, Some(&id)) => {
            parts.push(format!("Parameter {id} {}", Parameter::name(id)));
        }
        _ => parts.push(title(span.field)),
    }
    parts.join(" · ")
}

fn value(span: &Span, raw: &[u8], packet: Option<&Packet>, model: Option<&str>) -> String {
    let n = be_uint(raw).unwrap_or(0);
    let record = match (span.record, packet) {
        (Some(i), Some(p)) => p.records().get(i as usize),
        _ => None,
    };
    let message = match (span.record, packet.map(|p| &p.content)) {
        (Some(i), Some(Content::Command(c))) => c.messages.get(i as usize),
        _ => None,
    };
    match span.field {
        Field::Preamble => format!("0x{n:08x}: four zero bytes open every TCP data frame"),
        Field::DataFieldLength => format!("{n} bytes from the codec id to the second count"),
        Field::DataField | Field::Data => format!("{} bytes of data", raw.len()),
        Field::KeepAlive => "0xFF: the device keeps the TCP connection open; no answer".to_string(),
        Field::CodecId => match packet.and_then(Packet::codec) {
            Some(c) => format!("0x{n:02x}: Codec {}", c.name()),
            None => format!("0x{n:02x}"),
        },
        Field::NumberOfData1 | Field::NumberOfData2 => format!("{n} records"),
        Field::Quantity1 | Field::Quantity2 => format!("{n} messages"),
        Field::Timestamp | Field::TimestampAndPriority => match record {
            Some(r) => format!(
                "{} (UTC), {} ms since 1970",
                crate::time::iso8601(r.timestamp_ms),
                r.timestamp_ms
            ),
            None => n.to_string(),
        },
        Field::Priority => {
            let name = crate::avl::Priority(n as u8)
                .name()
                .unwrap_or("out of range");
            format!("{n} ({name})")
        }
        Field::Longitude | Field::Latitude => match record {
            Some(r) => {
                let lon = span.field == Field::Longitude;
                let deg = if lon {
                    r.gps.longitude_deg()
                } else {
                    r.gps.latitude_deg()
                };
                let hemi = match (lon, deg < 0.0) {
                    (true, false) => "E",
                    (true, true) => "W",
                    (false, false) => "N",
                    (false, true) => "S",
                };
                format!(
                    "{:.7}° {hemi}{}",
                    deg.abs(),
                    if r.gps.has_fix() { "" } else { " (no fix)" }
                )
            }
            None => n.to_string(),
        },
        Field::Altitude => format!("{} m", n as u16 as i16),
        Field::Angle => match raw.len() {
            // Codec 7: one byte in units of 360/256 degrees.
            1 => format!("{}° from north", record.map_or(n, |r| r.gps.angle.into())),
            _ => format!("{n}° from north"),
        },
        Field::Satellites => format!("{n} visible{}", if n == 0 { " (no fix)" } else { "" }),
        Field::Speed => format!("{n} km/h"),
        Field::EventIoId => match n {
            0 => "0: not event-triggered (periodic record)".to_string(),
            id => format!("{id}: {}", io_name(id as u16, model)),
        },
        Field::GenerationType => {
            let name = crate::avl::GenerationType(n as u8)
                .name()
                .unwrap_or("out of range");
            format!("{n} ({name})")
        }
        Field::IoId => format!("{n}: {}", io_name(n as u16, model)),
        Field::IoLength => format!("{n} bytes follow"),
        Field::IoValue => io_value(span, raw, n, model),
        Field::IoCount
        | Field::IoCount1
        | Field::IoCount2
        | Field::IoCount4
        | Field::IoCount8
        | Field::IoCountVariable => format!("{n} IO elements"),
        Field::Crc => match packet.and_then(Packet::crc) {
            Some(c) if c.ok() => format!(
                "0x{:04x}: matches the CRC-16/IBM computed over the data field",
                c.received
            ),
            Some(c) => format!(
                "received 0x{:04x}, computed 0x{:04x}: MISMATCH",
                c.received, c.computed
            ),
            None => format!("0x{n:08x}"),
        },
        Field::ImeiLength => format!("{n} digits follow"),
        Field::Imei => format!("IMEI {}", String::from_utf8_lossy(raw)),
        Field::MessageImei => match message.and_then(|m| m.imei_digits()) {
            Some(d) => format!("IMEI {d} (BCD)"),
            None => spaced_hex(raw),
        },
        Field::Length => format!("{n} bytes follow"),
        Field::PacketId => format!("0x{n:04x}: echoed in the ack"),
        Field::PacketType => format!(
            "0x{n:02x}{}",
            if n == 1 {
                " (no separate channel ack)"
            } else {
                " (asks for a channel ack)"
            }
        ),
        Field::AvlPacketId => format!("0x{n:02x}: echoed in the ack"),
        Field::MessageType => {
            format!("0x{n:02x}: {}", MessageType(n as u8).description())
        }
        Field::MessageSize => format!("{n} bytes follow"),
        Field::MessageTimestamp => format!("{} (UTC)", crate::time::iso8601(n * 1000)),
        Field::MessagePayload => match core::str::from_utf8(raw) {
            Ok(t) if !t.chars().any(|c| c.is_control() && c != '\n' && c != '\r') => {
                format!("\"{t}\"")
            }
            _ => "binary payload".to_string(),
        },
        Field::DataPart => format!("part {} of {}", n >> 4, n & 0x0f),
        Field::Beacon => beacon_text(raw),
        Field::SensorListHeader => format!("{n}: protocol version"),
        Field::SensorLength => format!("{n} bytes of parameters follow"),
        Field::SensorParameter => parameter_text(span, raw),
        Field::TrailingBytes => format!(
            "{} bytes after the last field (tolerated in lenient mode)",
            raw.len()
        ),
        _ => match be_uint(raw) {
            Some(v) => v.to_string(),
            None => format!("{} bytes", raw.len()),
        },
    }
}

fn io_value(span: &Span, raw: &[u8], n: u64, model: Option<&str>) -> String {
    let info = span.io_id.and_then(|id| io_catalog::lookup(id, model));
    let view = match (&info, raw.len()) {
        (Some(i), 1 | 2 | 4 | 8) => Some(i.value(raw.len(), n)),
        (Some(i), _) => Some(i.value_bytes(raw)),
        (None, _) => None,
    };
    match (view, info) {
        (Some(v), Some(i)) => {
            let shown = match &v {
                IoValueView::Text(t) => format!("\"{t}\""),
                other => other.to_string(),
            };
            let unit = i.unit.map(|u| format!(" {u}")).unwrap_or_default();
            if raw.len() <= 8 {
                format!("{shown}{unit} (raw {n})")
            } else {
                format!("{shown}{unit}")
            }
        }
        _ if raw.len() <= 8 => format!("raw {n} (id not in the catalogue)"),
        _ => "variable-length value (id not in the catalogue)".to_string(),
    }
}

/// A beacon of IO 385 in words: `iBeacon e2c56db5-…, major 1, minor 2 · RSSI -60 dBm`.
fn beacon_text(raw: &[u8]) -> String {
    let Ok((b, _)) = Beacon::decode(raw) else {
        return spaced_hex(raw);
    };
    let mut parts = Vec::new();
    parts.push(match b.id {
        BeaconId::IBeacon { uuid, major, minor } => format!(
            "iBeacon {}, major {major}, minor {minor}",
            beacon::uuid_text(&uuid)
        ),
        BeaconId::Eddystone {
            namespace,
            instance,
        } => format!(
            "Eddystone namespace {}, instance {}",
            crate::hex::encode(&namespace),
            crate::hex::encode(&instance)
        ),
    });
    if let Some(r) = b.rssi {
        parts.push(format!("RSSI {r} dBm"));
    }
    if let Some(v) = b.battery_mv {
        parts.push(format!("battery {v} mV"));
    }
    if let Some(t) = b.temperature_c() {
        parts.push(format!("{t:.2} °C"));
    }
    parts.join(" · ")
}

/// The values an EYE flags byte announced, in words.
fn eye_text(e: &EyeData) -> String {
    let mut parts = Vec::new();
    if let Some(t) = e.temperature {
        parts.push(format!("{:.2} °C", f64::from(t) / 100.0));
    }
    if let Some(h) = e.humidity {
        parts.push(format!("humidity {h} %"));
    }
    if let Some(m) = e.magnet {
        parts.push(format!(
            "magnet {}",
            if m { "detected" } else { "not detected" }
        ));
    }
    if let (Some(moving), Some(count)) = (e.moving(), e.movement_count()) {
        parts.push(format!(
            "{}, {count} movements",
            if moving { "moving" } else { "still" }
        ));
    }
    if let Some((pitch, roll)) = e.angle {
        parts.push(format!("pitch {pitch}°, roll {roll}°"));
    }
    if e.low_battery {
        parts.push("low battery".to_string());
    }
    if let Some(mv) = e.battery_mv() {
        parts.push(format!("battery {mv} mV"));
    }
    if parts.is_empty() {
        "EYE flags: nothing announced".to_string()
    } else {
        format!("EYE: {}", parts.join(", "))
    }
}

/// A sensor parameter (`id · length · value`) in words.
fn parameter_text(span: &Span, raw: &[u8]) -> String {
    let Some((&id, [_, value @ ..])) = raw.split_first() else {
        return spaced_hex(raw);
    };
    let kind = match span.io_id.and_then(CompositeKind::of) {
        Some(CompositeKind::Sensors(k)) => k,
        _ => SensorListKind::Eye,
    };
    let mut one = alloc::vec![id, value.len() as u8];
    one.extend_from_slice(value);
    // One parameter in a sensor of its own: the list decoder reads it.
    let mut list = alloc::vec![0, one.len() as u8];
    list.extend_from_slice(&one);
    let p = crate::composite::SensorList::decode(&list, kind)
        .ok()
        .and_then(|mut l| l.sensors.pop())
        .and_then(|mut s| s.parameters.pop());
    let Some(p) = p else {
        return format!("{} bytes: {}", value.len(), spaced_hex(value));
    };
    let flag = |v: u8| if v != 0 { "yes" } else { "no" };
    match p {
        Parameter::Rssi(v) => format!("{v} dBm"),
        Parameter::Id(v) => crate::hex::encode(&v),
        Parameter::Advertisement(a) => match a.eye() {
            Some(e) => format!("advertisement, {}", eye_text(&e)),
            None => format!("advertisement: {}", spaced_hex(&a.0)),
        },
        Parameter::Eye(e) => eye_text(&e),
        Parameter::Name(n) => format!("\"{n}\""),
        Parameter::Temperature(v) => format!("{:.2} °C", f64::from(v) / 100.0),
        Parameter::Humidity(v) => format!("{v} %"),
        Parameter::Magnet(v) | Parameter::Movement(v) | Parameter::LowBattery(v) => {
            flag(v).to_string()
        }
        Parameter::MovementCount(v) | Parameter::MagnetCount(v) => v.to_string(),
        Parameter::Pitch(v) => format!("{v}°"),
        Parameter::Roll(v) => format!("{v}°"),
        Parameter::BatteryVoltage(v) => format!("{v} mV"),
        Parameter::Mac(m) => mac_text(&m),
        Parameter::Unknown { value, .. } => {
            format!(
                "unknown parameter, {} bytes: {}",
                value.len(),
                spaced_hex(&value)
            )
        }
    }
}
