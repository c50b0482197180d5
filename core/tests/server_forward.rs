//! Forwarding from the outbox (`fleetview serve --forward`), with real receivers over real
//! sockets: a webhook receiver that goes down and comes back (every record arrives, in order
//! per device; the HMAC signature checks), a `kill -9` of the server while it forwards (nothing
//! lost), command answers forwarded as events, and `GET /api/forwarders`.
//!
//! Runs on SQLite, and on PostgreSQL under `.ci/with-postgres` (`FLEETVIEW_TEST_PG`).
#![cfg(feature = "server")]

mod forward_common;
mod server_common;

use fleetview::Codec;
use forward_common::*;
use serde_json::{json, Value};
use server_common::*;

const A: &str = "356307042441013";
const B: &str = "352093080000002";
const T0: u64 = 1_700_000_000_000;

fn forwarder(server: &Server) -> Value {
    let (status, v) = server.get("/api/forwarders");
    assert_eq!(status, 200, "{v}");
    v[0].clone()
}

#[test]
fn a_webhook_outage_loses_nothing_and_every_post_is_signed() {
    let dir = temp_dir("fwd-outage");
    let mut rx = Receiver::start();
    let secret = "s3cret-for-the-test";
    std::fs::write(dir.join("secret"), format!("{secret}\n")).unwrap();
    let server = Server::start(
        &dir,
        &[
            "--forward",
            &rx.url(),
            "--forward-secret-file",
            dir.join("secret").to_str().unwrap(),
        ],
    );
    let mut a = send_frames(server.tcp, A, T0, 5, 10);
    let mut b = send_frames(server.tcp, B, T0, 3, 7);
    rx.wait("the first 71 records", |i| i.len() >= 71);

    // The receiver goes down: records are still stored and acked, and wait in the outbox.
    rx.down();
    a.extend(send_frames(server.tcp, A, T0 + 100_000, 4, 10));
    b.extend(send_frames(server.tcp, B, T0 + 100_000, 2, 5));
    let start = std::time::Instant::now();
    let f = loop {
        let f = forwarder(&server);
        if f["failures"].as_u64().unwrap() >= 2 {
            break f;
        }
        assert!(start.elapsed() < WAIT, "no failure reported: {f}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(f["name"], rx.url());
    assert_eq!(f["active"], true);
    assert!(f["pending"].as_i64().unwrap() > 0, "{f}");
    assert!(f["last_error"].as_str().unwrap().contains("POST"), "{f}");
    server.wait_log("delivery of");

    // Back: everything arrives, in order per device.
    rx.up();
    let items = rx.wait("every record", |i| {
        i.iter().filter(|v| v["type"] == "record").count() >= a.len() + b.len()
    });
    check_order(&items, A, &a);
    check_order(&items, B, &b);
    let rec = items.iter().find(|v| v["type"] == "record").unwrap();
    for key in [
        "imei",
        "id",
        "timestamp_ms",
        "time",
        "latitude",
        "longitude",
        "io",
        "codec",
    ] {
        assert!(rec.get(key).is_some(), "{key} missing: {rec}");
    }
    assert_eq!(rec["io"][0]["name"], "Ignition", "{rec}");

    // Every POST carries the HMAC-SHA256 of its body.
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    for p in rx.posts.lock().unwrap().iter() {
        let sig = p.signature.as_deref().expect("signature header");
        let hex = sig.strip_prefix("sha256=").expect(sig);
        let tag = fleetview::hex::decode(hex).unwrap();
        ring::hmac::verify(&key, &p.body, &tag).expect("signature matches the body");
    }
    let start = std::time::Instant::now();
    loop {
        let f = forwarder(&server);
        if f["pending"] == 0 && f["failing"] == 0 {
            assert!(f["delivered"].as_u64().unwrap() >= (a.len() + b.len()) as u64);
            break;
        }
        assert!(start.elapsed() < WAIT, "still pending: {f}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(server.stop().success());
    if test_pg().is_none() {
        // Delivered entries are trimmed (at the latest by the stop's last position update).
        let db = rusqlite::Connection::open(dir.join("fleetview.db")).unwrap();
        let left: i64 = db
            .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0, "delivered entries left in the outbox");
    }
}

#[test]
fn fuel_events_are_forwarded() {
    let dir = temp_dir("fwd-fuel");
    let rx = Receiver::start();
    let server = Server::start(&dir, &["--forward", &rx.url()]);
    let mut d = Device::connect(server.tcp, A);
    // Standing still (ignition off), the level jumps from 40 % to 85 %: a refuel.
    let fuel = |ts: u64, pct: u8| {
        record(
            ts,
            0,
            &[
                (239, fleetview::IoValue::U8(0)),
                (89, fleetview::IoValue::U8(pct)),
            ],
        )
    };
    assert_eq!(d.send(Codec::Codec8, vec![fuel(T0, 40)]), 1);
    assert_eq!(d.send(Codec::Codec8, vec![fuel(T0 + 60_000, 85)]), 1);
    let items = rx.wait("the refuel", |i| i.iter().any(|v| v["type"] == "refuel"));
    let ev = items.iter().find(|v| v["type"] == "refuel").unwrap();
    assert_eq!(ev["imei"], A);
    assert_eq!(ev["change"], 45.0);
    assert_eq!(ev["timestamp_ms"], T0 + 60_000);
    assert!(server.stop().success());
}

#[test]
fn kill_9_while_forwarding_loses_nothing() {
    let dir = temp_dir("fwd-kill");
    let mut rx = Receiver::start();
    let server = Server::start(&dir, &["--forward", &rx.url()]);
    let mut a = send_frames(server.tcp, A, T0, 3, 10);
    rx.wait("the first records", |i| i.len() >= 30);
    // Stored and acked while the receiver is down, then the server is killed.
    rx.down();
    a.extend(send_frames(server.tcp, A, T0 + 100_000, 5, 10));
    server.kill9();
    rx.up();
    // A new run on the same database delivers what the killed one had not.
    let server = Server::start(&dir, &["--forward", &rx.url()]);
    a.extend(send_frames(server.tcp, A, T0 + 200_000, 2, 10));
    let items = rx.wait("every record", |i| {
        let mut seen = std::collections::HashSet::new();
        i.iter()
            .filter(|v| v["type"] == "record")
            .filter(|v| seen.insert(v["timestamp_ms"].as_u64()))
            .count()
            >= a.len()
    });
    check_order(&items, A, &a);
    assert!(server.stop().success());
}

#[test]
fn command_answers_are_forwarded_as_events() {
    let dir = temp_dir("fwd-command");
    let rx = Receiver::start();
    let server = Server::start(&dir, &["--forward", &rx.url()]);
    let mut d = Device::connect(server.tcp, A);
    assert_eq!(d.send(Codec::Codec8, records(T0, 2)), 2);
    let (status, v) = server.post(
        &format!("/api/devices/{A}/commands"),
        &json!({"text": "getinfo"}),
    );
    assert_eq!(status, 201, "{v}");
    let id = v["id"].as_i64().unwrap();
    assert_eq!(command_text(&mut d), "getinfo");
    wait_status(&server, id, "sent");
    respond(
        &mut d,
        Codec::Codec12,
        fleetview::command::CommandMessage::RESPONSE,
        "RTC:2024/5/1 Init:2024/5/1",
    );
    wait_status(&server, id, "answered");
    let items = rx.wait("the answer", |i| i.iter().any(|v| v["type"] == "command"));
    let ev = items.iter().find(|v| v["type"] == "command").unwrap();
    assert_eq!(ev["imei"], A);
    assert_eq!(ev["id"], id);
    assert_eq!(ev["status"], "answered");
    assert_eq!(ev["text"], "getinfo");
    assert!(ev["response"].is_object(), "{ev}");
    // In commit order: the records before the answer.
    let pos = |p: &dyn Fn(&Value) -> bool| items.iter().position(p).unwrap();
    assert!(pos(&|v| v["type"] == "record") < pos(&|v| v["type"] == "command"));
    assert!(server.stop().success());
}

#[test]
fn without_forwarders_nothing_is_kept_and_bad_urls_are_refused() {
    let err = serve_refused(&["--forward", "ftp://example.com/x"]);
    assert!(err.contains("scheme ftp not supported"), "{err}");
    let err = serve_refused(&["--forward", "mqtt://broker.local"]);
    assert!(err.contains("topic prefix"), "{err}");
    let dir = temp_dir("fwd-none");
    let server = Server::start(&dir, &[]);
    send_frames(server.tcp, A, T0, 2, 5);
    let (status, v) = server.get("/api/forwarders");
    assert_eq!((status, v), (200, json!([])));
    assert!(server.stop().success());
}

/// Two nodes on one PostgreSQL database with the same forwarder: one delivers (it holds the
/// forwarder's lock), every record of both nodes arrives once; when it is killed, the other
/// takes over from the stored position.
#[test]
fn two_nodes_deliver_each_entry_once_and_take_over() {
    if test_pg().is_none() {
        eprintln!("skipped: FLEETVIEW_TEST_PG is not set (run through .ci/with-postgres)");
        return;
    }
    let dir = temp_dir("fwd-nodes");
    let rx = Receiver::start();
    let url = rx.url();
    let a = Server::start(&dir, &["--node-id", "node-a", "--forward", &url]);
    let b = Server::start(&dir, &["--node-id", "node-b", "--forward", &url]);
    let mut on_a = send_frames(a.tcp, A, T0, 4, 10);
    let mut on_b = send_frames(b.tcp, B, T0, 4, 10);
    let items = rx.wait("every record", |i| i.len() >= 80);
    check_order(&items, A, &on_a);
    check_order(&items, B, &on_b);
    assert_eq!(items.len(), 80, "each record once");
    let active = |s: &Server| forwarder(s)["active"] == true;
    assert!(
        active(&a) != active(&b),
        "exactly one node delivers: a {}, b {}",
        forwarder(&a),
        forwarder(&b)
    );
    // The active node dies; the other takes the forwarder over.
    let (dead, survivor) = if active(&a) { (a, b) } else { (b, a) };
    dead.kill9();
    on_a.extend(send_frames(survivor.tcp, A, T0 + 100_000, 2, 10));
    on_b.extend(send_frames(survivor.tcp, B, T0 + 100_000, 2, 10));
    let items = rx.wait("every record after the takeover", |i| {
        let mut seen = std::collections::HashSet::new();
        i.iter()
            .filter(|v| seen.insert((v["imei"].to_string(), v["timestamp_ms"].as_u64())))
            .count()
            >= 120
    });
    check_order(&items, A, &on_a);
    check_order(&items, B, &on_b);
    assert_eq!(forwarder(&survivor)["active"], true);
    assert!(survivor.stop().success());
}
