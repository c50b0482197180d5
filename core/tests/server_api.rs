//! `fleetview serve` through its HTTP API with devices on real sockets: commands with a scripted
//! device (and `fleetview send`), live events, positions as JSON and GeoJSON, UDP, the token.
#![cfg(feature = "server")]

mod server_common;

use std::process::{Command, Stdio};

use fleetview::command::CommandMessage;
use fleetview::{Codec, Content};
use serde_json::json;
use server_common::*;

#[test]
fn command_round_trip_with_a_scripted_device() {
    let dir = temp_dir("commands");
    let server = Server::start(&dir, &[]);
    let imei = "356307042441013";
    let mut d = Device::connect(server.tcp, imei);
    assert_eq!(d.send(Codec::Codec8, records(1_000_000, 2)), 2);
    let mut live = Live::open(server.http, "");

    // Codec 12, text.
    let (status, cmd) = server.post(
        &format!("/api/devices/{imei}/commands"),
        &json!({"text": "getinfo"}),
    );
    assert_eq!(status, 201, "{cmd}");
    assert_eq!(cmd["codec"], "12");
    // Queued, or already taken by the connection, which looks for commands right after an ack.
    assert!(
        cmd["status"] == "queued" || cmd["status"] == "sent",
        "{cmd}"
    );
    let id = cmd["id"].as_i64().unwrap();
    let p = read_command(&mut d);
    let Content::Command(c) = &p.content else {
        panic!("{p:?}")
    };
    assert_eq!(
        (c.codec, c.messages[0].kind),
        (Codec::Codec12, CommandMessage::COMMAND)
    );
    assert_eq!(c.messages[0].text(), Some("getinfo"));
    wait_status(&server, id, "sent");
    respond(
        &mut d,
        Codec::Codec12,
        CommandMessage::RESPONSE,
        "RTC:2024/5/1 12:00 Init:2024/5/1 11:00",
    );
    let done = wait_status(&server, id, "answered");
    assert_eq!(
        done["response"]["text"],
        "RTC:2024/5/1 12:00 Init:2024/5/1 11:00"
    );
    assert_eq!(done["response"]["type"], 6);
    assert!(done["answered_ms"].as_i64().unwrap() >= done["sent_ms"].as_i64().unwrap());
    let ev = live.next("command", |v| v["id"] == id && v["status"] == "answered");
    assert_eq!(ev["response"]["text"], done["response"]["text"]);

    // Codec 14, hex payload; the device answers nACK: the command fails with the reason.
    let (status, cmd) = server.post(
        &format!("/api/devices/{imei}/commands"),
        &json!({"hex": "67 65 74 76 65 72", "codec": "14"}),
    );
    assert_eq!(status, 201, "{cmd}");
    let id = cmd["id"].as_i64().unwrap();
    let p = read_command(&mut d);
    let Content::Command(c) = &p.content else {
        panic!("{p:?}")
    };
    assert_eq!(c.codec, Codec::Codec14);
    assert_eq!(c.messages[0].payload, b"getver");
    assert_eq!(c.messages[0].imei_digits().as_deref(), Some(imei));
    respond(&mut d, Codec::Codec14, CommandMessage::NACK, "");
    let failed = wait_status(&server, id, "failed");
    assert!(
        failed["error"].as_str().unwrap().contains("nACK"),
        "{failed}"
    );

    // Records keep flowing and being acked around commands.
    assert_eq!(d.send(Codec::Codec8, records(2_000_000, 1)), 1);
}

#[test]
fn commands_wait_for_the_device_and_the_send_command_prints_the_answer() {
    let dir = temp_dir("send");
    let server = Server::start(&dir, &["--token", "s3cret"]);
    let imei = "356307042441013";
    // Known to the server (its data stored: a device that only logs in gets no row), then gone.
    let mut d = Device::connect(server.tcp, imei);
    assert_eq!(d.send(Codec::Codec8Ext, records(500_000, 1)), 1);
    drop(d);
    server.wait_log("connection closed");

    let send = Command::new(env!("CARGO_BIN_EXE_fleetview"))
        .args([
            "send",
            imei,
            "getver",
            "--timeout",
            "30",
            "--token",
            "s3cret",
            "--server",
        ])
        .arg(format!("http://{}", server.http))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command is queued while the device is away; it goes out when it is back and its data
    // is acked.
    server.wait_log("command queued");
    let mut d = Device::connect(server.tcp, imei);
    assert_eq!(d.send(Codec::Codec8Ext, records(1_000_000, 3)), 3);
    let p = read_command(&mut d);
    let Content::Command(c) = &p.content else {
        panic!("{p:?}")
    };
    assert_eq!(c.messages[0].text(), Some("getver"));
    respond(
        &mut d,
        Codec::Codec12,
        CommandMessage::RESPONSE,
        "Ver:03.27.07 GPS:AXN_5.1.9",
    );
    let out = send.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Ver:03.27.07 GPS:AXN_5.1.9"
    );

    // Without the token: a clear error and a failing exit status.
    let out = Command::new(env!("CARGO_BIN_EXE_fleetview"))
        .args(["send", imei, "getver", "--server"])
        .arg(format!("http://{}", server.http))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("token"),
        "{out:?}"
    );
}

#[test]
fn command_requests_are_checked() {
    let dir = temp_dir("bad-commands");
    let server = Server::start(&dir, &[]);
    let imei = "356307042441013";
    drop(Device::connect(server.tcp, imei));
    server.wait_log("device logged in");
    let path = format!("/api/devices/{imei}/commands");
    for (body, needle) in [
        (json!({}), "exactly one"),
        (json!({"text": "a", "hex": "00"}), "exactly one"),
        (json!({"text": ""}), "exactly one"),
        (json!({"hex": "0g"}), "hex"),
        (json!({"text": "getinfo", "codec": "13"}), "Codec"),
    ] {
        let (status, v) = server.post(&path, &body);
        assert_eq!(status, 400, "{body} → {v}");
        assert_eq!(v["error"]["kind"], "bad_request");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{v}"
        );
    }
    let (status, v) = server.post(
        "/api/devices/111111111111111/commands",
        &json!({"text": "getinfo"}),
    );
    assert_eq!(
        (status, v["error"]["kind"].as_str()),
        (404, Some("unknown_device"))
    );
    let (status, v) = server.get("/api/commands/999");
    assert_eq!(
        (status, v["error"]["kind"].as_str()),
        (404, Some("unknown_command"))
    );
    let (status, _) = server.get("/api/commands/abc");
    assert_eq!(status, 400);
}

#[test]
fn positions_by_time_range_as_json_and_geojson_and_live_records() {
    let dir = temp_dir("positions");
    let server = Server::start(&dir, &[]);
    let imei = "356307042441013";
    let mut live = Live::open(server.http, "");
    let mut d = Device::connect(server.tcp, imei);
    let online = live.next("device", |v| v["imei"] == imei);
    assert_eq!(online["connected"], true);
    let t0 = 1_700_000_000_000u64;
    assert_eq!(d.send(Codec::Codec8, records(t0, 10)), 10);
    let ev = live.next("records", |v| v["imei"] == imei);
    assert_eq!(ev["records"].as_array().unwrap().len(), 10);
    assert_eq!(ev["records"][9]["timestamp_ms"], t0 + 9000);

    let range = server
        .get(&format!(
            "/api/devices/{imei}/positions?from={}&to={}",
            t0 + 2000,
            t0 + 5000
        ))
        .1;
    let ts: Vec<_> = range["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["timestamp_ms"].as_u64().unwrap())
        .collect();
    assert_eq!(ts, [t0 + 2000, t0 + 3000, t0 + 4000, t0 + 5000]);
    // ISO 8601 works too; limit keeps the most recent, still ascending.
    let iso = fleetview::time::iso8601(t0 + 7000);
    let last = server
        .get(&format!("/api/devices/{imei}/positions?from={iso}&limit=2"))
        .1;
    let ts: Vec<_> = last["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["timestamp_ms"].as_u64().unwrap())
        .collect();
    assert_eq!(ts, [t0 + 8000, t0 + 9000]);

    let (status, geo) = server.get(&format!("/api/devices/{imei}/positions?format=geojson"));
    assert_eq!(status, 200);
    assert_eq!(geo["type"], "FeatureCollection");
    let f = &geo["features"][0];
    assert_eq!(f["geometry"]["type"], "Point");
    assert_eq!(f["geometry"]["coordinates"][1], 54.667425);
    assert_eq!(f["properties"]["timestamp_ms"], t0);
    assert!(f["properties"].get("latitude").is_none());

    for bad in ["from=yesterday", "limit=0", "format=kml"] {
        let (status, v) = server.get(&format!("/api/devices/{imei}/positions?{bad}"));
        assert_eq!(status, 400, "{bad}: {v}");
    }
    assert_eq!(server.get("/api/devices/111111111111111/positions").0, 404);

    drop(d);
    let offline = live.next("device", |v| v["imei"] == imei && v["connected"] == false);
    assert_eq!(offline["connected"], false);
}

#[test]
fn udp_datagrams_are_stored_then_acked_once_per_record() {
    let dir = temp_dir("udp");
    let server = Server::start(&dir, &[]);
    let dev = UdpDevice::new("352093086403655");
    let dg = dev.datagram(0xCAFE, 7, records(1_000_000, 3));
    assert_eq!(
        dev.exchange(server.udp, &dg),
        [0x00, 0x05, 0xCA, 0xFE, 0x01, 0x07, 0x03]
    );
    // The same datagram again (lost ack): acked, no new rows.
    assert_eq!(
        dev.exchange(server.udp, &dg),
        [0x00, 0x05, 0xCA, 0xFE, 0x01, 0x07, 0x03]
    );
    assert_eq!(server.positions("352093086403655").len(), 3);
    // A broken datagram gets no answer: the next answer is for the good one after it.
    let mut bad = dev.datagram(0xBEEF, 8, records(2_000_000, 1));
    bad.truncate(bad.len() - 5);
    dev.socket.send_to(&bad, server.udp).unwrap();
    let good = dev.datagram(0xCAFF, 9, records(3_000_000, 2));
    assert_eq!(
        dev.exchange(server.udp, &good),
        [0x00, 0x05, 0xCA, 0xFF, 0x01, 0x09, 0x02]
    );
    let log = server.wait_log("datagram rejected");
    assert!(log.contains("offset="), "{log}");
    assert_eq!(server.positions("352093086403655").len(), 5);
    let devices = server.get("/api/devices").1;
    assert_eq!(devices[0]["connected"], true);
    assert_eq!(devices[0]["transport"], "udp");
}

#[test]
fn the_token_guards_the_api_and_other_interfaces_need_one() {
    let dir = temp_dir("token");
    let server = Server::start(&dir, &["--token", "t0ken"]);
    let (status, v) = server.get("/api/devices");
    assert_eq!(
        (status, v["error"]["kind"].as_str()),
        (401, Some("unauthorized"))
    );
    assert_eq!(
        http(server.http, "GET", "/api/devices", None, Some("wrong")).0,
        401
    );
    assert_eq!(
        http(server.http, "GET", "/api/devices", None, Some("t0ken")).0,
        200
    );
    // EventSource cannot send headers: the token in the query.
    Live::open(server.http, "?access_token=t0ken");
    // The UI itself needs no token (it asks for one after a 401).
    let (status, head, _) = http_raw(server.http, "GET", "/", None, None);
    assert_eq!(status, 200);
    assert!(head.contains("text/html"));

    let out = Command::new(env!("CARGO_BIN_EXE_fleetview"))
        .args([
            "serve",
            "--tcp",
            "127.0.0.1:0",
            "--udp",
            "127.0.0.1:0",
            "--http",
            "0.0.0.0:0",
            "--db",
        ])
        .arg(dir.join("other.db"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to serve HTTP on 0.0.0.0:0 without --token"),
        "{err}"
    );
}

#[test]
fn the_web_ui_is_served_from_its_directory() {
    let dir = temp_dir("web");
    let web = dir.join("dist");
    std::fs::create_dir_all(web.join("vendor")).unwrap();
    std::fs::write(
        web.join("index.html"),
        "<!doctype html><title>Fleetview</title>",
    )
    .unwrap();
    std::fs::write(web.join("app.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(web.join("vendor/app.js"), "export {}").unwrap();
    std::fs::write(dir.join("secret.txt"), "no").unwrap();
    let server = Server::start(&dir, &["--web", web.to_str().unwrap()]);
    let (status, head, body) = http_raw(server.http, "GET", "/", None, None);
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"<!doctype html><title>Fleetview</title>"[..])
    );
    assert!(head.contains("text/html"));
    let (status, head, _) = http_raw(server.http, "GET", "/app.wasm", None, None);
    assert_eq!(status, 200);
    assert!(head.contains("application/wasm"), "{head}");
    let (_, head, _) = http_raw(server.http, "GET", "/vendor/app.js", None, None);
    assert!(head.contains("text/javascript"), "{head}");
    assert_eq!(
        http_raw(server.http, "GET", "/../secret.txt", None, None).0,
        404
    );
    assert_eq!(
        http_raw(server.http, "GET", "/missing.js", None, None).0,
        404
    );
    // App routes fall back to index.html; unknown API routes answer JSON.
    assert_eq!(http_raw(server.http, "GET", "/live", None, None).0, 200);
    let (status, v) = server.get("/api/nothing");
    assert_eq!(
        (status, v["error"]["kind"].as_str()),
        (404, Some("not_found"))
    );
}

/// The hex of a vector file of `tests/vectors`, as bytes.
fn vector_bytes(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/vectors/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    fleetview::hex::decode(v["hex"].as_str().unwrap()).unwrap()
}

/// The IO element `id` of a stored record.
fn io_of(record: &serde_json::Value, id: u16) -> serde_json::Value {
    record["io"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no IO {id} in {record}"))
}

#[test]
fn composite_values_and_the_serving_cell_reach_the_api_and_the_live_stream() {
    let dir = temp_dir("composite");
    let server = Server::start(&dir, &[]);
    let imei = "356307042441014";
    let mut live = Live::open(server.http, "");
    let mut d = Device::connect(server.tcp, imei);
    // An FMB device in beacon mode: 24 records of beacons, EYE lists, DTC, VIN, cell IOs.
    d.write(&vector_bytes(
        "composite_fmb_codec8e_24_records_beacons_sensors",
    ));
    assert_eq!(d.ack(), 24);
    let ev = live.next("records", |v| v["imei"] == imei);
    let beacons = io_of(&ev["records"][0], 385);
    assert_eq!(beacons["decoded"]["beacons"][0]["battery_mv"], 3048);

    let positions = server.positions(imei);
    assert_eq!(positions.len(), 24);
    let first = &positions[0];
    let list = io_of(first, 385);
    assert_eq!(list["name"], "Beacon");
    assert_eq!(list["decoded"]["beacons"][0]["type"], "ibeacon");
    assert_eq!(
        list["decoded"]["beacons"][0]["uuid"],
        "e2c56db5-dffb-48d2-b060-d0f5a71096e0"
    );
    assert_eq!(list["decoded"]["beacons"][0]["temperature_c"], 21.5);
    let eye = io_of(first, 11317);
    assert_eq!(eye["decoded"]["beacons"][0]["mac"], "7c:d9:f4:03:8a:21");
    assert_eq!(eye["decoded"]["beacons"][0]["eye"]["humidity"], 41);
    assert_eq!(io_of(first, 256)["decoded"]["vin"], "WVWZZZ1KZAW000152");
    assert_eq!(
        io_of(&positions[9], 281)["decoded"]["codes"],
        json!(["P0101", "P0300"])
    );
    // One beacon list split over two records: each part stored and decoded on its own.
    assert_eq!(io_of(&positions[5], 385)["decoded"]["parts"], 2);
    assert_eq!(io_of(&positions[6], 385)["decoded"]["part"], 2);
    assert_eq!(
        first["network"],
        json!({"mcc":246,"mnc":2,"mnc_digits":2,"lac":3401,"cell_id":24721,"signal":4})
    );
    assert_eq!(positions[12]["network"]["cell_id"], 27_449_604);

    // Malformed composite values are stored and acked like any record, their hex kept.
    d.write(&vector_bytes("composite_malformed_values"));
    assert_eq!(d.ack(), 4);
    let positions = server.positions(imei);
    assert_eq!(positions.len(), 28);
    let truncated = io_of(&positions[24], 385);
    assert!(truncated["hex"].is_string());
    assert!(truncated.get("decoded").is_none(), "{truncated}");
}
