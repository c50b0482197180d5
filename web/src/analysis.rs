//! What the page shows for one input: the bytes, every byte's label, the packets and the error.
//! Pure: no DOM, so it is unit-tested natively. All protocol work is core's (`fleetview::annotate`);
//! this module only arranges core's answers for the views.

use fleetview::explain::explain;
use fleetview::hex::HexError;
use fleetview::json::{ItemJson, JsonOptions, PacketJson};
use fleetview::{Content, DecodeError, DecodeOptions, Field, Packet, Span};

/// Bytes rendered in the hex view at most; the rest is summarised. Keeps the DOM small when a
/// large binary capture is dropped (the table and map still show every packet).
pub const HEX_VIEW_LIMIT: usize = 16 * 1024;

/// The decoded view of one input.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    /// The device model the IO names are for.
    pub model: Option<String>,
    /// Lenient decoding.
    pub lenient: bool,
    /// The input bytes.
    pub bytes: Vec<u8>,
    /// Labelled byte ranges, in input order, as core traced them.
    pub spans: Vec<Span>,
    /// Packets decoded, in input order.
    pub packets: Vec<Packet>,
    /// The packets the labels come from: `packets`, or after a strict error the packets of a
    /// lenient pass (the same up to the error, plus the one that failed strictly).
    pub label_packets: Vec<Packet>,
    /// The JSON model of each packet, IO named for the chosen model.
    pub json: Vec<PacketJson>,
    /// The error that stopped decoding, if any.
    pub error: Option<ErrorView>,
    /// The hex text could not be read (bad character, odd length): no bytes to show.
    pub input_error: Option<ErrorView>,
}

/// `PacketJson` is derived from the packets and the model, so these decide equality (Yew
/// compares props to skip re-rendering).
impl PartialEq for Analysis {
    fn eq(&self, other: &Self) -> bool {
        self.model == other.model
            && self.lenient == other.lenient
            && self.bytes == other.bytes
            && self.input_error == other.input_error
            && self.spans == other.spans
            && self.packets == other.packets
            && self.label_packets == other.label_packets
            && self.error == other.error
    }
}

/// An error, ready to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorView {
    /// Stable snake_case kind (`crc_mismatch`).
    pub kind: &'static str,
    /// Byte offset (for hex text errors: character offset in the text).
    pub offset: usize,
    /// The protocol field being read.
    pub field: &'static str,
    /// What, where and why (core's `Display`).
    pub message: String,
    /// Lenient decoding would decode past it.
    pub lenient_recovers: bool,
}

impl From<&DecodeError> for ErrorView {
    fn from(e: &DecodeError) -> Self {
        Self {
            kind: e.code(),
            offset: e.offset,
            field: e.field_name(),
            message: e.to_string(),
            lenient_recovers: e.kind.is_tolerated_when_lenient(),
        }
    }
}

impl From<&HexError> for ErrorView {
    fn from(e: &HexError) -> Self {
        Self {
            kind: e.code(),
            offset: e.offset,
            field: "hex",
            message: e.to_string(),
            lenient_recovers: false,
        }
    }
}

/// One contiguous run of bytes in the hex view: a traced span, a gap inside a packet that core
/// did not label field by field (a keep-alive byte), or bytes after an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Offset in the input.
    pub offset: usize,
    /// Number of bytes.
    pub len: usize,
    /// Index into [`Analysis::spans`], if the bytes were traced.
    pub span: Option<usize>,
    /// Index of the packet the bytes belong to.
    pub packet: Option<usize>,
    /// The byte where decoding failed lies here.
    pub error: bool,
}

/// What the detail panel shows about a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldView {
    /// "Record 2 · IO 66 External Voltage · value".
    pub label: String,
    /// Offsets, e.g. "bytes 10–13".
    pub range: String,
    /// Raw bytes as spaced hex.
    pub raw: String,
    /// The decoded value in words.
    pub value: String,
}

impl Analysis {
    /// Decode hex text as people paste it.
    pub fn from_text(text: &str, lenient: bool, model: Option<&str>) -> Self {
        if text.trim().is_empty() {
            return Self::default();
        }
        match fleetview::hex::decode(text) {
            Ok(bytes) => Self::from_bytes(bytes, lenient, model),
            Err(e) => Self {
                input_error: Some(ErrorView::from(&e)),
                ..Self::default()
            },
        }
    }

    /// Decode bytes (a binary capture, or the hex text once read).
    pub fn from_bytes(bytes: Vec<u8>, lenient: bool, model: Option<&str>) -> Self {
        if bytes.is_empty() {
            return Self::default();
        }
        let opts = DecodeOptions {
            lenient,
            ..DecodeOptions::default()
        };
        let (mut spans, results) = fleetview::annotate(&bytes, &opts);
        let json_opts = json_options(model);
        let mut packets = Vec::new();
        let mut error = None;
        for r in results {
            match r {
                Ok(p) => packets.push(p),
                Err(e) => error = Some(ErrorView::from(&e)),
            }
        }
        let json = packets
            .iter()
            .map(|p| PacketJson::new(p, &json_opts))
            .collect();
        // A strict failure (a CRC check, say) stops core before it labels the packet's fields.
        // Label the bytes from a lenient pass instead, so every byte still has a name and the
        // offending byte sits in its field; the table and the error stay strict.
        let mut label_packets = packets.clone();
        if error.is_some() && !lenient {
            let (lenient_spans, lenient_results) = fleetview::annotate(
                &bytes,
                &DecodeOptions {
                    lenient: true,
                    ..opts
                },
            );
            let reach = |sp: &[Span]| sp.iter().map(|s| s.offset + s.len).max().unwrap_or(0);
            if reach(&lenient_spans) > reach(&spans) {
                spans = lenient_spans;
                label_packets = lenient_results.into_iter().filter_map(Result::ok).collect();
            }
        }
        Self {
            model: model.map(str::to_string),
            lenient,
            bytes,
            spans,
            packets,
            label_packets,
            json,
            error,
            input_error: None,
        }
    }

    /// Nothing to show.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.input_error.is_none()
    }

    /// The packet that contains `offset`.
    pub fn packet_at(&self, offset: usize) -> Option<usize> {
        self.label_packets
            .iter()
            .position(|p| offset >= p.offset && offset < p.offset + p.len)
    }

    /// The hex view's runs: every byte up to [`HEX_VIEW_LIMIT`] belongs to exactly one segment.
    pub fn segments(&self) -> Vec<Segment> {
        let end = self.bytes.len().min(HEX_VIEW_LIMIT);
        let mut out = Vec::new();
        let mut pos = 0;
        let mut spans: Vec<(usize, &Span)> = self.spans.iter().enumerate().collect();
        spans.sort_by_key(|(_, s)| s.offset);
        let push_gap = |out: &mut Vec<Segment>, from: usize, to: usize| {
            // Split gaps at packet boundaries so each run is labelled by its packet.
            let mut at = from;
            while at < to {
                let packet = self.packet_at(at);
                let stop = match packet {
                    Some(i) => (self.label_packets[i].offset + self.label_packets[i].len).min(to),
                    None => self
                        .label_packets
                        .iter()
                        .map(|p| p.offset)
                        .filter(|&o| o > at)
                        .min()
                        .unwrap_or(to)
                        .min(to),
                };
                out.push(Segment {
                    offset: at,
                    len: stop - at,
                    span: None,
                    packet,
                    error: false,
                });
                at = stop;
            }
        };
        for (i, s) in spans {
            if s.offset >= end {
                break;
            }
            if s.offset < pos || s.len == 0 {
                continue; // nested or empty trace entries: the outer span already labels them
            }
            if s.offset > pos {
                push_gap(&mut out, pos, s.offset);
            }
            let len = s.len.min(end - s.offset);
            out.push(Segment {
                offset: s.offset,
                len,
                span: Some(i),
                packet: self.packet_at(s.offset),
                error: false,
            });
            pos = s.offset + len;
        }
        if pos < end {
            push_gap(&mut out, pos, end);
        }
        if let Some(err) = &self.error {
            mark_error(&mut out, err.offset.min(self.bytes.len().saturating_sub(1)));
        }
        out
    }

    /// Segments of one record (for highlighting the bytes of a selected table row).
    pub fn record_spans(&self, packet: usize, record: u32) -> Vec<usize> {
        let Some(p) = self.label_packets.get(packet) else {
            return Vec::new();
        };
        self.spans
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.record == Some(record) && s.offset >= p.offset && s.offset < p.offset + p.len
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Name, raw bytes and decoded value of a segment.
    pub fn describe(&self, seg: &Segment, model: Option<&str>) -> FieldView {
        // A run split around the error byte still describes its whole field.
        let (offset, len) = match seg.span.and_then(|i| self.spans.get(i)) {
            Some(s) if s.offset + s.len <= self.bytes.len() => (s.offset, s.len),
            _ => (seg.offset, seg.len),
        };
        let seg = &Segment {
            offset,
            len,
            ..seg.clone()
        };
        let raw = &self.bytes[seg.offset..seg.offset + seg.len];
        let range = if seg.len == 1 {
            format!("byte {}", seg.offset)
        } else {
            format!(
                "bytes {}–{} ({} bytes)",
                seg.offset,
                seg.offset + seg.len - 1,
                seg.len
            )
        };
        let raw_hex = fleetview::hex::encode_spaced(&raw[..raw.len().min(64)])
            + if raw.len() > 64 { " …" } else { "" };
        let packet = seg.packet.and_then(|i| self.label_packets.get(i));
        let Some(span) = seg.span.and_then(|i| self.spans.get(i)) else {
            let (label, value) = match packet.map(|p| &p.content) {
                Some(Content::KeepAlive) => {
                    let span = Span {
                        offset: seg.offset,
                        len: 1,
                        field: Field::KeepAlive,
                        record: None,
                        io_id: None,
                        item: None,
                    };
                    let e = explain(&span, raw, packet, model);
                    (e.label, e.value)
                }
                Some(_) => ("Packet bytes".to_string(), String::new()),
                None => (
                    "Not decoded".to_string(),
                    match &self.error {
                        Some(e) if seg.offset >= e.offset => {
                            "after the error: decoding stopped".to_string()
                        }
                        _ => "not part of a packet".to_string(),
                    },
                ),
            };
            return FieldView {
                label,
                range,
                raw: raw_hex,
                value,
            };
        };
        let e = explain(span, raw, packet, model);
        FieldView {
            label: e.label,
            range,
            raw: raw_hex,
            value: e.value,
        }
    }

    /// Every result as the JSON model (what the CLI prints), pretty.
    pub fn to_json(&self, model: Option<&str>) -> String {
        let opts = json_options(model);
        let mut items: Vec<ItemJson> = self
            .packets
            .iter()
            .map(|p| ItemJson::Packet(PacketJson::new(p, &opts)))
            .collect();
        if let Some(e) = &self.error {
            items.push(ItemJson::Error(fleetview::json::ErrorJson {
                error: fleetview::json::ErrorBody {
                    kind: e.kind,
                    offset: e.offset,
                    field: e.field,
                    message: e.message.clone(),
                },
            }));
        }
        serde_json::to_string_pretty(&items).unwrap_or_default()
    }

    /// The records with a fix, as a GeoJSON FeatureCollection: core's (one Point per record with
    /// its device and named IO values, one LineString per device track), as the CLI writes it.
    pub fn to_geojson(&self) -> String {
        let fc = fleetview::export::feature_collection(&self.packets, self.model.as_deref());
        serde_json::to_string_pretty(&fc).unwrap_or_default()
    }
}

fn json_options(model: Option<&str>) -> JsonOptions {
    JsonOptions {
        model: model.map(str::to_string),
    }
}

fn mark_error(segs: &mut Vec<Segment>, at: usize) {
    let Some(i) = segs
        .iter()
        .position(|s| at >= s.offset && at < s.offset + s.len)
    else {
        return;
    };
    let s = segs[i].clone();
    let mut parts = Vec::new();
    if at > s.offset {
        parts.push(Segment {
            len: at - s.offset,
            ..s.clone()
        });
    }
    parts.push(Segment {
        offset: at,
        len: 1,
        error: true,
        ..s.clone()
    });
    if at + 1 < s.offset + s.len {
        parts.push(Segment {
            offset: at + 1,
            len: s.offset + s.len - at - 1,
            ..s
        });
    }
    segs.splice(i..=i, parts);
}

/// Broad class of a field, for colouring the hex view (a CSS class).
pub fn category(field: Field) -> &'static str {
    field.kind().as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "000000000000003608010000016B40D8EA30010000000000000000000000000000000105021503010101425E0F01F10000601A014E0000000000000000010000C7CF";

    #[test]
    fn every_byte_is_in_exactly_one_segment() {
        for e in crate::examples::all() {
            let a = Analysis::from_text(&e.hex, e.lenient, None);
            let segs = a.segments();
            let mut pos = 0;
            for s in &segs {
                assert_eq!(s.offset, pos, "{}: gap or overlap at {pos}", e.id);
                assert!(s.len > 0);
                pos += s.len;
            }
            assert_eq!(pos, a.bytes.len(), "{}", e.id);
        }
    }

    #[test]
    fn describes_io_values_with_names_and_units() {
        let a = Analysis::from_text(T1, false, None);
        let segs = a.segments();
        let volt = segs
            .iter()
            .find(|s| {
                s.span.map(|i| (a.spans[i].field, a.spans[i].io_id))
                    == Some((Field::IoValue, Some(66)))
            })
            .unwrap();
        let v = a.describe(volt, None);
        assert_eq!(v.raw, "5e 0f");
        assert!(v.value.starts_with("24.079 V"), "{}", v.value);
        assert_eq!(v.label, "Record 1 · IO 66 External Voltage · IO value");
    }

    #[test]
    fn describes_each_beacon_and_sensor_parameter() {
        let hex = &crate::examples::by_id("beacons-8e").unwrap().hex;
        let a = Analysis::from_text(hex, false, None);
        let described = |field: Field, first: u8| {
            let seg = a
                .segments()
                .into_iter()
                .find(|s| {
                    s.span.is_some_and(|i| {
                        let sp = &a.spans[i];
                        sp.field == field && a.bytes[sp.offset] == first
                    })
                })
                .unwrap();
            a.describe(&seg, None)
        };
        let beacon = described(Field::Beacon, 0x27);
        assert_eq!(beacon.label, "Record 1 · IO 385 Beacon · Beacon 1");
        assert_eq!(
            beacon.value,
            "iBeacon e2c56db5-dffb-48d2-b060-d0f5a71096e0, major 1, minor 2 · RSSI -60 dBm · \
             battery 3048 mV · 21.50 °C"
        );
        let name = described(Field::SensorParameter, 5);
        assert_eq!(
            name.label,
            "Record 1 · IO 11317 EYE Sensor List · Sensor 1 · Parameter 5 name"
        );
        assert_eq!(name.value, "\"EYE_CARGO\"");
        let eye = described(Field::SensorParameter, 2);
        assert_eq!(
            eye.value,
            "EYE: -11.87 °C, humidity 41 %, moving, 17 movements, battery 2950 mV"
        );
    }

    #[test]
    fn a_corrupted_crc_marks_one_byte_and_says_why() {
        let bad = format!("{}00", &T1[..T1.len() - 2]);
        let a = Analysis::from_text(&bad, false, None);
        let err = a.error.clone().unwrap();
        assert_eq!(err.kind, "crc_mismatch");
        assert!(err.message.contains("at byte"), "{}", err.message);
        let marked: Vec<_> = a.segments().into_iter().filter(|s| s.error).collect();
        assert_eq!(marked.len(), 1);
        assert_eq!(marked[0].offset, err.offset);
        // The bytes keep their labels: the marked byte is the CRC's first byte, the body is traced.
        let v = a.describe(&marked[0], None);
        assert_eq!(v.label, "CRC");
        assert!(v.value.contains("MISMATCH"), "{}", v.value);
        assert!(a.segments().iter().filter(|s| s.span.is_none()).count() == 0);
        assert!(a.packets.is_empty() && a.json.is_empty());
    }

    #[test]
    fn bad_hex_reports_the_character() {
        let a = Analysis::from_text("00 0g", false, None);
        let e = a.input_error.unwrap();
        assert_eq!(e.kind, "invalid_hex");
        assert!(e.message.contains("at character 4"), "{}", e.message);
    }

    #[test]
    fn selecting_a_record_finds_its_bytes() {
        let a = Analysis::from_text(
            &crate::examples::by_id("tcp-8-two").unwrap().hex,
            false,
            None,
        );
        let spans = a.record_spans(0, 1);
        assert!(!spans.is_empty());
        assert!(spans.iter().all(|&i| a.spans[i].record == Some(1)));
    }

    #[test]
    fn geojson_has_a_point_per_fix_and_the_track() {
        let a = Analysis::from_bytes(crate::examples::route_frame(), false, None);
        let g: serde_json::Value = serde_json::from_str(&a.to_geojson()).unwrap();
        let features = g["features"].as_array().unwrap();
        assert_eq!(features.len(), 8); // 7 points + 1 line
        assert_eq!(features[7]["geometry"]["type"], "LineString");
    }
}
