//! `GET /metrics` after a scripted session over real sockets: the values are the session's.
#![cfg(feature = "server")]

mod server_common;

use fleetview::Codec;
use serde_json::json;
use server_common::*;

const IMEI: &str = "356307042441013";
const STRANGER: &str = "352093080000002";
const TOKEN: &str = "metrics-t0ken";

/// The value of the sample `name` (with its labels, as printed).
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
        .parse()
        .unwrap()
}

fn scrape(server: &Server) -> String {
    let (status, headers, body) = http_raw(server.http, "GET", "/metrics", None, Some(TOKEN));
    assert_eq!(status, 200, "{headers}");
    assert!(
        headers.to_ascii_lowercase().contains("text/plain"),
        "{headers}"
    );
    String::from_utf8(body).unwrap()
}

#[test]
fn metrics_count_a_scripted_session() {
    let dir = temp_dir("metrics");
    std::fs::write(dir.join("allow"), format!("{IMEI}\n")).unwrap();
    let server = Server::start(
        &dir,
        &[
            "--allow",
            dir.join("allow").to_str().unwrap(),
            "--token",
            TOKEN,
        ],
    );
    assert_eq!(server.get("/metrics").0, 401, "behind the token");

    let (_, refused) = Device::try_login(server.tcp, STRANGER);
    assert_eq!(refused, Some(0));
    let mut d = Device::connect(server.tcp, IMEI);
    assert_eq!(d.send(Codec::Codec8, records(1_700_000_000_000, 3)), 3);
    assert_eq!(d.send(Codec::Codec8, records(1_700_000_010_000, 2)), 2);
    // The same frame again: acked, nothing new stored.
    assert_eq!(d.send(Codec::Codec8, records(1_700_000_010_000, 2)), 2);
    let (status, v) = http(
        server.http,
        "POST",
        &format!("/api/devices/{IMEI}/commands"),
        Some(&json!({"text": "getver"})),
        Some(TOKEN),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(command_text(&mut d), "getver");
    respond(
        &mut d,
        Codec::Codec12,
        fleetview::command::CommandMessage::RESPONSE,
        "Ver:03.28",
    );
    let id = v["id"].as_i64().unwrap();
    let start = std::time::Instant::now();
    loop {
        let (_, c) = http(
            server.http,
            "GET",
            &format!("/api/commands/{id}"),
            None,
            Some(TOKEN),
        );
        if c["status"] == "answered" {
            break;
        }
        assert!(start.elapsed() < WAIT, "{c}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // A frame with a broken CRC: skipped, not acked.
    let mut bad = frame(Codec::Codec8, records(1_700_000_020_000, 1));
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let mut g = Device::connect(server.tcp, IMEI);
    g.write(&bad);
    server.wait_log("frame skipped, not acked");
    drop(d);

    let text = scrape(&server);
    assert_eq!(sample(&text, "fleetview_records_committed_total"), 5.0);
    assert_eq!(
        sample(&text, "fleetview_logins_total{result=\"accepted\"}"),
        2.0
    );
    assert_eq!(
        sample(&text, "fleetview_logins_total{result=\"refused\"}"),
        1.0
    );
    assert_eq!(
        sample(&text, "fleetview_acks_total{transport=\"tcp\"}"),
        3.0
    );
    assert_eq!(sample(&text, "fleetview_ack_latency_seconds_count"), 3.0);
    assert!(sample(&text, "fleetview_commit_seconds_count") >= 3.0);
    assert_eq!(
        sample(
            &text,
            "fleetview_decode_errors_total{kind=\"crc_mismatch\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(&text, "fleetview_commands_total{status=\"queued\"}"),
        1.0
    );
    assert_eq!(
        sample(&text, "fleetview_commands_total{status=\"sent\"}"),
        1.0
    );
    assert_eq!(
        sample(&text, "fleetview_commands_total{status=\"answered\"}"),
        1.0
    );
    assert_eq!(sample(&text, "fleetview_writer_queue_jobs"), 0.0);
    assert!(text.contains("# TYPE fleetview_ack_latency_seconds histogram"));

    // Connections by state: one device held, one socket that has not logged in.
    let d = Device::connect(server.tcp, IMEI);
    let _idle = std::net::TcpStream::connect(server.tcp).unwrap();
    let start = std::time::Instant::now();
    loop {
        let text = scrape(&server);
        let held = sample(&text, "fleetview_connections{state=\"logged_in\"}");
        let pending = sample(&text, "fleetview_connections{state=\"pending\"}");
        if (held, pending) == (1.0, 1.0) {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "logged_in {held}, pending {pending}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(d);
    assert!(server.stop().success());
}
