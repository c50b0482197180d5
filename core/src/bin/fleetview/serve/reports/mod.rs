//! Reports: trips and stops computed from a device's stored records when asked for
//! ([`trip`]), and geofence enter/exit events computed by the writer as records are committed,
//! in the same transaction ([`geofence`]), both on either engine ([`sql`] holds the shared
//! statements). [`geometry`] validates and tests geofence shapes.
//!
//! What is stored at insert time for them: the ignition, movement, fuel and odometer columns
//! of each record (reading a month of a device's records touches no JSON), and the geofence
//! events themselves.

pub(crate) mod geofence;
pub(crate) mod geometry;
pub(crate) mod live;
pub(crate) mod sql;
pub(crate) mod trip;

use std::sync::{Arc, Mutex};

use fleetview::api::{EventJson, GeofenceGeometry, GeofenceJson};
use fleetview::io_catalog::ids::TOTAL_ODOMETER;
use fleetview::AvlRecord;

use super::query::Reader;
use super::storage::Error;

pub(crate) use self::geofence::Fence;
pub(crate) use self::trip::Thresholds;

/// The thresholds of trips and stops: `fleetview serve` flags (the API's query parameters of
/// the same names override them per request).
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct ReportArgs {
    /// Shortest stop reported, seconds. A shorter stop between two trips (a traffic light, a
    /// queue) belongs to the trip. 300 s, as Traccar's minimal parking duration.
    #[arg(long, default_value_t = 300.0)]
    min_stop_duration: f64,
    /// Shortest trip reported, metres. A shorter move (across a yard, GPS drift) belongs to
    /// the stop around it. 500 m, as Traccar's minimal trip distance.
    #[arg(long, default_value_t = 500.0)]
    min_trip_distance: f64,
    /// Seconds without records after which a trip ends (the vehicle counts as stopped
    /// meanwhile). 3600 s, as Traccar: above a tracker's longest period while moving (300 s on
    /// FMB devices by default) and equal to its period while parked.
    #[arg(long, default_value_t = 3600.0)]
    trip_gap: f64,
    /// Speed from which a device that sends neither ignition (IO 239) nor movement (IO 240)
    /// is moving, km/h: above what a parked GPS receiver reports.
    #[arg(long, default_value_t = 5.0)]
    moving_speed: f64,
}

/// Why a threshold is refused.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BadThreshold {
    pub(crate) name: &'static str,
    pub(crate) value: String,
}

impl std::fmt::Display for BadThreshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}={}: expected a number of {} from 0 to {}",
            self.name,
            self.value,
            unit(self.name),
            MAX_THRESHOLD
        )
    }
}

impl std::error::Error for BadThreshold {}

/// Largest threshold accepted (seconds, metres or km/h): a year of seconds.
const MAX_THRESHOLD: f64 = 31_536_000.0;

fn unit(name: &str) -> &'static str {
    match name {
        "min_trip_distance" => "metres",
        "moving_speed" => "km/h",
        _ => "seconds",
    }
}

impl Thresholds {
    /// Set the threshold `name` (a flag or query parameter name, `_` for `-`) from `value`.
    pub(crate) fn set(&mut self, name: &'static str, value: f64) -> Result<(), BadThreshold> {
        if !(value.is_finite() && (0.0..=MAX_THRESHOLD).contains(&value)) {
            return Err(BadThreshold {
                name,
                value: value.to_string(),
            });
        }
        let ms = (value * 1000.0).round() as i64;
        match name {
            "min_stop_duration" => self.min_stop_ms = ms,
            "min_trip_distance" => self.min_trip_m = value,
            "trip_gap" => self.gap_ms = ms.max(1),
            "moving_speed" => self.moving_kmh = value,
            _ => {
                return Err(BadThreshold {
                    name,
                    value: value.to_string(),
                })
            }
        }
        Ok(())
    }

    /// The query parameter names.
    pub(crate) const NAMES: [&'static str; 4] = [
        "min_stop_duration",
        "min_trip_distance",
        "trip_gap",
        "moving_speed",
    ];
}

impl ReportArgs {
    pub(crate) fn thresholds(&self) -> Result<Thresholds, String> {
        let mut t = Thresholds::default();
        for (name, v) in [
            ("min_stop_duration", self.min_stop_duration),
            ("min_trip_distance", self.min_trip_distance),
            ("trip_gap", self.trip_gap),
            ("moving_speed", self.moving_speed),
        ] {
            t.set(name, v).map_err(|e| {
                format!(
                    "--{}",
                    e.to_string().replace('_', "-").replacen('=', " ", 1)
                )
            })?;
        }
        Ok(t)
    }
}

/// The total odometer (IO 16, metres) a record carries.
pub(crate) fn odometer(record: &AvlRecord) -> Option<i64> {
    record
        .io
        .iter()
        .find(|e| e.id == TOTAL_ODOMETER)
        .and_then(|e| e.value.raw())
        .and_then(|v| i64::try_from(v).ok())
}

/// The geofences as a writer last read them, and the version they were read at: the highest
/// geofence id and the number of geofences (ids are never reused, so any creation or deletion
/// changes it). The writer compares the version in its transaction before each group with
/// records, and reads the geofences again only when it changed.
#[derive(Default)]
pub(crate) struct FenceCache {
    inner: Mutex<(Option<Version>, Arc<Vec<Fence>>)>,
}

/// The geofences' version: the highest id and the count.
pub(crate) type Version = (i64, i64);

impl FenceCache {
    /// The cached geofences when they are of `version`.
    pub(crate) fn get(&self, version: Version) -> Option<Arc<Vec<Fence>>> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (g.0 == Some(version)).then(|| g.1.clone())
    }

    /// Forget the geofences (the writer creates or deletes one: its transaction may yet be
    /// rolled back, and SQLite may then give the next geofence the same id).
    pub(crate) fn clear(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).0 = None;
    }

    pub(crate) fn put(&self, version: Version, fences: Vec<Fence>) -> Arc<Vec<Fence>> {
        let fences = Arc::new(fences);
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = (Some(version), fences.clone());
        fences
    }
}

/// A stored geofence row (id, name, geometry JSON, created) as the writer's [`Fence`]; `None`
/// for a geometry this version cannot read (skipped with a warning).
pub(crate) fn fence(id: i64, name: String, geometry: &str, created_ms: i64) -> Option<Fence> {
    match serde_json::from_str::<GeofenceGeometry>(geometry) {
        Ok(g) => Some(Fence {
            id,
            name,
            shape: geometry::Shape::new(&g),
            created_ms,
        }),
        Err(e) => {
            tracing::warn!(geofence = id, "unreadable geometry, skipped: {e}");
            None
        }
    }
}

impl Reader {
    /// What trips and stops need of a device's records in `[from, to]`, at most `limit`, in
    /// (time, hash) order.
    pub(crate) async fn track(
        &self,
        imei: String,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<trip::TrackPoint>, Error> {
        match self {
            Reader::Sqlite(p) => p.track(imei, from, to, limit).await,
            Reader::Postgres(p) => p.track(imei, from, to, limit).await,
        }
    }

    /// A device's stored geofence events in `[from, to]`, at most `limit`, ascending.
    pub(crate) async fn geofence_events(
        &self,
        imei: String,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<EventJson>, Error> {
        match self {
            Reader::Sqlite(p) => p.events(imei, from, to, limit).await,
            Reader::Postgres(p) => p.events(imei, from, to, limit).await,
        }
    }

    /// Every geofence, by id.
    pub(crate) async fn geofences(&self) -> Result<Vec<GeofenceJson>, Error> {
        match self {
            Reader::Sqlite(p) => p.geofences().await,
            Reader::Postgres(p) => p.geofences().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_from_flags_and_parameters() {
        let args = ReportArgs {
            min_stop_duration: 120.0,
            min_trip_distance: 1000.0,
            trip_gap: 900.0,
            moving_speed: 3.0,
        };
        assert_eq!(
            args.thresholds().unwrap(),
            Thresholds {
                min_stop_ms: 120_000,
                min_trip_m: 1000.0,
                gap_ms: 900_000,
                moving_kmh: 3.0
            }
        );
        let bad = ReportArgs {
            trip_gap: -1.0,
            ..args
        };
        assert_eq!(
            bad.thresholds().unwrap_err(),
            "--trip-gap -1: expected a number of seconds from 0 to 31536000"
        );
        let mut t = Thresholds::default();
        assert!(t.set("moving_speed", f64::NAN).is_err());
        assert!(t.set("nothing", 1.0).is_err());
    }
}
