//! Reports of `fleetview serve` (core/docs/http-api.md): a device's trips and stops, its
//! events (geofence crossings, refuels and drains), and the geofences themselves. The server
//! computes and serializes these; the web UI reads them.

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

/// A place: where a trip starts or ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Place {
    /// Degrees, WGS 84.
    pub latitude: f64,
    /// Degrees, WGS 84.
    pub longitude: f64,
}

/// Where a trip's distance comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DistanceSource {
    /// The device's total odometer (IO 16) at the trip's end less at its start.
    Odometer,
    /// The sum of the great-circle distances between the trip's positions.
    #[default]
    Gps,
}

/// An item of `GET /api/devices/{imei}/trips`: the vehicle moving from one place to another.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Trip {
    /// The first record of the trip, milliseconds since 1970 UTC.
    pub start_ms: i64,
    /// The record where it ended (the first of the stop that follows, or the last record).
    pub end_ms: i64,
    /// `end_ms - start_ms`.
    pub duration_ms: i64,
    /// Where it started.
    pub start: Place,
    /// Where it ended.
    pub end: Place,
    /// Metres.
    pub distance_m: f64,
    /// Whether `distance_m` is from the odometer or from the positions.
    pub distance_source: DistanceSource,
    /// The highest speed a record of the trip reported, km/h.
    pub max_speed_kmh: f64,
    /// `distance_m` over `duration_ms`, km/h.
    pub avg_speed_kmh: f64,
    /// The fuel level at the start less at the end, in `fuel_unit`, when the device reports
    /// a level.
    pub fuel_used: Option<f64>,
    /// `%` or `l`, as the fuel sensor reports.
    pub fuel_unit: Option<String>,
    /// Records in the trip.
    pub records: usize,
}

/// An item of `GET /api/devices/{imei}/stops`: the vehicle standing in one place.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Stop {
    /// Milliseconds since 1970 UTC.
    pub start_ms: i64,
    /// Milliseconds since 1970 UTC: the first record of the next trip, or the last record.
    pub end_ms: i64,
    /// `end_ms - start_ms`.
    pub duration_ms: i64,
    /// Degrees.
    pub latitude: f64,
    /// Degrees.
    pub longitude: f64,
}

/// What happened: the `type` of an event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The device's first record inside a geofence after one outside.
    #[default]
    GeofenceEnter,
    /// The device's first record outside a geofence after one inside.
    GeofenceExit,
    /// A rise of the fuel level while stationary.
    Refuel,
    /// A fall of the fuel level while stationary.
    Drain,
}

impl EventKind {
    /// The wire name: `geofence_enter`, `geofence_exit`, `refuel`, `drain`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GeofenceEnter => "geofence_enter",
            Self::GeofenceExit => "geofence_exit",
            Self::Refuel => "refuel",
            Self::Drain => "drain",
        }
    }

    /// The kind of a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::GeofenceEnter,
            Self::GeofenceExit,
            Self::Refuel,
            Self::Drain,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// The fuel side of a `refuel` or `drain` event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct FuelChange {
    /// The last level before the stop, at this time.
    pub start_ms: i64,
    /// Level before.
    pub before: f64,
    /// Level after.
    pub after: f64,
    /// `after - before`.
    pub change: f64,
}

/// An item of `GET /api/devices/{imei}/events`, and the live `geofence` event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct EventJson {
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The device.
    pub imei: String,
    /// The record it happened at, milliseconds since 1970 UTC.
    pub timestamp_ms: i64,
    /// Degrees.
    pub latitude: f64,
    /// Degrees.
    pub longitude: f64,
    /// The geofence crossed (geofence events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geofence_id: Option<i64>,
    /// Its name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geofence_name: Option<String>,
    /// The levels (fuel events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel: Option<FuelChange>,
}

/// A geofence's shape: GeoJSON (longitude first), a circle being a `Point` with `radius_m`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type")]
pub enum GeofenceGeometry {
    /// A circle: its centre `[longitude, latitude]` and radius in metres.
    Point {
        /// `[longitude, latitude]`.
        coordinates: [f64; 2],
        /// Metres, above 0.
        radius_m: f64,
    },
    /// A polygon: the outer ring, then holes, each closed (last position = first).
    Polygon {
        /// Rings of `[longitude, latitude]`.
        coordinates: Vec<Vec<[f64; 2]>>,
    },
}

impl Default for GeofenceGeometry {
    fn default() -> Self {
        Self::Point {
            coordinates: [0.0, 0.0],
            radius_m: 1.0,
        }
    }
}

/// An item of `GET /api/geofences` (and the answer to `POST /api/geofences`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct GeofenceJson {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its shape.
    pub geometry: GeofenceGeometry,
    /// When it was created, milliseconds since 1970 UTC: records timed before get no events
    /// for it.
    pub created_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_serialize_as_documented() {
        let g = GeofenceJson {
            id: 3,
            name: "Depot".into(),
            geometry: GeofenceGeometry::Point {
                coordinates: [25.25, 54.66],
                radius_m: 150.0,
            },
            created_ms: 5,
        };
        assert_eq!(
            serde_json::to_string(&g).unwrap(),
            r#"{"id":3,"name":"Depot","geometry":{"type":"Point","coordinates":[25.25,54.66],"radius_m":150.0},"created_ms":5}"#
        );
        let e = EventJson {
            kind: EventKind::GeofenceExit,
            imei: "1".into(),
            timestamp_ms: 9,
            geofence_id: Some(3),
            ..EventJson::default()
        };
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(
            text,
            r#"{"type":"geofence_exit","imei":"1","timestamp_ms":9,"latitude":0.0,"longitude":0.0,"geofence_id":3}"#
        );
        assert_eq!(serde_json::from_str::<EventJson>(&text).unwrap(), e);
        for k in ["geofence_enter", "geofence_exit", "refuel", "drain"] {
            assert_eq!(EventKind::parse(k).unwrap().as_str(), k);
        }
    }
}
