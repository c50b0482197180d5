//! Reports benchmark (`make bench-reports`; not a timed test): one device with a month of
//! records at one per 10 s (259,200 records) stored through a real `fleetview serve` (release
//! build, on SQLite, or on PostgreSQL under `.ci/with-postgres`), then its trips, stops and
//! events asked through the HTTP API, each request timed: p50 and p99 printed. Goal: under
//! 200 ms for the whole month.
//!
//! The month: each day the vehicle drives from its depot (a circle geofence) for an hour in
//! the morning and back in the evening, and stands still otherwise, ignition off; the records
//! carry ignition, movement, odometer and fuel level as an FMB device's do.

#[path = "../tests/server_common/mod.rs"]
mod server_common;

use std::time::{Duration, Instant};

use fleetview::{AvlRecord, Codec, GpsElement, IoElement, IoValue, Priority};
use serde_json::json;
use server_common::{http, temp_dir, test_pg, Device, Server};

const IMEI: &str = "356307042441013";
const PERIOD_MS: u64 = 10_000;
const DAYS: u64 = 30;
const DAY_MS: u64 = 86_400_000;
/// Records per frame: 64 Codec 8 records of this shape fit in the default 4096-byte frame.
const PER_FRAME: usize = 64;
/// Timed requests per route.
const RUNS: usize = 30;

/// The vehicle at `t` ms into its day: driving out 08:00-09:00 and back 17:00-18:00, 60 km
/// each way at 60 km/h; (metres from the depot, driving).
fn state(t: u64) -> (f64, bool) {
    let h = |x: u64| x * 3_600_000;
    match t {
        t if (h(8)..h(9)).contains(&t) => ((t - h(8)) as f64 / 60.0, true),
        t if (h(9)..h(17)).contains(&t) => (60_000.0, false),
        t if (h(17)..h(18)).contains(&t) => (60_000.0 - (t - h(17)) as f64 / 60.0, true),
        _ => (0.0, false),
    }
}

fn record(start: u64, i: u64, odometer: &mut f64, last: &mut f64) -> AvlRecord {
    let ts = start + i * PERIOD_MS;
    let (metres, driving) = state((ts - start) % DAY_MS);
    *odometer += (metres - *last).abs();
    *last = metres;
    // North along the meridian of 25°E from 54°N (111,195 m per degree).
    let lat = 54.0 + metres / 111_195.08;
    let day = (ts - start) / DAY_MS;
    let fuel = 80 - ((*odometer / 10_000.0) as u64 % 60) as u8;
    let io = [
        (239, IoValue::U8(u8::from(driving))),
        (240, IoValue::U8(u8::from(driving))),
        (16, IoValue::U32(*odometer as u32)),
        (89, IoValue::U8(fuel.saturating_sub(day as u8 % 2))),
    ];
    AvlRecord {
        timestamp_ms: ts,
        priority: Priority(0),
        gps: GpsElement {
            longitude: 250_000_000,
            latitude: (lat * 1e7).round() as i32,
            altitude: 100,
            angle: 0,
            satellites: 9,
            speed: if driving { 60 } else { 0 },
        },
        event_id: 0,
        generation_type: None,
        io: io
            .into_iter()
            .map(|(id, value)| IoElement { id, value })
            .collect(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to filter.
    let engine = if test_pg().is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let dir = temp_dir("bench-reports");
    let server = Server::start(&dir, &[]);
    let (status, fence) = server.post(
        "/api/geofences",
        &json!({"name":"Depot","geometry":{"type":"Point","coordinates":[25.0,54.0],"radius_m":300}}),
    );
    assert_eq!(status, 201, "{fence}");

    let start = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        / DAY_MS
        + 1)
        * DAY_MS;
    let n = DAYS * DAY_MS / PERIOD_MS;
    let mut device = Device::connect(server.tcp, IMEI);
    let (mut odometer, mut last) = (0.0, 0.0);
    let began = Instant::now();
    let mut batch = Vec::with_capacity(PER_FRAME);
    for i in 0..n {
        batch.push(record(start, i, &mut odometer, &mut last));
        if batch.len() == PER_FRAME || i + 1 == n {
            let k = batch.len() as u32;
            assert_eq!(device.send(Codec::Codec8, std::mem::take(&mut batch)), k);
        }
    }
    let stored = began.elapsed();
    println!(
        "reports benchmark on {engine}: {n} records of one device ({DAYS} days, one per {} s) stored in {:.1} s through TCP",
        PERIOD_MS / 1000,
        stored.as_secs_f64()
    );

    if let Some(_pg) = test_pg() {
        // As autovacuum leaves a month of records (a fresh bulk load has neither statistics
        // nor a visibility map, and PostgreSQL would plan it as six rows read from the heap).
        server_common::psql(&server_common::db_arg(&dir), "VACUUM ANALYZE records");
        println!("(PostgreSQL: VACUUM ANALYZE records after the load, as autovacuum would)");
    }
    let month = format!("from={start}&to={}", start + DAYS * DAY_MS);
    let day = format!("from={}&to={}", start + 7 * DAY_MS, start + 8 * DAY_MS);
    println!(
        "{:<34} {:>8} {:>9} {:>9}",
        "request", "items", "p50 ms", "p99 ms"
    );
    for (what, range) in [
        ("trips", &month),
        ("stops", &month),
        ("events", &month),
        ("trips", &day),
    ] {
        let path = format!("/api/devices/{IMEI}/{what}?{range}");
        let mut times = Vec::with_capacity(RUNS);
        let mut items = 0;
        let mut geofence_events = 0;
        for _ in 0..RUNS {
            let t = Instant::now();
            let (status, v) = http(server.http, "GET", &path, None, None);
            times.push(t.elapsed());
            assert_eq!(status, 200, "{path}: {v}");
            let list = v.as_array().cloned().unwrap_or_default();
            items = list.len();
            geofence_events = list
                .iter()
                .filter(|e| {
                    e["type"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("geofence_"))
                })
                .count();
        }
        times.sort();
        let label = format!(
            "{what} ({})",
            if range == &month { "30 days" } else { "1 day" }
        );
        println!(
            "{label:<34} {items:>8} {:>9.1} {:>9.1}",
            percentile(&times, 0.5).as_secs_f64() * 1000.0,
            percentile(&times, 0.99).as_secs_f64() * 1000.0
        );
        if what == "trips" && range == &month {
            assert_eq!(items as u64, 2 * DAYS, "two trips a day");
        }
        if what == "events" && range == &month {
            assert_eq!(
                geofence_events as u64,
                2 * DAYS,
                "leaving and entering the depot each day"
            );
        }
    }
    server.stop();
}
