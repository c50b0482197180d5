//! The reports' statements, the same text on both engines (`$N` parameters numbered in order
//! of first use, which SQLite binds by position too), and their rows as the reports' types
//! (through [`Cols`]).

use fleetview::api::{EventJson, EventKind, GeofenceGeometry, GeofenceJson};

use super::geofence::{Crossing, Fix};
use super::trip::TrackPoint;
use crate::serve::query::Cols;
use crate::serve::storage::{record_hash, RecordRow};

/// Records a trips or stops request may read: a year at one record per 30 s. Past it the
/// request is refused (narrow `from` and `to`).
pub(crate) const MAX_TRACK: i64 = 1_100_000;

/// `$1` IMEI, `$2`..`$3` time range, `$4` limit: what trips and stops need of each record,
/// in (time, hash) order, from the `records_track` index alone. A month of records is 260,000
/// rows: the small columns come packed into one integer (bit 0 the fix, bits 1-2 ignition and
/// 3-4 movement with 2 for none, bits 5-20 the speed, from bit 21 the fuel IO id + 1, 0 for
/// none), which halves what the client reads per row ([`track_point`] unpacks it).
pub(crate) const TRACK_SQL: &str =
    "SELECT r.timestamp_ms, r.hash, r.latitude, r.longitude,
       CAST(r.valid AS INTEGER) + 2 * coalesce(r.ignition, 2) + 8 * coalesce(r.movement, 2)
         + 32 * r.speed + 2097152 * (coalesce(r.fuel_id, -1) + 1) AS packed,
       r.odometer, r.fuel_level
     FROM records r
     WHERE r.device_id = (SELECT id FROM devices WHERE imei = $1) AND r.timestamp_ms BETWEEN $2 AND $3
     ORDER BY r.timestamp_ms, r.hash LIMIT $4";

pub(crate) fn track_point<R: Cols>(r: &R) -> Result<TrackPoint, R::Err> {
    Ok(unpack(
        [r.int(0)?, r.int(1)?, r.int(4)?],
        [r.float(2)?, r.float(3)?],
        r.opt_int(5)?,
        r.opt_float(6)?,
    ))
}

/// A [`TRACK_SQL`] row's values as the record: `[time, hash, packed]`, `[latitude,
/// longitude]`, odometer, fuel level.
pub(crate) fn unpack(
    [timestamp_ms, hash, packed]: [i64; 3],
    [latitude, longitude]: [f64; 2],
    odometer_m: Option<i64>,
    fuel_level: Option<f64>,
) -> TrackPoint {
    let flag = |v: i64| match v & 3 {
        2 => None,
        v => Some(v != 0),
    };
    TrackPoint {
        timestamp_ms,
        hash,
        latitude,
        longitude,
        valid: packed & 1 == 1,
        speed: ((packed >> 5) & 0xffff) as u16,
        ignition: flag(packed >> 1),
        movement: flag(packed >> 3),
        odometer_m,
        fuel: u16::try_from((packed >> 21) - 1).ok().zip(fuel_level),
    }
}

/// The geofences' version: `(highest id, count)`.
pub(crate) const FENCE_VERSION_SQL: &str = "SELECT coalesce(max(id), 0), count(*) FROM geofences";
/// Every geofence, by id.
pub(crate) const GEOFENCES_SQL: &str =
    "SELECT id, name, geometry, created_ms FROM geofences ORDER BY id";

/// `$1` name, `$2` geometry (JSON of [`GeofenceGeometry`]), `$3` now; returns the id.
pub(crate) const CREATE_GEOFENCE_SQL: &str =
    "INSERT INTO geofences (name, geometry, created_ms) VALUES ($1, $2, $3) RETURNING id";
/// `$1` id: its events first.
pub(crate) const DELETE_GEOFENCE_EVENTS_SQL: &str =
    "DELETE FROM geofence_events WHERE geofence_id = $1";
/// `$1` id.
pub(crate) const DELETE_GEOFENCE_SQL: &str = "DELETE FROM geofences WHERE id = $1";

pub(crate) fn geofence_json<R: Cols>(r: &R) -> Result<Option<GeofenceJson>, R::Err> {
    let (id, name, geometry, created_ms) = (r.int(0)?, r.text(1)?, r.text(2)?, r.int(3)?);
    Ok(serde_json::from_str::<GeofenceGeometry>(&geometry)
        .ok()
        .map(|geometry| GeofenceJson {
            id,
            name,
            geometry,
            created_ms,
        }))
}

/// The window of a batch (see [`super::geofence`]): `$1` device id, `$2` earliest new time,
/// `$3` latest new time; fixes only, in (time, hash) order.
pub(crate) const WINDOW_SQL: &str = "
SELECT timestamp_ms, hash, latitude, longitude FROM (
  SELECT * FROM (SELECT timestamp_ms, hash, latitude, longitude FROM records
                 WHERE device_id = $1 AND valid AND timestamp_ms < $2
                 ORDER BY timestamp_ms DESC, hash DESC LIMIT 1) AS before_window
  UNION ALL
  SELECT timestamp_ms, hash, latitude, longitude FROM records
  WHERE device_id = $1 AND valid AND timestamp_ms BETWEEN $2 AND $3
  UNION ALL
  SELECT * FROM (SELECT timestamp_ms, hash, latitude, longitude FROM records
                 WHERE device_id = $1 AND valid AND timestamp_ms > $3
                 ORDER BY timestamp_ms, hash LIMIT 1) AS after_window
) AS w ORDER BY timestamp_ms, hash";

pub(crate) fn fix<R: Cols>(r: &R) -> Result<Fix, R::Err> {
    Ok(Fix {
        timestamp_ms: r.int(0)?,
        hash: r.int(1)?,
        latitude: r.float(2)?,
        longitude: r.float(3)?,
    })
}

/// A device's stored events in a time range: `$1` device id, `$2`..`$3` times.
pub(crate) const STORED_EVENTS_SQL: &str =
    "SELECT id, geofence_id, type, timestamp_ms, hash, latitude, longitude FROM geofence_events
     WHERE device_id = $1 AND timestamp_ms BETWEEN $2 AND $3";

/// A stored event (of [`STORED_EVENTS_SQL`]) with its id.
pub(crate) fn stored_event<R: Cols>(r: &R) -> Result<(i64, Crossing), R::Err> {
    Ok((
        r.int(0)?,
        Crossing {
            fence: r.int(1)?,
            kind: EventKind::parse(&r.text(2)?).unwrap_or_default(),
            at: Fix {
                timestamp_ms: r.int(3)?,
                hash: r.int(4)?,
                latitude: r.float(5)?,
                longitude: r.float(6)?,
            },
        },
    ))
}

/// `$1` id.
pub(crate) const DELETE_EVENT_SQL: &str = "DELETE FROM geofence_events WHERE id = $1";
/// `$1` device id, `$2` geofence, `$3` type, `$4` time, `$5` hash, `$6` latitude,
/// `$7` longitude, `$8` now.
pub(crate) const INSERT_EVENT_SQL: &str =
    "INSERT INTO geofence_events (device_id, geofence_id, type, timestamp_ms, hash, latitude, longitude, created_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// `$1` IMEI, `$2`..`$3` time range, `$4` limit: the API's geofence events.
pub(crate) const EVENTS_SQL: &str =
    "SELECT e.type, e.timestamp_ms, e.latitude, e.longitude, e.geofence_id, g.name, d.imei
     FROM geofence_events e JOIN devices d ON d.id = e.device_id JOIN geofences g ON g.id = e.geofence_id
     WHERE d.imei = $1 AND e.timestamp_ms BETWEEN $2 AND $3
     ORDER BY e.timestamp_ms, e.hash, e.geofence_id LIMIT $4";

pub(crate) fn event_json<R: Cols>(r: &R) -> Result<EventJson, R::Err> {
    Ok(EventJson {
        kind: EventKind::parse(&r.text(0)?).unwrap_or_default(),
        timestamp_ms: r.int(1)?,
        latitude: r.float(2)?,
        longitude: r.float(3)?,
        geofence_id: Some(r.int(4)?),
        geofence_name: Some(r.text(5)?),
        imei: r.text(6)?,
        fuel: None,
    })
}

/// A geofence crossing as the API shows it.
pub(crate) fn crossing_json(imei: &str, c: &Crossing, name: &str) -> EventJson {
    EventJson {
        kind: c.kind,
        imei: imei.into(),
        timestamp_ms: c.at.timestamp_ms,
        latitude: c.at.latitude,
        longitude: c.at.longitude,
        geofence_id: Some(c.fence),
        geofence_name: Some(name.into()),
        fuel: None,
    }
}

/// A record stored now, as a fix (with its stored hash).
pub(crate) fn new_fix(r: &RecordRow) -> Fix {
    Fix {
        timestamp_ms: r.record.timestamp_ms as i64,
        hash: record_hash(&r.raw),
        latitude: r.record.gps.latitude_deg(),
        longitude: r.record.gps.longitude_deg(),
    }
}
