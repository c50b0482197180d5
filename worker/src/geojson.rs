//! Stored positions as a GeoJSON FeatureCollection (RFC 7946): one `Point` feature per record
//! with a fix, coordinates `[longitude, latitude]` in that order, the rest as properties.

use fleetview::export::{point_collection, FeatureCollection};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One stored position, as the positions query returns it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct PositionRow {
    /// Milliseconds since 1970 UTC.
    pub timestamp_ms: u64,
    /// Degrees.
    pub longitude: f64,
    /// Degrees.
    pub latitude: f64,
    /// Metres.
    pub altitude: i32,
    /// Degrees from north.
    pub angle: u32,
    /// Visible satellites.
    pub satellites: u32,
    /// km/h.
    pub speed: u32,
    /// 0–3.
    pub priority: u32,
    /// IO id that triggered the record.
    pub event_id: u32,
    /// `"8"`, `"8E"`, …
    pub codec: String,
    /// IO elements as JSON text (the JSON model's `io` array).
    pub io: String,
}

/// Feature properties.
#[derive(Clone, Debug, Serialize)]
pub struct Properties {
    /// The device.
    pub imei: String,
    /// Milliseconds since 1970 UTC.
    pub timestamp_ms: u64,
    /// ISO 8601 UTC.
    pub time: String,
    /// Metres.
    pub altitude: i32,
    /// Degrees from north.
    pub angle: u32,
    /// Visible satellites.
    pub satellites: u32,
    /// km/h.
    pub speed: u32,
    /// 0–3.
    pub priority: u32,
    /// IO id that triggered the record.
    pub event_id: u32,
    /// Codec the record came in.
    pub codec: String,
    /// IO elements (the JSON model's `io` array).
    pub io: Value,
}

/// Build the collection for `imei` from rows in query order (core's GeoJSON, one Point each).
pub fn feature_collection(imei: &str, rows: Vec<PositionRow>) -> FeatureCollection<Properties> {
    point_collection(rows, |r| {
        let properties = Properties {
            imei: imei.to_string(),
            timestamp_ms: r.timestamp_ms,
            time: fleetview::time::iso8601(r.timestamp_ms),
            altitude: r.altitude,
            angle: r.angle,
            satellites: r.satellites,
            speed: r.speed,
            priority: r.priority,
            event_id: r.event_id,
            codec: r.codec,
            // Written by `ingest` from serde_json: it parses; `null` would only mean a row
            // written by hand.
            io: serde_json::from_str(&r.io).unwrap_or(Value::Null),
        };
        (r.longitude, r.latitude, properties)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7946_order() {
        let row = PositionRow {
            timestamp_ms: 1_560_166_592_000,
            longitude: 25.2560283,
            latitude: 54.667425,
            altitude: 172,
            angle: 248,
            satellites: 11,
            speed: 0,
            priority: 1,
            event_id: 1,
            codec: "8E".into(),
            io: r#"[{"id":66,"size":2,"raw":24079}]"#.into(),
        };
        let fc = feature_collection("356307042441013", vec![row]);
        let v = serde_json::to_value(&fc).unwrap();
        assert_eq!(v["type"], "FeatureCollection");
        let f = &v["features"][0];
        assert_eq!(f["type"], "Feature");
        assert_eq!(f["geometry"]["type"], "Point");
        assert_eq!(
            f["geometry"]["coordinates"],
            serde_json::json!([25.2560283, 54.667425])
        );
        assert_eq!(f["properties"]["time"], "2019-06-10T11:36:32.000Z");
        assert_eq!(f["properties"]["io"][0]["raw"], 24079);
    }
}
