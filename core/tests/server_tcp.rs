//! `fleetview serve` over real TCP sockets on 127.0.0.1: handshake, acks against what is stored,
//! split and joined frames, keep-alives, resends, limits, and misbehaving clients that must not
//! disturb the others.
#![cfg(feature = "server")]

mod server_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use fleetview::{Codec, IoValue};
use server_common::*;

#[test]
fn handshake_accepts_listed_imeis_and_rejects_others() {
    let dir = temp_dir("handshake");
    let allow = dir.join("allow.txt");
    std::fs::write(
        &allow,
        "# fleet A\n356307042441013\n\n352093086403655  # spare\n",
    )
    .unwrap();
    let server = Server::start(&dir, &["--allow", allow.to_str().unwrap()]);

    let mut ok = Device::connect(server.tcp, "356307042441013");
    assert_eq!(ok.send(Codec::Codec8, records(1_700_000_000_000, 1)), 1);

    let (mut rejected, answer) = Device::try_login(server.tcp, "123456789012345");
    assert_eq!(answer, Some(0), "a rejected login is answered 00");
    assert!(rejected.closed_by_server(), "and the connection is closed");
    let log = server.wait_log("login rejected");
    assert!(log.contains("123456789012345"), "{log}");

    // A login that is not a login: the first bytes of a data frame.
    let mut s = TcpStream::connect(server.tcp).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(&frame(Codec::Codec8, records(1, 1))).unwrap();
    let mut b = [0u8; 8];
    assert!(
        matches!(s.read(&mut b), Ok(0) | Err(_)),
        "closed without an answer"
    );
    server.wait_log("invalid_imei_length");

    // The accepted device was not disturbed.
    assert_eq!(ok.send(Codec::Codec8, records(1_700_000_001_000, 2)), 2);
    assert_eq!(server.positions("356307042441013").len(), 3);
}

#[test]
fn acks_equal_the_records_stored_and_resends_add_no_rows() {
    let dir = temp_dir("acks");
    let server = Server::start(&dir, &[]);
    let imei = "356307042441013";
    let mut d = Device::connect(server.tcp, imei);
    let mut sent = 0;
    for (i, codec) in [Codec::Codec8, Codec::Codec8Ext, Codec::Codec16]
        .into_iter()
        .enumerate()
    {
        let n = 5 + i * 7;
        let batch = records(1_700_000_000_000 + i as u64 * 100_000, n);
        assert_eq!(d.send(codec, batch.clone()) as usize, n);
        sent += n;
        assert_eq!(
            server.positions(imei).len(),
            sent,
            "every acked record is readable"
        );
        // The same batch again (a device that missed the ack): acked in full, stored once.
        assert_eq!(d.send(codec, batch) as usize, n);
        assert_eq!(server.positions(imei).len(), sent);
    }
    let (status, devices) = server.get("/api/devices");
    assert_eq!(status, 200);
    let dev = &devices.as_array().unwrap()[0];
    assert_eq!(dev["imei"], imei);
    assert_eq!(dev["records"], sent);
    assert_eq!(dev["connected"], true);
    assert_eq!(
        dev["last_position"]["timestamp_ms"],
        1_700_000_200_000u64 + 18_000
    );

    // Every field survives: positions come back as the JSON model with IO names.
    let first = &server.positions(imei)[0];
    assert_eq!(first["timestamp_ms"], 1_700_000_000_000u64);
    assert_eq!(first["latitude"], 54.667425);
    assert_eq!(first["speed"], 30);
    assert_eq!(first["codec"], "8");
    let io = first["io"].as_array().unwrap();
    assert!(
        io.iter()
            .any(|e| e["id"] == 66 && e["name"] == "External Voltage" && e["value"] == 12.5),
        "{io:?}"
    );
}

#[test]
fn split_joined_frames_and_keep_alives() {
    let dir = temp_dir("split");
    let server = Server::start(&dir, &[]);
    let imei = "356307042441013";

    // Login and a first frame in one write.
    let mut s = TcpStream::connect(server.tcp).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_nodelay(true).unwrap();
    let mut bytes = fleetview::Imei::new(imei).unwrap().login_frame();
    bytes.extend(frame(Codec::Codec8, records(1_000_000, 2)));
    s.write_all(&bytes).unwrap();
    let mut b = [0u8; 5];
    s.read_exact(&mut b).unwrap();
    assert_eq!(b, [1, 0, 0, 0, 2]);
    let mut d = Device {
        stream: s,
        imei: imei.into(),
    };

    // A frame byte by byte, with keep-alives before it.
    d.write(&[0xFF, 0xFF]);
    for byte in frame(Codec::Codec8Ext, records(2_000_000, 3)) {
        d.write(&[byte]);
    }
    assert_eq!(d.ack(), 3);

    // Three frames joined in one write, keep-alives between them, the last one cut in two.
    let mut joined = frame(Codec::Codec8, records(3_000_000, 1));
    joined.push(0xFF);
    joined.extend(frame(Codec::Codec16, records(4_000_000, 4)));
    let last = frame(Codec::Codec8, records(5_000_000, 2));
    joined.extend(&last[..10]);
    d.write(&joined);
    assert_eq!(d.ack(), 1);
    assert_eq!(d.ack(), 4);
    d.write(&last[10..]);
    d.write(&[0xFF]);
    assert_eq!(d.ack(), 2);
    assert_eq!(server.positions(imei).len(), 12);

    // A keep-alive alone is not answered and keeps the connection.
    d.write(&[0xFF]);
    assert_eq!(d.send(Codec::Codec8, records(6_000_000, 1)), 1);
}

#[test]
fn a_bad_crc_is_not_acked_and_the_connection_goes_on() {
    let dir = temp_dir("crc");
    let server = Server::start(&dir, &[]);
    let mut d = Device::connect(server.tcp, "356307042441013");
    let mut bad = frame(Codec::Codec8, records(1_000_000, 2));
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    d.write(&bad);
    // Not acked: the next ack the device reads belongs to the good frame after it.
    assert_eq!(d.send(Codec::Codec8, records(2_000_000, 3)), 3);
    let log = server.wait_log("frame skipped, not acked");
    assert!(
        log.contains("crc_mismatch") && log.contains("imei=356307042441013"),
        "{log}"
    );
    assert_eq!(server.positions("356307042441013").len(), 3);
}

#[test]
fn garbage_and_slow_clients_do_not_disturb_other_devices() {
    let dir = temp_dir("garbage");
    let server = Server::start(&dir, &["--max-frame", "4096", "--max-buffered", "8192"]);

    // A slow client: a login trickling in a byte at a time, never finished.
    let mut slow = TcpStream::connect(server.tcp).unwrap();
    slow.write_all(&[0x00]).unwrap();
    // A silent client that connects and never sends.
    let _silent = TcpStream::connect(server.tcp).unwrap();
    // A logged-in device that starts a frame and stops half way.
    let mut stalled = Device::connect(server.tcp, "352093086403655");
    stalled.write(&frame(Codec::Codec8, records(1_000_000, 5))[..30]);

    let mut good = Device::connect(server.tcp, "356307042441013");
    let garbage_thread = {
        let addr = server.tcp;
        std::thread::spawn(move || {
            // Garbage: random bytes as fast as the server takes them.
            let mut g = TcpStream::connect(addr).unwrap();
            g.set_read_timeout(Some(WAIT)).unwrap();
            let mut x: u32 = 12345;
            let junk: Vec<u8> = (0..65_536)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8 | 1
                })
                .collect();
            let _ = g.write_all(&junk);
            let mut d = Device {
                stream: g,
                imei: String::new(),
            };
            d.closed_by_server()
        })
    };
    // A logged-in device announcing a frame larger than allowed.
    let mut huge = Device::connect(server.tcp, "351234567890123");
    huge.write(&[0, 0, 0, 0, 0, 1, 0, 0]);

    let mut slowest = Duration::ZERO;
    for i in 0..40u64 {
        if i % 4 == 0 {
            slow.write_all(&[0x0F]).unwrap_or(());
        }
        let t = Instant::now();
        assert_eq!(
            good.send(Codec::Codec8Ext, records(2_000_000 + i * 10_000, 3)),
            3
        );
        slowest = slowest.max(t.elapsed());
    }
    assert!(
        garbage_thread.join().unwrap(),
        "the garbage client is disconnected"
    );
    assert!(
        huge.closed_by_server(),
        "the oversized frame closes its connection"
    );
    assert_eq!(server.positions("356307042441013").len(), 120);
    let log = server.log();
    assert!(
        log.contains("frame_too_large") && log.contains("imei=351234567890123"),
        "{log}"
    );
    assert!(
        log.contains("offset="),
        "rejections carry the byte offset: {log}"
    );
    // Not a timing assertion on speed, only that nothing waited on the bad clients (their
    // limits are far longer than this).
    assert!(slowest < Duration::from_secs(10), "an ack took {slowest:?}");
    // The stalled device finishes its frame later and is acked.
    stalled.write(&frame(Codec::Codec8, records(1_000_000, 5))[30..]);
    assert_eq!(stalled.ack(), 5);
}

#[test]
fn idle_connections_are_closed_and_the_connection_limit_holds() {
    let dir = temp_dir("limits");
    let server = Server::start(
        &dir,
        &[
            "--idle-timeout",
            "1",
            "--login-timeout",
            "30",
            "--max-connections",
            "2",
        ],
    );
    let mut a = Device::connect(server.tcp, "356307042441013");
    // A silent connection holds the second slot until a newer one needs it.
    let mut b = Device {
        stream: TcpStream::connect(server.tcp).unwrap(),
        imei: String::new(),
    };
    b.stream.set_read_timeout(Some(WAIT)).unwrap();
    // A device arriving at the limit takes the place of the silent connection.
    let mut c = Device::connect(server.tcp, "352093086403655");
    assert!(b.closed_by_server(), "the silent connection made room");
    assert_eq!(c.send(Codec::Codec8, records(1_000_000, 1)), 1);
    // Every slot is a logged-in device: the next connection is closed at once.
    let mut d = Device {
        stream: TcpStream::connect(server.tcp).unwrap(),
        imei: String::new(),
    };
    d.stream.set_read_timeout(Some(WAIT)).unwrap();
    assert!(d.closed_by_server());
    server.wait_log("connection limit reached");

    // Silence beyond the idle timeout closes a connection, which frees its slot.
    let t = Instant::now();
    assert!(a.closed_by_server());
    assert!(t.elapsed() < Duration::from_secs(15));
    server.wait_log("idle for 1 s");
    // Both idle devices go; a new device gets in.
    let start = Instant::now();
    loop {
        let (mut d, answer) = Device::try_login(server.tcp, "351234567890123");
        if answer == Some(1) {
            assert_eq!(d.send(Codec::Codec8, records(2_000_000, 1)), 1);
            break;
        }
        assert!(start.elapsed() < WAIT, "no slot freed");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn graceful_shutdown_acks_what_it_stored_and_exits_zero() {
    let dir = temp_dir("graceful");
    let server = Server::start(&dir, &[]);
    let mut d = Device::connect(server.tcp, "356307042441013");
    assert_eq!(d.send(Codec::Codec8, records(1_000_000, 4)), 4);
    let status = server.stop();
    assert!(status.success(), "{status:?}");
    assert!(d.closed_by_server());
    // The WAL was checkpointed into the database file at close (SQLite).
    let wal = dir.join("fleetview.db-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
    let server = Server::start(&dir, &[]);
    assert_eq!(server.positions("356307042441013").len(), 4);
}

#[test]
fn fuel_levels_and_a_refuel_while_stopped() {
    let dir = temp_dir("fuel-tcp");
    let server = Server::start(&dir, &["--fuel-threshold", "15"]);
    let imei = "356307042441013";
    let mut d = Device::connect(server.tcp, imei);
    let fuel = |ts: u64, speed: u16, ign: u8, pct: u8| {
        record(
            ts,
            speed,
            &[(239, IoValue::U8(ign)), (89, IoValue::U8(pct))],
        )
    };
    let t0 = 1_700_000_000_000;
    let drive = vec![
        fuel(t0, 50, 1, 40),
        fuel(t0 + 60_000, 45, 1, 38),
        fuel(t0 + 120_000, 0, 0, 37),
    ];
    let stop = vec![
        fuel(t0 + 180_000, 0, 0, 60),
        fuel(t0 + 240_000, 0, 0, 85),
        fuel(t0 + 300_000, 40, 1, 84),
    ];
    assert_eq!(d.send(Codec::Codec8, drive), 3);
    let mut live = Live::open(server.http, "");
    assert_eq!(d.send(Codec::Codec8, stop), 3);
    let ev = live.next("fuel", |v| v["imei"] == imei);
    assert_eq!(ev["event"]["kind"], "refuel");
    let (status, report) = server.get(&format!("/api/devices/{imei}/fuel"));
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["io_id"].clone(), report["unit"].clone()),
        (89.into(), "%".into())
    );
    assert_eq!(report["levels"].as_array().unwrap().len(), 6);
    let events = report["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{report}");
    assert_eq!(events[0]["kind"], "refuel");
    assert_eq!(
        (events[0]["before"].clone(), events[0]["after"].clone()),
        (38.0.into(), 85.0.into())
    );
    assert_eq!(events[0]["change"], 47.0);
    assert_eq!(ev["event"], events[0]);
    // A higher threshold in the query: nothing.
    let (_, report) = server.get(&format!("/api/devices/{imei}/fuel?threshold=50"));
    assert!(report["events"].as_array().unwrap().is_empty());
}
