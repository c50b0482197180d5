//! Records for GIS tools and spreadsheets: GeoJSON (RFC 7946, feature `serde`) and CSV.
//!
//! Both take decoded packets in stream order and attribute each record to a device: the IMEI of
//! a UDP datagram, or of the last login before a TCP frame.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use crate::avl::AvlRecord;
use crate::io_catalog::{self, IoValueView};
use crate::packet::{Content, Packet};

/// A record and the device that sent it, if known.
#[derive(Clone, Copy, Debug)]
pub struct DeviceRecord<'a> {
    /// IMEI, when the input said it (UDP header or an earlier login).
    pub imei: Option<&'a str>,
    /// The record.
    pub record: &'a AvlRecord,
}

/// Every record of `packets` with its device, in order.
pub fn device_records(packets: &[Packet]) -> Vec<DeviceRecord<'_>> {
    let mut login: Option<&str> = None;
    let mut out = Vec::new();
    for p in packets {
        if let Content::Imei(i) = &p.content {
            login = Some(i.as_str());
        }
        let imei = p.udp().map(|u| u.imei.as_str()).or(login);
        out.extend(
            p.records()
                .iter()
                .map(|record| DeviceRecord { imei, record }),
        );
    }
    out
}

/// The IO values of a record by name (`io<ID>` for ids the catalogue does not know for this
/// model), with sign and multiplier applied.
pub fn named_io(record: &AvlRecord, model: Option<&str>) -> Vec<(String, IoValueView)> {
    record
        .io
        .iter()
        .map(|e| {
            let info = io_catalog::lookup(e.id, model);
            let name = info
                .as_ref()
                .map_or_else(|| alloc::format!("io{}", e.id), |i| String::from(i.name));
            let value = match (&info, &e.value) {
                (Some(i), crate::avl::IoValue::Bytes(b)) => i.value_bytes(b),
                (Some(i), v) => i.value(v.size(), v.raw().unwrap_or_default()),
                (None, crate::avl::IoValue::Bytes(b)) => IoValueView::Hex(crate::hex::encode(b)),
                (None, v) => IoValueView::Uint(v.raw().unwrap_or_default()),
            };
            (name, value)
        })
        .collect()
}

/// CSV: one row per record, fixed columns then one column per IO name present (in order of
/// first appearance). RFC 4180 quoting.
pub fn csv(packets: &[Packet], model: Option<&str>) -> String {
    let rows = device_records(packets);
    let named: Vec<Vec<(String, IoValueView)>> =
        rows.iter().map(|r| named_io(r.record, model)).collect();
    let mut columns: Vec<&str> = Vec::new();
    for io in &named {
        for (name, _) in io {
            if !columns.contains(&name.as_str()) {
                columns.push(name);
            }
        }
    }
    let mut out = String::from(
        "imei,time,timestamp_ms,latitude,longitude,altitude,angle,satellites,speed,priority,event_id,valid",
    );
    for c in &columns {
        out.push(',');
        push_field(&mut out, c);
    }
    out.push_str("\r\n");
    for (row, io) in rows.iter().zip(&named) {
        let r = row.record;
        push_field(&mut out, row.imei.unwrap_or(""));
        let _ = write!(
            out,
            ",{},{},{},{},{},{},{},{},{},{},{}",
            crate::time::iso8601(r.timestamp_ms),
            r.timestamp_ms,
            r.gps.latitude_deg(),
            r.gps.longitude_deg(),
            r.gps.altitude,
            r.gps.angle,
            r.gps.satellites,
            r.gps.speed,
            r.priority.0,
            r.event_id,
            r.gps.has_fix()
        );
        for c in &columns {
            out.push(',');
            if let Some((_, v)) = io.iter().find(|(n, _)| n == c) {
                push_field(&mut out, &alloc::format!("{v}"));
            }
        }
        out.push_str("\r\n");
    }
    out
}

fn push_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

#[cfg(feature = "serde")]
pub use geojson::*;

#[cfg(feature = "serde")]
mod geojson {
    use super::*;
    use alloc::collections::BTreeMap;
    use serde::Serialize;

    /// An RFC 7946 FeatureCollection: one Point per record with a fix, one LineString per device
    /// track with two or more such points. Records without a fix are left out of the geometry and
    /// counted in `properties` (a foreign member, allowed by RFC 7946 § 6.1).
    #[derive(Clone, Debug, Serialize)]
    pub struct FeatureCollection {
        /// Always `"FeatureCollection"`.
        #[serde(rename = "type")]
        pub kind: &'static str,
        /// Points, then tracks.
        pub features: Vec<Feature>,
        /// Counts: records, plotted, without fix.
        pub properties: CollectionProperties,
    }

    /// Counts over the whole collection.
    #[derive(Clone, Debug, Serialize)]
    pub struct CollectionProperties {
        /// Records in the input.
        pub records: usize,
        /// Records with a fix, as Points.
        pub plotted: usize,
        /// Records without a fix (zero satellites or a 0,0 position), not in the geometry.
        pub without_fix: usize,
    }

    /// A Feature.
    #[derive(Clone, Debug, Serialize)]
    pub struct Feature {
        /// Always `"Feature"`.
        #[serde(rename = "type")]
        pub kind: &'static str,
        /// Point or LineString.
        pub geometry: Geometry,
        /// Record or track properties.
        pub properties: BTreeMap<String, Property>,
    }

    /// A geometry; positions are `[longitude, latitude]` (RFC 7946 § 3.1.1).
    #[derive(Clone, Debug, Serialize)]
    #[serde(tag = "type", content = "coordinates")]
    pub enum Geometry {
        /// One position.
        Point([f64; 2]),
        /// Two or more positions.
        LineString(Vec<[f64; 2]>),
    }

    /// A property value.
    #[derive(Clone, Debug, Serialize)]
    #[serde(untagged)]
    pub enum Property {
        /// Text.
        Text(String),
        /// Unsigned number.
        Uint(u64),
        /// Signed number.
        Int(i64),
        /// An IO value.
        Io(IoValueView),
        /// Yes or no.
        Bool(bool),
        /// Nothing.
        Null(Option<()>),
    }

    /// Build the collection from decoded packets (in stream order), IO named for `model`.
    pub fn feature_collection(packets: &[Packet], model: Option<&str>) -> FeatureCollection {
        let rows = device_records(packets);
        let mut features = Vec::new();
        let mut tracks: BTreeMap<&str, (Vec<[f64; 2]>, usize)> = BTreeMap::new();
        let mut without_fix = 0;
        for row in &rows {
            let r = row.record;
            let device = row.imei.unwrap_or("");
            let track = tracks.entry(device).or_default();
            if !r.gps.has_fix() {
                without_fix += 1;
                track.1 += 1;
                continue;
            }
            let at = [r.gps.longitude_deg(), r.gps.latitude_deg()];
            track.0.push(at);
            let mut p = BTreeMap::new();
            p.insert(
                "imei".into(),
                row.imei
                    .map_or(Property::Null(None), |i| Property::Text(i.into())),
            );
            p.insert(
                "time".into(),
                Property::Text(crate::time::iso8601(r.timestamp_ms)),
            );
            p.insert("timestamp_ms".into(), Property::Uint(r.timestamp_ms));
            p.insert("speed".into(), Property::Uint(r.gps.speed.into()));
            p.insert("altitude".into(), Property::Int(r.gps.altitude.into()));
            p.insert("angle".into(), Property::Uint(r.gps.angle.into()));
            p.insert("satellites".into(), Property::Uint(r.gps.satellites.into()));
            p.insert("priority".into(), Property::Uint(r.priority.0.into()));
            p.insert("event_id".into(), Property::Uint(r.event_id.into()));
            for (name, value) in named_io(r, model) {
                p.entry(name).or_insert(Property::Io(value));
            }
            features.push(Feature {
                kind: "Feature",
                geometry: Geometry::Point(at),
                properties: p,
            });
        }
        let plotted = features.len();
        for (device, (line, missing)) in tracks {
            if line.len() < 2 {
                continue;
            }
            let mut p = BTreeMap::new();
            p.insert(
                "imei".into(),
                if device.is_empty() {
                    Property::Null(None)
                } else {
                    Property::Text(device.into())
                },
            );
            p.insert("points".into(), Property::Uint(line.len() as u64));
            p.insert("without_fix".into(), Property::Uint(missing as u64));
            features.push(Feature {
                kind: "Feature",
                geometry: Geometry::LineString(line),
                properties: p,
            });
        }
        FeatureCollection {
            kind: "FeatureCollection",
            features,
            properties: CollectionProperties {
                records: rows.len(),
                plotted,
                without_fix,
            },
        }
    }
}
