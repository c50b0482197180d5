//! Durability of `fleetview serve`: restart on the same database, and kill -9 while devices
//! send: every record acked before the kill is in the database after the restart, and devices
//! resending everything create no duplicates.
#![cfg(feature = "server")]

mod server_common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use fleetview::{Codec, Content, DecodeOptions};
use serde_json::json;
use server_common::*;

const DEVICES: usize = 8;
const PER_BATCH: usize = 7;

fn imei(i: usize) -> String {
    format!("35630704244{:04}", 1000 + i)
}

/// Device `d`'s batch `b`: timestamps unique per device and batch.
fn batch(d: usize, b: usize) -> Vec<fleetview::AvlRecord> {
    records(
        1_700_000_000_000 + (d as u64) * 1_000_000_000 + (b * PER_BATCH) as u64 * 1000,
        PER_BATCH,
    )
}

fn stored_timestamps(server: &Server, imei: &str) -> Vec<u64> {
    server
        .positions(imei)
        .iter()
        .map(|p| p["timestamp_ms"].as_u64().unwrap())
        .collect()
}

#[test]
fn kill_9_while_devices_send_loses_no_acked_record_and_resends_add_no_duplicates() {
    let dir = temp_dir("crash");
    let server = Server::start(&dir, &[]);
    let acked_total = Arc::new(AtomicUsize::new(0));
    // Per device: batches acked, and the number of batches attempted.
    let acked: Arc<Vec<Mutex<Vec<usize>>>> =
        Arc::new((0..DEVICES).map(|_| Mutex::new(Vec::new())).collect());
    let attempted: Arc<Vec<AtomicUsize>> =
        Arc::new((0..DEVICES).map(|_| AtomicUsize::new(0)).collect());
    let threads: Vec<_> = (0..DEVICES)
        .map(|d| {
            let (addr, acked, attempted, total) = (
                server.tcp,
                acked.clone(),
                attempted.clone(),
                acked_total.clone(),
            );
            std::thread::spawn(move || {
                let mut dev = Device::connect(addr, &imei(d));
                for b in 0.. {
                    attempted[d].store(b + 1, Ordering::SeqCst);
                    let bytes = frame(Codec::Codec8Ext, batch(d, b));
                    if std::io::Write::write_all(&mut dev.stream, &bytes).is_err() {
                        return;
                    }
                    let mut ack = [0u8; 4];
                    match std::io::Read::read_exact(&mut dev.stream, &mut ack) {
                        Ok(()) => {
                            assert_eq!(u32::from_be_bytes(ack) as usize, PER_BATCH);
                            acked[d].lock().unwrap().push(b);
                            total.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    // Kill once the devices are well into their stream, while all of them are sending.
    let start = Instant::now();
    while acked_total.load(Ordering::SeqCst) < DEVICES * 15 {
        assert!(start.elapsed() < WAIT, "devices never got going");
        std::thread::yield_now();
    }
    server.kill9();
    for t in threads {
        t.join().unwrap();
    }

    let server = Server::start(&dir, &[]);
    let mut expected_total = 0;
    for d in 0..DEVICES {
        let ts = stored_timestamps(&server, &imei(d));
        let unique: BTreeSet<_> = ts.iter().copied().collect();
        assert_eq!(
            unique.len(),
            ts.len(),
            "device {d}: duplicates after the crash"
        );
        for &b in acked[d].lock().unwrap().iter() {
            for r in batch(d, b) {
                assert!(
                    unique.contains(&r.timestamp_ms),
                    "device {d}: acked batch {b} lost in the crash"
                );
            }
        }
        // Whatever is stored beyond the acked batches is the batch in flight at the kill,
        // committed but not acked: all of it or none of it.
        let acked_records = acked[d].lock().unwrap().len() * PER_BATCH;
        assert!(
            ts.len() == acked_records || ts.len() == acked_records + PER_BATCH,
            "device {d}: {} stored, {acked_records} acked",
            ts.len()
        );
        expected_total += attempted[d].load(Ordering::SeqCst) * PER_BATCH;
    }

    // Every device comes back and sends everything again, acked batches included.
    for d in 0..DEVICES {
        let mut dev = Device::connect(server.tcp, &imei(d));
        for b in 0..attempted[d].load(Ordering::SeqCst) {
            assert_eq!(dev.send(Codec::Codec8Ext, batch(d, b)) as usize, PER_BATCH);
        }
    }
    let mut total = 0;
    for d in 0..DEVICES {
        let ts = stored_timestamps(&server, &imei(d));
        let unique: BTreeSet<_> = ts.iter().copied().collect();
        assert_eq!(
            unique.len(),
            ts.len(),
            "device {d}: duplicates after the resend"
        );
        assert_eq!(ts.len(), attempted[d].load(Ordering::SeqCst) * PER_BATCH);
        total += ts.len();
    }
    assert_eq!(total, expected_total);
    let devices = server.get("/api/devices").1;
    let counted: i64 = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["records"].as_i64().unwrap())
        .sum();
    assert_eq!(
        counted as usize, total,
        "per-device record counts agree with the rows"
    );
}

#[test]
fn restart_on_the_same_database_keeps_records_and_queued_commands() {
    let dir = temp_dir("restart");
    let imei = "356307042441013";
    // One node name across restarts: on PostgreSQL the restarted node takes over what it left.
    let node = ["--node-id", "restart-test-node"];
    let server = Server::start(&dir, &node);
    let mut d = Device::connect(server.tcp, imei);
    assert_eq!(d.send(Codec::Codec8, records(1_000_000, 5)), 5);
    drop(d);
    let (status, cmd) = server.post(
        &format!("/api/devices/{imei}/commands"),
        &json!({"text": "getgps"}),
    );
    assert_eq!(status, 201);
    let id = cmd["id"].as_i64().unwrap();
    assert!(server.stop().success());

    let server = Server::start(&dir, &node);
    assert_eq!(stored_timestamps(&server, imei).len(), 5);
    let mut d = Device::connect(server.tcp, imei);
    // The resend of old records adds nothing.
    assert_eq!(d.send(Codec::Codec8, records(1_000_000, 5)), 5);
    assert_eq!(stored_timestamps(&server, imei).len(), 5);
    // Its data acked, the device gets the command queued before the restart.
    let mut head = [0u8; 8];
    std::io::Read::read_exact(&mut d.stream, &mut head).unwrap();
    let len = u32::from_be_bytes(head[4..].try_into().unwrap()) as usize;
    let mut rest = vec![0u8; len + 4];
    std::io::Read::read_exact(&mut d.stream, &mut rest).unwrap();
    let bytes = [head.to_vec(), rest].concat();
    let p = fleetview::decode(&bytes, &DecodeOptions::default())
        .unwrap()
        .remove(0);
    let Content::Command(c) = p.content else {
        panic!()
    };
    assert_eq!(c.messages[0].text(), Some("getgps"));
    assert_eq!(
        server.get(&format!("/api/commands/{id}")).1["status"],
        "sent"
    );
    // New records are added.
    assert_eq!(d.send(Codec::Codec8, records(9_000_000, 2)), 2);
    assert_eq!(stored_timestamps(&server, imei).len(), 7);

    // Killed while the command awaits its answer: after the restart it is unanswered (it may
    // have run), and not sent again when the device is back.
    server.kill9();
    drop(d);
    let server = Server::start(&dir, &node);
    assert_eq!(
        server.get(&format!("/api/commands/{id}")).1["status"],
        "unanswered"
    );
    let mut d = Device::connect(server.tcp, imei);
    assert_eq!(d.send(Codec::Codec8, records(10_000_000, 1)), 1);
    assert_eq!(d.send(Codec::Codec8, records(11_000_000, 1)), 1);
    assert_eq!(
        server.get(&format!("/api/commands/{id}")).1["status"],
        "unanswered"
    );
}
