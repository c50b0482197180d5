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

use fleetview::io_catalog::{self, IoInfo, IoValueView};
use fleetview::AvlRecord;
use serde::Serialize;

/// IO ids that may carry a fuel level, most preferred first (core's list).
pub(crate) const FUEL_LEVEL_IDS: &[u16] = io_catalog::ids::FUEL_LEVELS;

/// Ignition and movement sensor ids (FMB family).
const IGNITION: u16 = io_catalog::ids::IGNITION;
const MOVEMENT: u16 = io_catalog::ids::MOVEMENT;

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

/// The fuel level ids of one model, as the catalogue names them, looked up once (the writer
/// path reads every record with it).
#[derive(Clone, Debug)]
pub(crate) struct FuelIds {
    /// The ids of [`FUEL_LEVEL_IDS`] whose catalogue name for the model is a fuel level, in
    /// order of preference, with their catalogue entry.
    ids: Vec<(u16, IoInfo)>,
}

impl FuelIds {
    pub(crate) fn new(model: Option<&str>) -> Self {
        let ids = FUEL_LEVEL_IDS
            .iter()
            .filter_map(|&id| {
                let info = io_catalog::lookup(id, model)?;
                let name = info.name.to_ascii_lowercase();
                (name.contains("fuel level") && !name.contains("ind")).then_some((id, info))
            })
            .collect();
        Self { ids }
    }

    /// The fuel level a record carries (from the most preferred id it has with a numeric
    /// value), and its ignition (IO 239) and movement (IO 240) as sent, in one pass over its IO.
    pub(crate) fn read(&self, record: &AvlRecord) -> (Option<Reading>, Option<u8>, Option<u8>) {
        let (mut ignition, mut movement) = (None, None);
        let mut best: Option<(usize, Reading)> = None;
        for e in &record.io {
            let Some(raw) = e.value.raw() else { continue };
            match e.id {
                IGNITION => {
                    ignition.get_or_insert(u8::from(raw != 0));
                }
                MOVEMENT => {
                    movement.get_or_insert(u8::from(raw != 0));
                }
                id => {
                    let Some(rank) = self.ids.iter().position(|&(x, _)| x == id) else {
                        continue;
                    };
                    if best.as_ref().is_some_and(|(r, _)| *r <= rank) {
                        continue;
                    }
                    let info = &self.ids[rank].1;
                    let level = match info.value(e.value.size(), raw) {
                        IoValueView::Uint(v) => v as f64,
                        IoValueView::Int(v) => v as f64,
                        IoValueView::Decimal(v) => v,
                        _ => continue,
                    };
                    best = Some((
                        rank,
                        Reading {
                            id,
                            level,
                            unit: info.unit,
                        },
                    ));
                }
            }
        }
        (best.map(|(_, r)| r), ignition, movement)
    }
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
        events.extend(event(before, &points[j], threshold));
        i = j + 1;
    }
    events
}

/// The event of a stop: its last level `after` against the level `before` it, when the change
/// reaches `threshold`.
fn event(before: &Point, after: &Point, threshold: f64) -> Option<FuelEvent> {
    let change = after.level - before.level;
    (change.abs() >= threshold && threshold > 0.0).then(|| FuelEvent {
        kind: if change > 0.0 { "refuel" } else { "drain" },
        timestamp_ms: after.timestamp_ms,
        start_ms: before.timestamp_ms,
        before: before.level,
        after: after.level,
        change: round3(change),
        latitude: after.latitude,
        longitude: after.longitude,
    })
}

/// Live detection for one device, one reading at a time: what [`detect`] finds in the device's
/// series, without reading the series back for every frame. Seeded from the stored series once
/// ([`Tracker::seed`]); readings that do not extend the series at its end (older than the last
/// one, or from a preferred sensor) make the caller read it again.
#[derive(Clone, Debug)]
pub(crate) struct Tracker {
    /// The sensor followed: [`series`]'s choice.
    sensor: u16,
    /// The latest point of the series.
    last: Point,
    /// During a stop: the point it compares with (the last one before it, or its first point
    /// when the series starts stopped).
    before: Option<Point>,
}

impl Tracker {
    /// The state at the end of a series as [`series`] returns it; `None` when it is empty.
    pub(crate) fn seed(sensor: Option<u16>, points: &[Point]) -> Option<Self> {
        let sensor = sensor?;
        let last = points.last()?.clone();
        let before = last.stationary.then(|| {
            let start = points
                .iter()
                .rposition(|p| !p.stationary)
                .map_or(0, |i| i + 1);
            points[start.saturating_sub(1)].clone()
        });
        Some(Self {
            sensor,
            last,
            before,
        })
    }

    /// Add the next reading of `sensor`. `None`: it does not extend the series at its end, the
    /// state must be seeded again. `Some(event)`: the event of the stop going on, if any, as
    /// [`detect`] would report it with this point last.
    pub(crate) fn push(
        &mut self,
        sensor: u16,
        p: Point,
        threshold: f64,
    ) -> Option<Option<FuelEvent>> {
        if sensor != self.sensor {
            // A less preferred sensor is not part of the series; a preferred one replaces it.
            return (rank(sensor) > rank(self.sensor)).then_some(None);
        }
        if p.timestamp_ms < self.last.timestamp_ms {
            return None;
        }
        if !p.stationary {
            self.before = None;
            self.last = p;
            return Some(None);
        }
        let before = match self.before.take() {
            Some(b) => b,
            None => std::mem::replace(&mut self.last, p.clone()),
        };
        self.last = p;
        let found = event(&before, &self.last, threshold);
        self.before = Some(before);
        Some(found)
    }
}

/// Position of `id` in [`FUEL_LEVEL_IDS`]: lower is preferred.
fn rank(id: u16) -> usize {
    FUEL_LEVEL_IDS
        .iter()
        .position(|&x| x == id)
        .unwrap_or(usize::MAX)
}

/// The levels of one sensor: of the ids a device's readings come from, the most preferred one
/// (a device with a CAN level and an LLS probe would otherwise zigzag between the two).
pub(crate) fn series(
    readings: Vec<(u16, Option<String>, Point)>,
) -> (Option<u16>, Option<String>, Vec<Point>) {
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
        let reading = |r: &AvlRecord, model| FuelIds::new(model).read(r).0;
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
        let r = record(&[
            (240, IoValue::U8(0)),
            (201, IoValue::U16(300)),
            (239, IoValue::U8(1)),
        ]);
        let (fuel, ignition, movement) = FuelIds::new(None).read(&r);
        assert_eq!(
            (fuel.map(|f| f.id), ignition, movement),
            (Some(201), Some(1), Some(0))
        );
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

    /// The tracker fed one point at a time reports, at each point, what `detect` finds in the
    /// series up to that point for the stop going on.
    #[test]
    fn tracker_matches_detect_point_by_point() {
        let levels = [
            (40.0, false),
            (38.0, false),
            (38.0, true),
            (60.0, true),
            (90.0, true),
            (89.0, false),
            (70.0, false),
            (70.0, true),
            (50.0, true),
            (52.0, true),
            (52.0, false),
            (51.0, true),
        ];
        let pts: Vec<Point> = levels
            .iter()
            .enumerate()
            .map(|(i, &(l, s))| p(i as i64 * 10, l, s))
            .collect();
        for seed_len in 1..pts.len() {
            let mut t = Tracker::seed(Some(89), &pts[..seed_len]).unwrap();
            for n in seed_len..pts.len() {
                let got = t.push(89, pts[n].clone(), 10.0).unwrap();
                let all = detect(&pts[..=n], 10.0);
                let want = all
                    .last()
                    .filter(|e| pts[n].stationary && e.timestamp_ms == pts[n].timestamp_ms)
                    .cloned();
                assert_eq!(got, want, "seeded with {seed_len}, point {n}");
            }
        }
        // A series that starts stopped compares with its own first point.
        let mut t = Tracker::seed(Some(89), &[p(0, 10.0, true)]).unwrap();
        assert_eq!(
            t.push(89, p(1, 70.0, true), 5.0).unwrap().unwrap().change,
            60.0
        );
    }

    #[test]
    fn tracker_asks_for_the_series_when_a_reading_does_not_extend_it() {
        let mut t = Tracker::seed(Some(84), &[p(100, 50.0, false)]).unwrap();
        // Older than the last point.
        assert!(t.push(84, p(50, 50.0, false), 10.0).is_none());
        // A preferred sensor (89 ranks before 84); a less preferred one is ignored.
        assert!(t.push(89, p(200, 50.0, false), 10.0).is_none());
        assert_eq!(t.push(201, p(200, 500.0, true), 10.0), Some(None));
        assert_eq!(t.push(84, p(300, 50.0, true), 10.0), Some(None));
        assert!(Tracker::seed(Some(84), &[]).is_none());
        assert!(Tracker::seed(None, &[p(0, 1.0, true)]).is_none());
    }
}
