//! Two `fleetview serve` nodes on one PostgreSQL database, over real sockets: a device held by
//! one node is seen, read, reported and commanded through the other; a login on the other node
//! closes the old connection; `/api/live` on one node shows the other's devices; a command whose
//! NOTIFY was missed is sent after the device's next ack; a dead node's
//! command in flight becomes `unanswered` when its lease expires. (A crash of PostgreSQL itself:
//! `server_pg_crash.rs`, alone in its binary, as it cuts every test's connections.)
//!
//! Needs PostgreSQL: run with `.ci/with-postgres cargo test -p fleetview --features server --test
//! server_nodes` (which sets `FLEETVIEW_TEST_PG`). Without it each test says so and passes.
#![cfg(feature = "server")]

mod server_common;

use fleetview::command::CommandMessage;
use fleetview::{Codec, IoValue};
use serde_json::json;
use server_common::*;

const IMEI: &str = "356307042441013";

/// Both nodes on the database of `dir`; `None` (and a note) without PostgreSQL.
fn two_nodes(dir: &TempDir, extra: &[&str]) -> Option<(Server, Server)> {
    if test_pg().is_none() {
        eprintln!("skipped: FLEETVIEW_TEST_PG is not set (run through .ci/with-postgres)");
        return None;
    }
    let a = Server::start(dir, &[&["--node-id", "node-a"], extra].concat());
    let b = Server::start(dir, &[&["--node-id", "node-b"], extra].concat());
    Some((a, b))
}

#[test]
fn a_device_on_one_node_is_read_commanded_and_watched_through_the_other() {
    let dir = temp_dir("nodes-share");
    let Some((a, b)) = two_nodes(&dir, &[]) else {
        return;
    };
    // Watching on A (its subscribers are announced to B before the answer).
    let mut live = Live::open(a.http, "");
    let mut d = Device::connect(b.tcp, IMEI);
    let online = live.next("device", |v| v["imei"] == IMEI);
    assert_eq!(online["connected"], true);
    let fuel = |ts: u64, pct: u8| record(ts, 0, &[(239, IoValue::U8(0)), (89, IoValue::U8(pct))]);
    let t0 = 1_700_000_000_000;
    assert_eq!(
        d.send(Codec::Codec8, vec![fuel(t0, 40), fuel(t0 + 60_000, 41)]),
        2
    );
    let ev = live.next("records", |v| v["imei"] == IMEI);
    assert_eq!(ev["records"].as_array().unwrap().len(), 2, "{ev}");

    // Reads on A: the device (connected through B), its positions, its fuel.
    let (status, list) = a.get("/api/devices");
    assert_eq!(status, 200);
    let dev = list
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["imei"] == IMEI)
        .unwrap_or_else(|| panic!("{list}"))
        .clone();
    assert_eq!(
        (dev["connected"].clone(), dev["records"].clone()),
        (json!(true), json!(2)),
        "{dev}"
    );
    assert_eq!(a.positions(IMEI).len(), 2);
    let (status, report) = a.get(&format!("/api/devices/{IMEI}/fuel"));
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["levels"].as_array().unwrap().len(), 2, "{report}");

    // A command queued through A is sent by B, which holds the device.
    let (status, cmd) = a.post(
        &format!("/api/devices/{IMEI}/commands"),
        &json!({"text": "getgps"}),
    );
    assert_eq!(status, 201, "{cmd}");
    let id = cmd["id"].as_i64().unwrap();
    assert_eq!(command_text(&mut d), "getgps");
    respond(
        &mut d,
        Codec::Codec12,
        CommandMessage::RESPONSE,
        "GPS:1 Sat:9",
    );
    let done = wait_status(&a, id, "answered");
    assert_eq!(done["response"]["text"], "GPS:1 Sat:9");
    b.wait_log("command sent");
    let ev = live.next("command", |v| v["id"] == id && v["status"] == "answered");
    assert_eq!(ev["response"]["text"], "GPS:1 Sat:9");

    // A batch resent to the other node is stored once.
    drop(d);
    let mut d = Device::connect(a.tcp, IMEI);
    assert_eq!(
        d.send(Codec::Codec8, vec![fuel(t0, 40), fuel(t0 + 60_000, 41)]),
        2
    );
    assert_eq!(b.positions(IMEI).len(), 2);
}

#[test]
fn a_login_on_another_node_closes_the_old_connection_and_logs_both_addresses() {
    let dir = temp_dir("nodes-kick");
    let Some((a, b)) = two_nodes(&dir, &[]) else {
        return;
    };
    let mut first = Device::connect(a.tcp, IMEI);
    assert_eq!(first.send(Codec::Codec8, records(1_000_000, 1)), 1);
    let old = first.stream.local_addr().unwrap().to_string();
    let mut second = Device::connect(b.tcp, IMEI);
    let new = second.stream.local_addr().unwrap().to_string();
    assert!(first.closed_by_server(), "the old connection stays open");
    a.wait_line(&[
        "the device logged in on another node",
        &format!("here={old}"),
        &format!("there={new}"),
    ]);
    b.wait_line(&[
        "second connection with an IMEI connected to another node",
        &format!("old={old}"),
        "node=node-a",
        &format!("new={new}"),
    ]);
    assert_eq!(second.send(Codec::Codec8, records(2_000_000, 1)), 1);
    // Now held by B: a command through A reaches it there.
    let (status, cmd) = a.post(
        &format!("/api/devices/{IMEI}/commands"),
        &json!({"text": "getver"}),
    );
    assert_eq!(status, 201, "{cmd}");
    assert_eq!(command_text(&mut second), "getver");
}

#[test]
fn a_command_whose_notify_was_missed_is_sent_after_the_next_ack() {
    let dir = temp_dir("nodes-no-notify");
    if test_pg().is_none() {
        eprintln!("skipped: FLEETVIEW_TEST_PG is not set (run through .ci/with-postgres)");
        return;
    }
    // Renewals (which also look for queued commands) every 120 s: none within this test.
    let a = Server::start(&dir, &["--node-id", "node-a", "--lease", "600"]);
    let mut d = Device::connect(a.tcp, IMEI);
    // The second frame is read once the connection has looked for commands after the first
    // ack (found none): nothing is pending for the device any more.
    assert_eq!(d.send(Codec::Codec8, records(1_000_000, 1)), 1);
    assert_eq!(d.send(Codec::Codec8, records(2_000_000, 1)), 1);
    // Queued behind the node's back: no NOTIFY, nothing in its memory.
    let id: i64 = psql(
        &db_arg(&dir),
        &format!(
            "INSERT INTO commands (device_id, codec, text, payload, status, created_ms)
             SELECT id, '12', 'getinfo', convert_to('getinfo', 'UTF8'), 'queued', 0
             FROM devices WHERE imei = '{IMEI}' RETURNING id"
        ),
    )
    .parse()
    .expect("the command's id");
    // The next frame's commit finds it: sent right after that ack.
    assert_eq!(d.send(Codec::Codec8, records(3_000_000, 1)), 1);
    assert_eq!(command_text(&mut d), "getinfo");
    respond(&mut d, Codec::Codec12, CommandMessage::RESPONSE, "ok");
    assert_eq!(wait_status(&a, id, "answered")["response"]["text"], "ok");
}

#[test]
fn a_dead_node_leaves_its_command_unanswered_and_its_devices_move() {
    let dir = temp_dir("nodes-dead");
    let Some((a, b)) = two_nodes(&dir, &["--lease", "2"]) else {
        return;
    };
    let mut d = Device::connect(a.tcp, IMEI);
    assert_eq!(d.send(Codec::Codec8, records(1_000_000, 1)), 1);
    let (status, cmd) = b.post(
        &format!("/api/devices/{IMEI}/commands"),
        &json!({"text": "cpureset"}),
    );
    assert_eq!(status, 201, "{cmd}");
    let id = cmd["id"].as_i64().unwrap();
    assert_eq!(command_text(&mut d), "cpureset");
    wait_status(&b, id, "sent");
    a.kill9();
    drop(d);

    // The device moves to B; once A's lease has expired, B marks the command unanswered.
    let mut d = Device::connect(b.tcp, IMEI);
    assert_eq!(d.send(Codec::Codec8, records(2_000_000, 1)), 1);
    let cmd = wait_status(&b, id, "unanswered");
    assert!(cmd["error"].as_str().unwrap().contains("node-a"), "{cmd}");
    b.wait_log("the node's lease expired");
    // Not sent again by itself: data keeps being acked with no command in between.
    assert_eq!(d.send(Codec::Codec8, records(3_000_000, 1)), 1);
    let (status, list) = b.get("/api/devices");
    assert_eq!(status, 200);
    assert_eq!(list[0]["connected"], true, "{list}");
}

#[test]
fn an_unreachable_or_malformed_database_url_is_a_clear_startup_error() {
    // Runs without PostgreSQL: nothing listens on port 1, and the second URL is not one.
    for (url, needle) in [
        (
            "postgres://fleetview@127.0.0.1:1/fleetview",
            "cannot connect to PostgreSQL fleetview@127.0.0.1/fleetview",
        ),
        (
            "postgres://fleetview@127.0.0.1:port/fleetview",
            "not a PostgreSQL URL",
        ),
    ] {
        let err = serve_refused(&["--http", "127.0.0.1:0", "--db", url]);
        assert!(err.contains(needle), "{err}");
    }
}
