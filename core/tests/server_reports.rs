//! Trips, stops and geofence events through a real `fleetview serve` (real sockets, the
//! binary's own database; on PostgreSQL under `.ci/with-postgres`): scripted devices drive,
//! park with the ignition off and drive back home, crossing a geofence twice; one device
//! without ignition and movement IOs; one sending the same day out of order, half of it
//! after a reconnect; geofence events forwarded with the records they come from.

mod forward_common;
mod server_common;

use fleetview::{AvlRecord, Codec, GpsElement, IoElement, IoValue, Priority};
use serde_json::{json, Value};
use server_common::*;
use std::io::{Read, Write};

const A: &str = "356307042441013";
const NO_IGNITION: &str = "356307042441014";
const SHUFFLED: &str = "356307042441015";

/// Metres per 0.001° of latitude on the mean sphere (6,371,008.8 m).
const STEP_M: f64 = 111.195_08;

/// Where the vehicle is at minute `m`: north from 54.000°N in thousandths of a degree —
/// drive north for 10 minutes, park until minute 70, drive back south until minute 80.
fn north(m: u64) -> u64 {
    match m {
        0..=10 => m,
        11..=70 => 10,
        _ => 80 - m,
    }
}

fn driving(m: u64) -> bool {
    m <= 10 || m >= 71
}

/// The day's minutes with a record: every minute while driving, every 10 minutes parked.
fn minutes() -> Vec<u64> {
    (0..=80)
        .filter(|&m| driving(m) || m % 10 == 0 || m == 11)
        .collect()
}

/// The record of minute `m` from `base`; `sensors`: ignition, movement, odometer and fuel.
fn at(base: u64, m: u64, sensors: bool) -> AvlRecord {
    let moving = driving(m) && m != 80;
    let odometer = 1_000_000 + 150 * (m.min(10) + m.saturating_sub(70)) as u32;
    let fuel = 60 - (m.min(10) + m.saturating_sub(70)) as u8 / 5;
    let io = if sensors {
        vec![
            (239, IoValue::U8(u8::from(moving))),
            (240, IoValue::U8(u8::from(moving))),
            (16, IoValue::U32(odometer)),
            (89, IoValue::U8(fuel)),
        ]
    } else {
        vec![(66, IoValue::U16(12_500))]
    };
    AvlRecord {
        timestamp_ms: base + m * 60_000,
        priority: Priority(0),
        gps: GpsElement {
            longitude: 250_000_000,
            latitude: 540_000_000 + 10_000 * north(m) as i32,
            altitude: 100,
            angle: 0,
            satellites: 9,
            speed: if moving { 40 } else { 0 },
        },
        event_id: 0,
        generation_type: None,
        io: io
            .into_iter()
            .map(|(id, value)| IoElement { id, value })
            .collect(),
    }
}

fn day(base: u64, sensors: bool) -> Vec<AvlRecord> {
    minutes()
        .into_iter()
        .map(|m| at(base, m, sensors))
        .collect()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn get_ok(server: &Server, path: &str) -> Value {
    let (status, v) = server.get(path);
    assert_eq!(status, 200, "{path}: {v}");
    v
}

/// `(start, end)` minutes of each item.
fn spans(items: &Value, base: u64) -> Vec<(u64, u64)> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let m = |k: &str| (t[k].as_u64().unwrap() - base) / 60_000;
            (m("start_ms"), m("end_ms"))
        })
        .collect()
}

fn without_imei(mut events: Value) -> Value {
    for e in events.as_array_mut().unwrap() {
        e.as_object_mut().unwrap().remove("imei");
    }
    events
}

#[test]
fn trips_stops_and_geofence_events_of_scripted_days() {
    let dir = temp_dir("reports");
    let server = Server::start(&dir, &[]);

    // The depot where the vehicle parks (north 10: 54.010°N), and a band it crosses on the
    // way out and on the way back (54.0025°N to 54.0055°N: north 3, 4 and 5).
    let (status, depot) = server.post(
        "/api/geofences",
        &json!({"name":"Depot","geometry":{"type":"Point","coordinates":[25.0,54.01],"radius_m":50}}),
    );
    assert_eq!(status, 201, "{depot}");
    assert_eq!(depot["name"], "Depot");
    assert_eq!(depot["geometry"]["radius_m"], 50.0);
    let band = json!({"type":"Polygon","coordinates":[[[24.99,54.0025],[25.01,54.0025],[25.01,54.0055],[24.99,54.0055],[24.99,54.0025]]]});
    let (status, band) = server.post("/api/geofences", &json!({"name":"Bridge","geometry":band}));
    assert_eq!(status, 201, "{band}");
    let (depot_id, band_id) = (depot["id"].as_i64().unwrap(), band["id"].as_i64().unwrap());
    let listed = get_ok(&server, "/api/geofences");
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(listed[1]["geometry"]["type"], "Polygon");

    // Records timed after the geofences' creation (a geofence ignores earlier ones).
    let base = now_ms() / 60_000 * 60_000 + 60_000;
    let mut live = Live::open(server.http, "");
    let mut a = Device::connect(server.tcp, A);
    for chunk in day(base, true).chunks(7) {
        assert_eq!(a.send(Codec::Codec8, chunk.to_vec()), chunk.len() as u32);
    }
    let entered = live.next("geofence", |v| v["imei"] == A);
    assert_eq!(entered["type"], "geofence_enter");
    assert_eq!(entered["geofence_id"], band_id);
    assert_eq!(entered["timestamp_ms"], base + 3 * 60_000);

    // Drive, park with the ignition off, drive back.
    let trips = get_ok(&server, &format!("/api/devices/{A}/trips"));
    assert_eq!(spans(&trips, base), [(0, 11), (71, 80)], "{trips}");
    let t = &trips[0];
    assert_eq!(t["duration_ms"], 660_000);
    assert_eq!(t["distance_m"], 1500.0);
    assert_eq!(t["distance_source"], "odometer");
    assert_eq!(t["max_speed_kmh"], 40.0);
    // 1500 m in 11 minutes.
    assert_eq!(t["avg_speed_kmh"], 8.2);
    assert_eq!(t["fuel_used"], 2.0);
    assert_eq!(t["fuel_unit"], "%");
    assert_eq!(t["records"], 12);
    assert_eq!(t["start"], json!({"latitude":54.0,"longitude":25.0}));
    assert_eq!(t["end"], json!({"latitude":54.01,"longitude":25.0}));
    assert_eq!(trips[1]["distance_m"], 1350.0);
    assert_eq!(trips[1]["records"], 10);
    let stops = get_ok(&server, &format!("/api/devices/{A}/stops"));
    assert_eq!(
        stops,
        json!([{"start_ms":base + 11 * 60_000,"end_ms":base + 71 * 60_000,"duration_ms":3_600_000,
                "latitude":54.01,"longitude":25.0}])
    );

    // The band twice, the depot once.
    let events = get_ok(&server, &format!("/api/devices/{A}/events"));
    let summary: Vec<(String, u64, i64)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                (e["timestamp_ms"].as_u64().unwrap() - base) / 60_000,
                e["geofence_id"].as_i64().unwrap(),
            )
        })
        .collect();
    let want = [
        ("geofence_enter", 3, band_id),
        ("geofence_exit", 6, band_id),
        ("geofence_enter", 10, depot_id),
        ("geofence_exit", 71, depot_id),
        ("geofence_enter", 75, band_id),
        ("geofence_exit", 78, band_id),
    ];
    assert_eq!(
        summary,
        want.map(|(k, m, g)| (k.to_string(), m, g)),
        "{events}"
    );
    assert_eq!(events[2]["geofence_name"], "Depot");
    assert_eq!(events[2]["latitude"], 54.01);
    // A time range: the afternoon drive only.
    let later = get_ok(
        &server,
        &format!("/api/devices/{A}/events?from={}", base + 72 * 60_000),
    );
    assert_eq!(later.as_array().unwrap().len(), 2, "{later}");

    // Thresholds per request: a 2-hour minimum stop makes the whole day one trip.
    let one = get_ok(
        &server,
        &format!("/api/devices/{A}/trips?min_stop_duration=7200"),
    );
    assert_eq!(spans(&one, base), [(0, 80)]);
    let (status, err) = server.get(&format!("/api/devices/{A}/trips?trip_gap=-5"));
    assert_eq!(
        (status, err["error"]["kind"].as_str()),
        (400, Some("bad_request"))
    );

    // No ignition, no movement, no odometer: speed and distance decide. Speed 0 at minute
    // 70, but 111 m covered by minute 71: the second trip starts at 70.
    let mut b = Device::connect(server.tcp, NO_IGNITION);
    b.send(Codec::Codec8, day(base, false));
    let trips = get_ok(&server, &format!("/api/devices/{NO_IGNITION}/trips"));
    assert_eq!(spans(&trips, base), [(0, 11), (70, 80)], "{trips}");
    assert_eq!(trips[0]["distance_source"], "gps");
    assert_eq!(
        trips[0]["distance_m"],
        (10.0 * STEP_M * 10.0).round() / 10.0
    );
    assert_eq!(trips[0]["fuel_used"], Value::Null);
    let stops = get_ok(&server, &format!("/api/devices/{NO_IGNITION}/stops"));
    assert_eq!(spans(&stops, base), [(11, 70)]);

    // The same day as A, out of order: the afternoon first, then the morning newest first,
    // half of it after a reconnect (a device sending its buffer), with one frame resent.
    let records = day(base, true);
    let (morning, afternoon) = records.split_at(
        records
            .iter()
            .position(|r| r.timestamp_ms >= base + 71 * 60_000)
            .unwrap(),
    );
    let mut c = Device::connect(server.tcp, SHUFFLED);
    c.send(Codec::Codec8Ext, afternoon.to_vec());
    let mut rev: Vec<AvlRecord> = morning.to_vec();
    rev.reverse();
    let (first, rest) = rev.split_at(rev.len() / 2);
    c.send(Codec::Codec8Ext, first.to_vec());
    drop(c);
    let mut c = Device::connect(server.tcp, SHUFFLED);
    for chunk in rest.chunks(5) {
        c.send(Codec::Codec8Ext, chunk.to_vec());
    }
    c.send(Codec::Codec8Ext, rest[..3].to_vec());
    for what in ["trips", "stops"] {
        assert_eq!(
            get_ok(&server, &format!("/api/devices/{SHUFFLED}/{what}")),
            get_ok(&server, &format!("/api/devices/{A}/{what}")),
            "{what}"
        );
    }
    assert_eq!(
        without_imei(get_ok(&server, &format!("/api/devices/{SHUFFLED}/events"))),
        without_imei(get_ok(&server, &format!("/api/devices/{A}/events")))
    );

    // Deleting a geofence deletes its events. A DELETE needs no body nor Content-Type (from
    // another origin a browser preflights it, which the server never grants).
    let mut s = std::net::TcpStream::connect(server.http).unwrap();
    write!(
        s,
        "DELETE /api/geofences/{band_id} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.http
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    let events = get_ok(&server, &format!("/api/devices/{A}/events"));
    assert_eq!(events.as_array().unwrap().len(), 2, "{events}");
    let (status, err) = http(
        server.http,
        "DELETE",
        &format!("/api/geofences/{band_id}"),
        None,
        None,
    );
    assert_eq!(
        (status, err["error"]["kind"].as_str()),
        (404, Some("unknown_geofence"))
    );
    assert_eq!(
        get_ok(&server, "/api/geofences").as_array().unwrap().len(),
        1
    );
    server.stop();
}

#[test]
fn geofences_are_validated() {
    let dir = temp_dir("reports-invalid");
    let server = Server::start(&dir, &[]);
    let cases = [
        (
            json!({"name":"x","geometry":{"type":"Polygon","coordinates":[vec![[25, 54]; 2501]]}}),
            "invalid_ring",
            "geometry.coordinates[0]: 2501 positions, at most 2500 in a ring",
        ),
        (
            json!({"name":"x","radius_m":5,"geometry":{"type":"Point","coordinates":[25,54]}}),
            "invalid_radius",
            "radius_m: a Point geofence is a circle and needs a radius in metres",
        ),
        (
            json!({"name":"x","geometry":{"type":"Polygon","coordinates":[[[25,54],[25.1,54],[25,54]]]}}),
            "invalid_ring",
            "geometry.coordinates[0]: 3 positions; a ring needs at least 4 (a triangle and the first position again)",
        ),
        (
            json!({"name":"x","geometry":{"type":"Point","coordinates":[25,54],"radius_m":-3}}),
            "invalid_radius",
            "radius_m: -3 m, expected above 0 and at most 1000000 m",
        ),
        (
            json!({"name":"x","geometry":{"type":"Point","coordinates":[54.7,200]}}),
            "invalid_coordinates",
            "geometry.coordinates: latitude 200 is outside -90..90 (GeoJSON puts the longitude first)",
        ),
        (
            json!({"name":"x","geometry":{"type":"MultiPolygon","coordinates":[]}}),
            "unsupported_geometry",
            "geometry.type \"MultiPolygon\": expected \"Polygon\", or \"Point\" with radius_m (a circle)",
        ),
        (
            json!({"geometry":{"type":"Point","coordinates":[25,54],"radius_m":5}}),
            "invalid_geofence_name",
            "name: expected a string with more than spaces, tabs and line breaks",
        ),
    ];
    for (body, kind, message) in cases {
        let (status, err) = server.post("/api/geofences", &body);
        assert_eq!(status, 400, "{body}: {err}");
        assert_eq!(err["error"]["kind"], kind, "{body}");
        assert_eq!(err["error"]["message"], message, "{body}");
    }
    let (status, err) = http(server.http, "DELETE", "/api/geofences/abc", None, None);
    assert_eq!(
        (status, err["error"]["kind"].as_str()),
        (400, Some("bad_request"))
    );
    assert_eq!(get_ok(&server, "/api/geofences"), json!([]));
    let (status, _) = server.get("/api/devices/356307042441099/trips");
    assert_eq!(status, 404);
    server.stop();
}

/// Geofence events go to the forwarders (`--forward`) from the transaction of their records:
/// after those records, exactly once each.
#[test]
fn geofence_events_are_forwarded_after_their_records() {
    let dir = temp_dir("reports-forward");
    let rx = forward_common::Receiver::start();
    let server = Server::start(&dir, &["--forward", &rx.url()]);
    let (status, v) = server.post(
        "/api/geofences",
        &json!({"name":"Depot","geometry":{"type":"Point","coordinates":[25.0,54.01],"radius_m":50}}),
    );
    assert_eq!(status, 201, "{v}");
    let base = now_ms() / 60_000 * 60_000 + 60_000;
    let mut a = Device::connect(server.tcp, A);
    for chunk in day(base, true).chunks(9) {
        a.send(Codec::Codec8, chunk.to_vec());
    }
    let items = rx.wait("the depot's exit", |i| {
        i.iter().any(|v| v["type"] == "geofence_exit")
    });
    let kinds: Vec<(&str, u64)> = items
        .iter()
        .filter(|v| {
            v["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("geofence_"))
        })
        .map(|v| {
            (
                v["type"].as_str().unwrap(),
                (v["timestamp_ms"].as_u64().unwrap() - base) / 60_000,
            )
        })
        .collect();
    assert_eq!(kinds, [("geofence_enter", 10), ("geofence_exit", 71)]);
    let exit = items.iter().find(|v| v["type"] == "geofence_exit").unwrap();
    assert_eq!(exit["imei"], A);
    assert_eq!(exit["geofence_name"], "Depot");
    assert_eq!(exit["latitude"], 54.009);
    // The record it happened at is forwarded before it.
    let at = |p: &dyn Fn(&Value) -> bool| items.iter().position(p).unwrap();
    assert!(
        at(&|v| v["type"] == "record" && v["timestamp_ms"] == exit["timestamp_ms"])
            < at(&|v| v["type"] == "geofence_exit")
    );
    server.stop();
}
