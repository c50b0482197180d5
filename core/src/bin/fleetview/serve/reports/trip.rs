//! Trips and stops from a device's records, in time order (sans-IO: the caller reads the
//! records, this module only computes).
//!
//! Each stretch between two consecutive records is *moving* or *stopped*, from the first
//! record's sensors:
//! - ignition (IO 239) off: stopped;
//! - else the movement sensor (IO 240), when the record has it: moving when it says so;
//! - else ignition on: moving (the engine runs: idling belongs to the trip);
//! - else (a device without either IO): moving when the record's speed reaches
//!   [`Thresholds::moving_kmh`], or when the vehicle covered at least [`JITTER_M`] to the next
//!   record at that speed or faster (devices that report no speed).
//!
//! A stretch longer than [`Thresholds::gap_ms`] (no data) is stopped whatever the sensors say.
//! Runs of stretches in the same state are then cleaned like a fleet manager expects:
//! 1. a stop shorter than [`Thresholds::min_stop_ms`] between two trips (a traffic light, a
//!    queue) belongs to the trip;
//! 2. a trip shorter than [`Thresholds::min_trip_m`] (moving the car in a yard, GPS drift) is
//!    part of the stop around it.
//!
//! A trip runs from its first record to the record where the vehicle stood again (the first
//! of the next stop), a stop from that record to the first record of the next trip. Only stops
//! of at least `min_stop_ms` are reported. Records are ordered by time (then by their hash,
//! the stored order of equal times), so records that arrived late or out of order give the
//! same trips and stops as records that came in order.

use fleetview::api::{DistanceSource, Place, Stop, Trip};

use super::geometry::distance_m;
use crate::serve::fuel::FUEL_LEVEL_IDS;

/// Metres a device without speed must cover between two records to count as moving: more
/// than the drift of a parked GPS receiver.
pub(crate) const JITTER_M: f64 = 50.0;

/// The thresholds of trips and stops (`fleetview serve` flags, or query parameters).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Thresholds {
    /// Shortest stop reported; shorter ones between trips belong to the trip.
    pub(crate) min_stop_ms: i64,
    /// Shortest trip reported, metres; shorter ones belong to the stop around them.
    pub(crate) min_trip_m: f64,
    /// No record for this long ends a trip: the vehicle is taken as stopped meanwhile.
    pub(crate) gap_ms: i64,
    /// Speed from which a device without ignition and movement IOs is moving, km/h.
    pub(crate) moving_kmh: f64,
}

impl Default for Thresholds {
    /// Traccar's defaults (minimal parking duration 300 s, minimal trip distance 500 m,
    /// minimal no-data duration 3600 s), which fleet managers know; 5 km/h is above what a
    /// parked GPS receiver reports.
    fn default() -> Self {
        Self {
            min_stop_ms: 300_000,
            min_trip_m: 500.0,
            gap_ms: 3_600_000,
            moving_kmh: 5.0,
        }
    }
}

/// What trips and stops need of a stored record.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct TrackPoint {
    pub(crate) timestamp_ms: i64,
    /// The record's dedup hash: orders records of equal time the same way on every read.
    pub(crate) hash: i64,
    pub(crate) latitude: f64,
    pub(crate) longitude: f64,
    /// A GPS fix (records without one take the last fix's position).
    pub(crate) valid: bool,
    /// km/h.
    pub(crate) speed: u16,
    pub(crate) ignition: Option<bool>,
    pub(crate) movement: Option<bool>,
    /// Total odometer (IO 16), metres.
    pub(crate) odometer_m: Option<i64>,
    /// Fuel level: sensor IO id and level.
    pub(crate) fuel: Option<(u16, f64)>,
}

/// A run of stretches in one state: records `a..=b`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Run {
    moving: bool,
    a: usize,
    b: usize,
}

/// The trips and stops of `points` (in any order: they are sorted here). `unit_of`: the unit
/// of a fuel sensor's level, by IO id.
pub(crate) fn trips_and_stops(
    mut points: Vec<TrackPoint>,
    t: &Thresholds,
    unit_of: &dyn Fn(u16) -> Option<&'static str>,
) -> (Vec<Trip>, Vec<Stop>) {
    points.sort_by_key(|p| (p.timestamp_ms, p.hash));
    let points = positioned(points);
    if points.len() < 2 {
        return (Vec::new(), Vec::new());
    }
    // Distance from the first record, metres, at each record.
    let mut along = Vec::with_capacity(points.len());
    let mut total = 0.0;
    along.push(0.0);
    for w in points.windows(2) {
        total += distance_m(w[0].latitude, w[0].longitude, w[1].latitude, w[1].longitude);
        along.push(total);
    }
    let mut runs: Vec<Run> = Vec::new();
    for i in 0..points.len() - 1 {
        let moving = stretch_moving(&points[i], &points[i + 1], along[i + 1] - along[i], t);
        match runs.last_mut() {
            Some(r) if r.moving == moving => r.b = i + 1,
            _ => runs.push(Run {
                moving,
                a: i,
                b: i + 1,
            }),
        }
    }
    let duration = |r: &Run| points[r.b].timestamp_ms - points[r.a].timestamp_ms;
    // 1. Short stops between trips belong to the trip.
    let last = runs.len() - 1;
    for (i, r) in runs.iter_mut().enumerate() {
        if !r.moving && i > 0 && i < last && duration(r) < t.min_stop_ms {
            r.moving = true;
        }
    }
    runs = merge(runs);
    // 2. Short trips belong to the stop around them.
    let fuel_sensor = points
        .iter()
        .filter_map(|p| p.fuel.map(|f| f.0))
        .min_by_key(|id| FUEL_LEVEL_IDS.iter().position(|x| x == id));
    let fuel_unit = fuel_sensor.and_then(unit_of);
    for r in &mut runs {
        if r.moving && trip(&points, &along, r, fuel_sensor, fuel_unit).distance_m < t.min_trip_m {
            r.moving = false;
        }
    }
    runs = merge(runs);
    let mut trips = Vec::new();
    let mut stops = Vec::new();
    for r in &runs {
        if r.moving {
            trips.push(trip(&points, &along, r, fuel_sensor, fuel_unit));
        } else if duration(r) >= t.min_stop_ms {
            let p = &points[r.a];
            stops.push(Stop {
                start_ms: p.timestamp_ms,
                end_ms: points[r.b].timestamp_ms,
                duration_ms: duration(r),
                latitude: p.latitude,
                longitude: p.longitude,
            });
        }
    }
    (trips, stops)
}

/// Records from the first fix on; a record without a fix takes the last fix's position.
fn positioned(points: Vec<TrackPoint>) -> Vec<TrackPoint> {
    let mut last: Option<(f64, f64)> = None;
    points
        .into_iter()
        .filter_map(|mut p| {
            if p.valid {
                last = Some((p.latitude, p.longitude));
            } else {
                (p.latitude, p.longitude) = last?;
            }
            Some(p)
        })
        .collect()
}

/// Whether the vehicle moves from record `p` to the next one `q`, `metres` apart.
fn stretch_moving(p: &TrackPoint, q: &TrackPoint, metres: f64, t: &Thresholds) -> bool {
    let dt = q.timestamp_ms - p.timestamp_ms;
    if dt > t.gap_ms {
        return false;
    }
    match (p.ignition, p.movement) {
        (Some(false), _) => false,
        (_, Some(m)) => m,
        (Some(true), None) => true,
        (None, None) => {
            let implied_kmh = if dt > 0 {
                metres / (dt as f64 / 1000.0) * 3.6
            } else {
                0.0
            };
            f64::from(p.speed) >= t.moving_kmh
                || (metres >= JITTER_M && implied_kmh >= t.moving_kmh)
        }
    }
}

/// Adjacent runs in the same state as one.
fn merge(runs: Vec<Run>) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::with_capacity(runs.len());
    for r in runs {
        match out.last_mut() {
            Some(prev) if prev.moving == r.moving => prev.b = r.b,
            _ => out.push(r),
        }
    }
    out
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The trip of run `r`.
fn trip(
    points: &[TrackPoint],
    along: &[f64],
    r: &Run,
    fuel_sensor: Option<u16>,
    fuel_unit: Option<&str>,
) -> Trip {
    let span = &points[r.a..=r.b];
    let (first, last) = (&points[r.a], &points[r.b]);
    let odometer = (
        span.iter().find_map(|p| p.odometer_m),
        span.iter().rev().find_map(|p| p.odometer_m),
    );
    let (distance_m, distance_source) = match odometer {
        (Some(a), Some(b))
            if b >= a && span.iter().filter(|p| p.odometer_m.is_some()).count() > 1 =>
        {
            ((b - a) as f64, DistanceSource::Odometer)
        }
        _ => (along[r.b] - along[r.a], DistanceSource::Gps),
    };
    let duration_ms = last.timestamp_ms - first.timestamp_ms;
    let level = |p: &TrackPoint| p.fuel.filter(|f| Some(f.0) == fuel_sensor).map(|f| f.1);
    let fuel_used = match (
        span.iter().find_map(level),
        span.iter().rev().find_map(level),
    ) {
        (Some(a), Some(b)) => Some(((a - b) * 1000.0).round() / 1000.0),
        _ => None,
    };
    Trip {
        start_ms: first.timestamp_ms,
        end_ms: last.timestamp_ms,
        duration_ms,
        start: Place {
            latitude: first.latitude,
            longitude: first.longitude,
        },
        end: Place {
            latitude: last.latitude,
            longitude: last.longitude,
        },
        distance_m: round1(distance_m),
        distance_source,
        max_speed_kmh: f64::from(span.iter().map(|p| p.speed).max().unwrap_or(0)),
        avg_speed_kmh: if duration_ms > 0 {
            round1(distance_m / (duration_ms as f64 / 1000.0) * 3.6)
        } else {
            0.0
        },
        fuel_unit: fuel_used.and(fuel_unit.map(Into::into)),
        fuel_used,
        records: span.len(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Metres per 0.001° of latitude on the mean sphere.
    pub(crate) const STEP_M: f64 = 111.195;

    /// A record at minute `min` of the day, `north` thousandths of a degree north of 54°N.
    pub(crate) fn at(min: i64, north: i64, speed: u16, ign: Option<bool>) -> TrackPoint {
        TrackPoint {
            timestamp_ms: min * 60_000,
            hash: min,
            latitude: 54.0 + north as f64 / 1000.0,
            longitude: 25.0,
            valid: true,
            speed,
            ignition: ign,
            movement: ign,
            ..TrackPoint::default()
        }
    }

    /// Drive 10 minutes north (1 step a minute), park 60 minutes with ignition off, drive 10
    /// minutes north again.
    pub(crate) fn day() -> Vec<TrackPoint> {
        let mut v = Vec::new();
        for m in 0..=10 {
            v.push(at(m, m, 40, Some(true)));
        }
        for m in 11..=70 {
            v.push(at(m, 10, 0, Some(false)));
        }
        for m in 71..=80 {
            v.push(at(m, 10 + (m - 70), 40, Some(true)));
        }
        v
    }

    #[test]
    fn drive_park_drive() {
        let (trips, stops) = trips_and_stops(day(), &Thresholds::default(), &|_| None);
        assert_eq!(trips.len(), 2, "{trips:?}");
        // First trip: records of minutes 0..=10; at minute 10 ignition is on, minute 11 off.
        let t = &trips[0];
        assert_eq!((t.start_ms, t.end_ms), (0, 11 * 60_000));
        assert_eq!(t.records, 12);
        assert_eq!(t.distance_source, DistanceSource::Gps);
        assert!(
            (t.distance_m - 10.0 * STEP_M).abs() < 0.2,
            "{}",
            t.distance_m
        );
        assert_eq!(t.max_speed_kmh, 40.0);
        // 1111.95 m in 11 minutes.
        assert_eq!(t.avg_speed_kmh, 6.1);
        assert_eq!(stops.len(), 1);
        let s = &stops[0];
        assert_eq!(
            (s.start_ms, s.end_ms, s.duration_ms),
            (11 * 60_000, 71 * 60_000, 3_600_000)
        );
        assert_eq!((s.latitude, s.longitude), (54.01, 25.0));
        let t = &trips[1];
        assert_eq!((t.start_ms, t.end_ms), (71 * 60_000, 80 * 60_000));
        assert!((t.distance_m - 9.0 * STEP_M).abs() < 0.2);
    }

    #[test]
    fn out_of_order_and_duplicated_times_give_the_same_result() {
        let want = trips_and_stops(day(), &Thresholds::default(), &|_| None);
        let mut shuffled = day();
        shuffled.reverse();
        shuffled.rotate_left(17);
        assert_eq!(
            trips_and_stops(shuffled, &Thresholds::default(), &|_| None),
            want
        );
    }

    #[test]
    fn without_ignition_speed_and_distance_decide() {
        let strip = |mut p: TrackPoint| {
            (p.ignition, p.movement) = (None, None);
            p
        };
        let (trips, stops) = trips_and_stops(
            day().into_iter().map(strip).collect(),
            &Thresholds::default(),
            &|_| None,
        );
        // Speed 0 at minute 70, but 111 m covered to minute 71: moving from minute 70.
        assert_eq!(
            trips
                .iter()
                .map(|t| (t.start_ms / 60_000, t.end_ms / 60_000))
                .collect::<Vec<_>>(),
            [(0, 11), (70, 80)]
        );
        assert_eq!(
            (stops[0].start_ms / 60_000, stops[0].end_ms / 60_000),
            (11, 70)
        );
        // No speed either: the distance covered between records says it moved.
        let no_speed = day()
            .into_iter()
            .map(|p| TrackPoint {
                speed: 0,
                ..strip(p)
            })
            .collect();
        let (trips, stops) = trips_and_stops(no_speed, &Thresholds::default(), &|_| None);
        assert_eq!(
            trips
                .iter()
                .map(|t| (t.start_ms, t.end_ms))
                .collect::<Vec<_>>(),
            [(0, 10 * 60_000), (70 * 60_000, 80 * 60_000)]
        );
        assert_eq!(stops.len(), 1);
        assert_eq!(
            (stops[0].start_ms, stops[0].end_ms),
            (10 * 60_000, 70 * 60_000)
        );
    }

    #[test]
    fn short_stops_join_the_trip_and_short_trips_join_the_stop() {
        let mut v = Vec::new();
        // Drive 5 minutes, 2 minutes at a light, drive 5 more.
        for m in 0..=5 {
            v.push(at(m, m, 40, Some(true)));
        }
        for m in 6..=7 {
            v.push(at(m, 5, 0, Some(false)));
        }
        for m in 8..=13 {
            v.push(at(m, m - 3, 40, Some(true)));
        }
        // Park 30 minutes, move 2 steps (222 m) in the yard, park 30 minutes more.
        for m in 14..=43 {
            v.push(at(m, 10, 0, Some(false)));
        }
        v.push(at(44, 11, 10, Some(true)));
        v.push(at(45, 12, 10, Some(true)));
        for m in 46..=76 {
            v.push(at(m, 12, 0, Some(false)));
        }
        let (trips, stops) = trips_and_stops(v, &Thresholds::default(), &|_| None);
        assert_eq!(
            trips
                .iter()
                .map(|t| (t.start_ms / 60_000, t.end_ms / 60_000))
                .collect::<Vec<_>>(),
            [(0, 14)]
        );
        assert_eq!(
            stops
                .iter()
                .map(|s| (s.start_ms / 60_000, s.end_ms / 60_000))
                .collect::<Vec<_>>(),
            [(14, 76)]
        );
    }

    #[test]
    fn a_gap_ends_the_trip_and_odometer_and_fuel_are_used() {
        let mut v: Vec<TrackPoint> = (0..=10)
            .map(|m| TrackPoint {
                odometer_m: Some(1_000_000 + m * 150),
                fuel: Some((89, 50.0 - m as f64 * 0.5)),
                ..at(m, m, 50 + m as u16, Some(true))
            })
            .collect();
        // No data for two hours, still "moving" by the sensors.
        v.extend((130..=140).map(|m| at(m, m - 110, 50, Some(true))));
        let (trips, stops) = trips_and_stops(v, &Thresholds::default(), &|_| Some("%"));
        assert_eq!(trips.len(), 2);
        let t = &trips[0];
        assert_eq!((t.start_ms, t.end_ms), (0, 10 * 60_000));
        assert_eq!(
            (t.distance_m, t.distance_source),
            (1500.0, DistanceSource::Odometer)
        );
        assert_eq!(
            (t.fuel_used, t.fuel_unit.as_deref()),
            (Some(5.0), Some("%"))
        );
        assert_eq!(t.max_speed_kmh, 60.0);
        assert_eq!(t.avg_speed_kmh, 9.0);
        assert_eq!(trips[1].fuel_used, None);
        assert_eq!(
            stops
                .iter()
                .map(|s| (s.start_ms / 60_000, s.end_ms / 60_000))
                .collect::<Vec<_>>(),
            [(10, 130)]
        );
    }

    #[test]
    fn records_without_fix_take_the_last_position() {
        let mut v = day();
        v[5].valid = false;
        (v[5].latitude, v[5].longitude) = (0.0, 0.0);
        let (trips, _) = trips_and_stops(v, &Thresholds::default(), &|_| None);
        // Minute 5 sits at minute 4's position: the distance to minute 6 is covered after it.
        assert!((trips[0].distance_m - 10.0 * STEP_M).abs() < 0.2);
        assert!(
            trips_and_stops(Vec::new(), &Thresholds::default(), &|_| None)
                .0
                .is_empty()
        );
    }
}
