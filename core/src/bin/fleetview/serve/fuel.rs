//! Fuel monitoring: the fuel level a record carries, and refuel and drain events found in a
//! series of levels.
//!
//! Which IO ids carry a fuel *level* depends on the device and its adapters (CAN, OBD, LLS
//! sensors, BLE probes); the catalogue decides what an id means for a model. [`FUEL_LEVEL_IDS`]
//! lists the candidates in order of preference and [`reading`] takes the first one the record
//! carries whose catalogue name, for the device's model, is a fuel level.
//!
//! A tank only fills, or is siphoned, while the vehicle stands still: an event is a change
//! beyond a threshold between the last level before a stop and the last level of the stop.
//! Consumption while driving never counts, however large.

use fleetview::io_catalog::{self, IoValueView};
use fleetview::AvlRecord;
use serde::Serialize;

/// IO ids that may carry a fuel level, most preferred first: CAN level in % (89) and litres
/// (84), OBD (48), FMS (87), OBD OEM (390), CAN adapters (34, 37), LLS sensors (201, 203, 210,
/// 212, 214), BLE probes (270, 273, 276, 279), ultrasonic (224, 225, 327), J1939 (1066, 1070).
pub(crate) const FUEL_LEVEL_IDS: &[u16] = &[
    89, 84, 48, 87, 390, 34, 37, 201, 203, 210, 212, 214, 270, 273, 276, 279, 224, 225, 327, 1066,
    1070,
];

/// Digital Input 1 / ignition and movement sensor ids (FMB family).
const IGNITION: u16 = 239;
const MOVEMENT: u16 = 240;

/// One fuel reading of a record.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Reading {
    /// The IO id it came from.
    pub(crate) id: u16,
    /// The level with the catalogue's multiplier applied.
    pub(crate) level: f64,
    /// `%`, `l`, …, as the catalogue says.
    pub(crate) unit: Option<&'static str>,
}

/// The fuel level a record carries, from the first id of [`FUEL_LEVEL_IDS`] that the record has
/// and that the catalogue names a fuel level for `model`.
pub(crate) fn reading(record: &AvlRecord, model: Option<&str>) -> Option<Reading> {
    FUEL_LEVEL_IDS.iter().find_map(|&id| {
        let raw = record.io(id)?.raw()?;
        let info = io_catalog::lookup(id, model)?;
        let name = info.name.to_ascii_lowercase();
        if !name.contains("fuel level") || name.contains("ind") {
            return None;
        }
        let size = record.io(id)?.size();
        let level = match info.value(size, raw) {
            IoValueView::Uint(v) => v as f64,
            IoValueView::Int(v) => v as f64,
            IoValueView::Decimal(v) => v,
            _ => return None,
        };
        Some(Reading {
            id,
            level,
            unit: info.unit,
        })
    })
}

/// Ignition (IO 239) and movement (IO 240) as sent, when the record has them.
pub(crate) fn ignition_movement(record: &AvlRecord) -> (Option<u8>, Option<u8>) {
    let get = |id| {
        record
            .io(id)
            .and_then(|v| v.raw())
            .map(|v| u8::from(v != 0))
    };
    (get(IGNITION), get(MOVEMENT))
}

/// Whether the vehicle stands still: speed 0, ignition off or the movement sensor at 0.
pub(crate) fn stationary(speed: u16, ignition: Option<u8>, movement: Option<u8>) -> bool {
    speed == 0 || ignition == Some(0) || movement == Some(0)
}

/// A fuel level at a point in time.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Point {
    pub(crate) timestamp_ms: i64,
    pub(crate) level: f64,
    pub(crate) stationary: bool,
    pub(crate) latitude: f64,
    pub(crate) longitude: f64,
}

/// A sudden rise (refuel) or fall (drain) of the level while stationary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct FuelEvent {
    /// `refuel` or `drain`.
    pub(crate) kind: &'static str,
    /// When the stop ended (the last level of the stop): the moment the change is known.
    pub(crate) timestamp_ms: i64,
    /// The last level before the stop (or its first level when the series starts stopped).
    pub(crate) start_ms: i64,
    /// Level before.
    pub(crate) before: f64,
    /// Level after.
    pub(crate) after: f64,
    /// `after - before`: negative for a drain.
    pub(crate) change: f64,
    /// Where the vehicle stood.
    pub(crate) latitude: f64,
    /// Where the vehicle stood.
    pub(crate) longitude: f64,
}

/// Refuel and drain events in `points` (ascending time): for every run of stationary points,
/// the level of its last point against the level just before the run. A change of at least
/// `threshold` (in the levels' unit) either way is an event.
pub(crate) fn detect(points: &[Point], threshold: f64) -> Vec<FuelEvent> {
    let mut events = Vec::new();
    let mut i = 0;
    while i < points.len() {
        if !points[i].stationary {
            i += 1;
            continue;
        }
        let mut j = i;
        while j + 1 < points.len() && points[j + 1].stationary {
            j += 1;
        }
        let before = if i > 0 { &points[i - 1] } else { &points[i] };
        let after = &points[j];
        let change = after.level - before.level;
        if change.abs() >= threshold && threshold > 0.0 {
            events.push(FuelEvent {
                kind: if change > 0.0 { "refuel" } else { "drain" },
                timestamp_ms: after.timestamp_ms,
                start_ms: before.timestamp_ms,
                before: before.level,
                after: after.level,
                change: round3(change),
                latitude: after.latitude,
                longitude: after.longitude,
            });
        }
        i = j + 1;
    }
    events
}

/// The levels of one sensor: of the ids a device's readings come from, the most preferred one
/// (a device with a CAN level and an LLS probe would otherwise zigzag between the two).
pub(crate) fn series(
    readings: Vec<(u16, Option<String>, Point)>,
) -> (Option<u16>, Option<String>, Vec<Point>) {
    let rank = |id: u16| {
        FUEL_LEVEL_IDS
            .iter()
            .position(|&x| x == id)
            .unwrap_or(usize::MAX)
    };
    let Some(best) = readings.iter().map(|r| r.0).min_by_key(|&id| rank(id)) else {
        return (None, None, Vec::new());
    };
    let unit = readings
        .iter()
        .find(|r| r.0 == best)
        .and_then(|r| r.1.clone());
    let points = readings
        .into_iter()
        .filter(|r| r.0 == best)
        .map(|r| r.2)
        .collect();
    (Some(best), unit, points)
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetview::{IoElement, IoValue};

    fn record(io: &[(u16, IoValue)]) -> AvlRecord {
        AvlRecord {
            io: io
                .iter()
                .map(|(id, value)| IoElement {
                    id: *id,
                    value: value.clone(),
                })
                .collect(),
            ..AvlRecord::default()
        }
    }

    fn p(t: i64, level: f64, stationary: bool) -> Point {
        Point {
            timestamp_ms: t,
            level,
            stationary,
            latitude: 54.0,
            longitude: 25.0,
        }
    }

    #[test]
    fn reading_prefers_percent_and_scales_litres() {
        let r = record(&[(84, IoValue::U16(455)), (89, IoValue::U8(73))]);
        assert_eq!(
            reading(&r, None),
            Some(Reading {
                id: 89,
                level: 73.0,
                unit: Some("%")
            })
        );
        let r = record(&[(84, IoValue::U16(455))]);
        let got = reading(&r, Some("FMB920")).unwrap();
        assert_eq!((got.id, got.unit), (84, Some("l")));
        assert!((got.level - 45.5).abs() < 1e-9);
        assert_eq!(reading(&record(&[(66, IoValue::U16(12_000))]), None), None);
    }

    #[test]
    fn series_keeps_the_preferred_sensor() {
        let readings = vec![
            (201, Some("l".to_string()), p(0, 300.0, false)),
            (89, Some("%".to_string()), p(1, 50.0, false)),
            (201, Some("l".to_string()), p(2, 290.0, false)),
            (89, Some("%".to_string()), p(3, 49.0, false)),
        ];
        let (id, unit, points) = series(readings);
        assert_eq!((id, unit.as_deref()), (Some(89), Some("%")));
        assert_eq!(
            points.iter().map(|p| p.level).collect::<Vec<_>>(),
            [50.0, 49.0]
        );
        assert_eq!(series(Vec::new()).0, None);
    }

    #[test]
    fn stationary_rules() {
        assert!(stationary(0, Some(1), Some(1)));
        assert!(stationary(30, Some(0), None));
        assert!(stationary(30, None, Some(0)));
        assert!(!stationary(30, Some(1), Some(1)));
        assert!(!stationary(30, None, None));
    }

    #[test]
    fn refuel_while_stopped_is_found() {
        let pts = [
            p(0, 40.0, false),
            p(1, 38.0, false),
            p(2, 38.0, true),
            p(3, 60.0, true),
            p(4, 90.0, true),
            p(5, 89.0, false),
        ];
        let ev = detect(&pts, 10.0);
        assert_eq!(ev.len(), 1);
        assert_eq!(
            (ev[0].kind, ev[0].before, ev[0].after, ev[0].change),
            ("refuel", 38.0, 90.0, 52.0)
        );
        assert_eq!((ev[0].start_ms, ev[0].timestamp_ms), (1, 4));
    }

    #[test]
    fn drain_while_stopped_is_found_and_driving_consumption_is_not() {
        let pts = [
            p(0, 80.0, false),
            p(1, 50.0, false), // a long drive: consumption, not an event
            p(2, 50.0, true),
            p(3, 30.0, true),
            p(4, 30.0, false),
        ];
        let ev = detect(&pts, 10.0);
        assert_eq!(ev.len(), 1);
        assert_eq!((ev[0].kind, ev[0].change), ("drain", -20.0));
    }

    #[test]
    fn small_changes_and_empty_series_give_nothing() {
        assert!(detect(&[], 5.0).is_empty());
        let pts = [p(0, 50.0, true), p(1, 52.0, true), p(2, 48.0, true)];
        assert!(detect(&pts, 5.0).is_empty());
        // A series that starts stopped compares with its own first point.
        let pts = [p(0, 10.0, true), p(1, 70.0, true)];
        assert_eq!(detect(&pts, 5.0)[0].change, 60.0);
    }
}
