//! A `fleetview serve` node on PostgreSQL goes on when PostgreSQL crashes (`pg_ctl stop -m
//! immediate`) and comes back: nothing acked is lost, the frame sent across the crash is acked
//! once stored after the device logs in again, and commands reach devices again. Alone in its
//! test binary: the crash cuts the connections of every test on that server.
//!
//! Needs PostgreSQL: `.ci/with-postgres cargo test -p fleetview --features server --test
//! server_pg_crash`. Without it the test says so and passes.
#![cfg(feature = "server")]

mod server_common;

use fleetview::Codec;
use serde_json::json;
use server_common::*;

const IMEI: &str = "356307042441013";

#[test]
fn a_node_goes_on_when_postgresql_crashes_and_comes_back() {
    let dir = temp_dir("nodes-pg-crash");
    let (Some(_), Ok(restart)) = (test_pg(), std::env::var("FLEETVIEW_TEST_PG_RESTART")) else {
        eprintln!("skipped: FLEETVIEW_TEST_PG and FLEETVIEW_TEST_PG_RESTART are not set (run through .ci/with-postgres)");
        return;
    };
    let server = Server::start(&dir, &["--node-id", "node-a"]);
    let mut d = Device::connect(server.tcp, IMEI);
    assert_eq!(d.send(Codec::Codec8, records(1_000_000, 3)), 3);

    let status = std::process::Command::new("sh")
        .args(["-c", &restart])
        .status()
        .unwrap();
    assert!(status.success(), "{restart}");

    // The frame sent across the crash: not acked while the database is gone (the connection
    // closes); the device logs in again and resends until it is acked.
    let batch = records(2_000_000, 2);
    d.write(&frame(Codec::Codec8, batch.clone()));
    let mut acked = false;
    let start = std::time::Instant::now();
    // Generous: PostgreSQL's recovery and the pool's new connections on a loaded machine.
    while start.elapsed() < 3 * WAIT {
        let mut b = [0u8; 4];
        if std::io::Read::read_exact(&mut d.stream, &mut b).is_ok() {
            assert_eq!(u32::from_be_bytes(b), 2);
            acked = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let (again, answer) = Device::try_login(server.tcp, IMEI);
        d = again;
        if answer == Some(1) {
            d.write(&frame(Codec::Codec8, batch.clone()));
        }
    }
    assert!(acked, "never acked after the restart:\n{}", server.log());
    // Every acked record once.
    let stored: Vec<i64> = server
        .positions(IMEI)
        .iter()
        .map(|p| p["timestamp_ms"].as_i64().unwrap())
        .collect();
    let mut want: Vec<i64> = records(1_000_000, 3)
        .iter()
        .chain(&batch)
        .map(|r| r.timestamp_ms as i64)
        .collect();
    want.sort_unstable();
    assert_eq!(stored, want);
    // Commands reach the device again (the LISTEN connection is back, or the periodic look).
    let (status, cmd) = server.post(
        &format!("/api/devices/{IMEI}/commands"),
        &json!({"text": "getver"}),
    );
    assert_eq!(status, 201, "{cmd}");
    assert_eq!(command_text(&mut d), "getver");
}
