//! `fleetview simulate` over TCP against a scripted server on 127.0.0.1 that decodes with the
//! library's `Session`: short acks and missing acks make the devices resend, a `getinfo` command
//! gets a Codec 12 response, the same seed gives the same records, a rejected login fails.
#![cfg(feature = "server")]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use fleetview::{AvlRecord, Codec, CommandPacket, Content, DecodeOptions, Event, IoValue, Session};

/// What the server should answer to the k-th data frame (0-based) of a connection.
#[derive(Clone, Copy)]
enum Answer {
    /// Ack every record.
    All,
    /// Ack this many.
    Only(u32),
    /// Say nothing: the device must time out and reconnect.
    Silence,
    /// Close the connection without an ack (a server node that died): the device reconnects.
    Close,
}

type Policy = Arc<dyn Fn(&Conn, usize, usize) -> Answer + Send + Sync>;

/// Who connected: the IMEI and how many connections it had before.
#[derive(Clone, Debug)]
struct Conn {
    imei: String,
    nth: usize,
}

#[derive(Default)]
struct Log {
    /// Per IMEI, every record received in order (resends included).
    records: BTreeMap<String, Vec<AvlRecord>>,
    codecs: BTreeSet<Codec>,
    connections: HashMap<String, usize>,
    /// Per IMEI, the command responses.
    responses: BTreeMap<String, Vec<CommandPacket>>,
}

struct Server {
    addr: String,
    log: Arc<Mutex<Log>>,
}

/// Start a server: `policy(conn, frame_index, records_in_frame)` decides each ack;
/// `command_after` sends a command to each device once its n-th frame is fully acked.
fn server(accept: bool, policy: Policy, command_after: Option<(usize, &'static str)>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let log = Arc::new(Mutex::new(Log::default()));
    let shared = log.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (log, policy) = (shared.clone(), policy.clone());
            thread::spawn(move || serve(stream, accept, &log, &*policy, command_after));
        }
    });
    Server { addr, log }
}

fn serve(
    mut stream: TcpStream,
    accept: bool,
    log: &Mutex<Log>,
    policy: &(dyn Fn(&Conn, usize, usize) -> Answer + Send + Sync),
    command_after: Option<(usize, &'static str)>,
) {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut session = Session::new(DecodeOptions::default());
    let mut conn: Option<Conn> = None;
    let mut frames = 0;
    let mut buf = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        session
            .handle_input(&buf[..n])
            .unwrap_or_else(|e| panic!("the simulator sent bytes the session rejects: {e}"));
        while let Some(event) = session.poll_event() {
            let mut log = log.lock().unwrap();
            match event {
                Event::Login(imei) => {
                    let imei = imei.as_str().to_string();
                    assert_eq!(imei.len(), 15);
                    let nth = log.connections.entry(imei.clone()).or_default();
                    conn = Some(Conn { imei, nth: *nth });
                    *nth += 1;
                    session.accept_imei(accept);
                }
                Event::Records(p) => {
                    let c = conn.clone().expect("records before the login");
                    let Content::Avl(data) = &p.content else {
                        unreachable!()
                    };
                    log.codecs.insert(data.codec);
                    let n = data.records.len();
                    log.records
                        .entry(c.imei.clone())
                        .or_default()
                        .extend(data.records.iter().cloned());
                    match policy(&c, frames, n) {
                        Answer::All => session.ack(n as u32),
                        Answer::Only(k) => session.ack(k),
                        Answer::Silence => {}
                        Answer::Close => return,
                    }
                    if matches!(command_after, Some((k, _)) if k == frames) && c.nth == 0 {
                        let text = command_after.unwrap().1;
                        session.send_command(&CommandPacket::codec12(text)).unwrap();
                    }
                    frames += 1;
                }
                Event::Message(p) => {
                    let Content::Command(c) = p.content else {
                        unreachable!()
                    };
                    let imei = conn.as_ref().unwrap().imei.clone();
                    log.responses.entry(imei).or_default().push(c);
                }
                other => panic!("unexpected event from the simulator: {other:?}"),
            }
        }
        while let Some(bytes) = session.poll_transmit() {
            if stream.write_all(&bytes).is_err() {
                return;
            }
        }
        if session.is_closed() {
            return;
        }
    }
}

/// Run the simulator to completion (killed after 60 s) and return its output.
fn simulate(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleetview"))
        .arg("simulate")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("the simulator did not finish within 60 s");
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stats(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}): stdout {stdout:?} stderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn counter(v: &serde_json::Value, name: &str) -> u64 {
    v["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name} in {v}"))
}

fn raw(r: &AvlRecord, id: u16) -> u64 {
    r.io(id)
        .and_then(IoValue::raw)
        .unwrap_or_else(|| panic!("IO {id} missing"))
}

/// Distinct records, by timestamp (resends carry the same timestamp and bytes).
fn distinct(records: &[AvlRecord]) -> BTreeMap<u64, AvlRecord> {
    let mut out = BTreeMap::new();
    for r in records {
        if let Some(prev) = out.insert(r.timestamp_ms, r.clone()) {
            assert_eq!(&prev, r, "a resent record changed");
        }
    }
    out
}

#[test]
fn short_acks_are_resent_and_getinfo_is_answered() {
    // First frame of every device: accept only 2 records. Then all. getinfo after frame 1.
    let policy: Policy = Arc::new(|_, frame, _| {
        if frame == 0 {
            Answer::Only(2)
        } else {
            Answer::All
        }
    });
    let srv = server(true, policy, Some((1, "getinfo")));
    let out = simulate(&[
        "--devices",
        "3",
        "--server",
        &srv.addr,
        "--records",
        "30",
        "--batch",
        "5",
        "--rate",
        "200",
        "--seed",
        "5",
        "--start-time",
        "1700000000000",
        "--json",
        "--ack-timeout",
        "5",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = stats(&out);
    assert_eq!(counter(&s, "generated"), 90);
    assert_eq!(counter(&s, "acked"), 90);
    assert_eq!(counter(&s, "logins"), 3);
    assert_eq!(counter(&s, "short_acks"), 3);
    assert_eq!(counter(&s, "commands"), 3);
    assert_eq!(counter(&s, "protocol_errors"), 0);
    let log = srv.log.lock().unwrap();
    assert_eq!(log.codecs, BTreeSet::from([Codec::Codec8Ext]));
    assert_eq!(log.records.len(), 3, "three IMEIs");
    let mut resent_seen = 0;
    for (imei, records) in &log.records {
        let unique = distinct(records);
        assert_eq!(unique.len(), 30, "{imei}: every record arrived");
        resent_seen += records.len() - unique.len();
        // Timestamps follow the rate: 5 ms apart from the start time, plus the device's offset.
        let ts: Vec<u64> = unique.keys().copied().collect();
        assert!(
            ts[0] >= 1_700_000_000_000 && ts.windows(2).all(|w| w[1] - w[0] == 5),
            "{imei}: {ts:?}"
        );
        let mut prev: Option<&AvlRecord> = None;
        for r in unique.values() {
            assert!(r.gps.has_fix());
            for id in [239, 240, 21, 69, 66, 67, 16, 89, 84] {
                raw(r, id);
            }
            assert!(raw(r, 89) <= 100);
            if let Some(p) = prev {
                assert!(raw(r, 16) >= raw(p, 16), "odometer went back");
            }
            prev = Some(r);
        }
        // The records the short ack left out came again, each exactly once.
        let responses = &log.responses[imei];
        assert_eq!(responses.len(), 1, "{imei}: one answer to getinfo");
        assert_eq!(responses[0].codec, Codec::Codec12);
        let m = &responses[0].messages[0];
        assert_eq!(m.kind, 0x06, "a type-06 response");
        let text = m.text().unwrap();
        assert!(text.starts_with("RTC:") && text.contains(" SAT:"), "{text}");
    }
    assert_eq!(resent_seen as u64, counter(&s, "resent"));
    // What each first frame held beyond the 2 accepted records: 3 with a batch of 5, more when
    // a loaded machine let more records fall due before the frame was taken.
    assert!(
        counter(&s, "resent") >= 3 * 3,
        "at least 3 records of each first frame"
    );
}

#[test]
fn a_missing_ack_means_reconnect_and_resend() {
    // The first connection never acks; the second acks everything.
    let policy: Policy = Arc::new(|c, _, _| {
        if c.nth == 0 {
            Answer::Silence
        } else {
            Answer::All
        }
    });
    let srv = server(true, policy, None);
    let out = simulate(&[
        "--devices",
        "1",
        "--server",
        &srv.addr,
        "--records",
        "12",
        "--batch",
        "4",
        "--rate",
        "100",
        "--ack-timeout",
        "0.4",
        "--json",
        "--codec",
        "16",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = stats(&out);
    assert_eq!(counter(&s, "acked"), 12);
    assert_eq!(counter(&s, "ack_timeouts"), 1);
    assert_eq!(counter(&s, "reconnects"), 1);
    assert_eq!(counter(&s, "logins"), 2);
    // The unacked frame went again, whole: a batch of 4, or more when a loaded machine let more
    // records fall due before the frame was taken.
    let resent = counter(&s, "resent");
    assert!(resent >= 4, "the unacked frame went again: {resent}");
    let log = srv.log.lock().unwrap();
    assert_eq!(log.codecs, BTreeSet::from([Codec::Codec16]));
    let (imei, records) = log.records.iter().next().unwrap();
    assert_eq!(log.connections[imei], 2);
    assert_eq!(distinct(records).len(), 12);
    assert_eq!(records.len() as u64, 12 + resent);
    assert!(records.iter().all(|r| r.generation_type.is_some()));
}

#[test]
fn the_same_seed_gives_the_same_records() {
    let run = |seed: &str| {
        let srv = server(true, Arc::new(|_, _, _| Answer::All), None);
        let out = simulate(&[
            "--devices",
            "4",
            "--server",
            &srv.addr,
            "--records",
            "20",
            "--batch",
            "10",
            "--rate",
            "500",
            "--speedup",
            "1000",
            "--seed",
            seed,
            "--start-time",
            "1717000000000",
            "--codec",
            "8",
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = srv.log.lock().unwrap();
        assert_eq!(log.codecs, BTreeSet::from([Codec::Codec8]));
        log.records.clone()
    };
    let a = run("11");
    assert_eq!(a, run("11"));
    assert_ne!(a, run("12"));
    // Fast-forwarded 1000× (a minute per record): the vehicles that drive cover ground.
    let moved = a
        .values()
        .any(|rs| rs.first().unwrap().gps != rs.last().unwrap().gps);
    assert!(moved);
}

#[test]
fn a_rejected_login_fails_the_run() {
    let srv = server(false, Arc::new(|_, _, _| Answer::All), None);
    let out = simulate(&[
        "--devices",
        "2",
        "--server",
        &srv.addr,
        "--records",
        "5",
        "--duration",
        "3",
        "--json",
    ]);
    assert!(!out.status.success());
    let s = stats(&out);
    assert_eq!(counter(&s, "rejected"), 2);
    assert_eq!(counter(&s, "acked"), 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("login rejected"));
}

#[test]
fn bad_arguments_are_explained() {
    let out = simulate(&["--server", "127.0.0.1:1", "--codec", "12"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not carry records"));
    let out = simulate(&["--server", "127.0.0.1:1", "--batch", "300"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1..=255"));
}

/// The `--acked-log` lines: (IMEI, timestamp, record bytes), checked for form on the way.
fn acked_lines(path: &std::path::Path) -> Vec<(String, u64, Vec<u8>)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| {
            let parts: Vec<&str> = l.split(' ').collect();
            assert_eq!(parts.len(), 3, "line {l:?}");
            let bytes = fleetview::hex::decode(parts[2]).unwrap();
            (parts[0].to_string(), parts[1].parse().unwrap(), bytes)
        })
        .collect()
}

#[test]
fn the_acked_log_lists_each_acked_record_once_across_dropped_connections() {
    // Each device's first connection: the first frame is acked short (3 of 5), the second is
    // never acked (the connection closes, as when a node dies). The next connection acks all.
    let policy: Policy = Arc::new(|c, frame, _| match (c.nth, frame) {
        (0, 0) => Answer::Only(3),
        (0, _) => Answer::Close,
        _ => Answer::All,
    });
    let srv = server(true, policy, None);
    let dir = std::env::temp_dir().join(format!("fleetview-acked-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("acked.log");
    let out = simulate(&[
        "--devices",
        "4",
        "--server",
        &srv.addr,
        "--records",
        "25",
        "--batch",
        "5",
        "--rate",
        "200",
        "--backoff",
        "0.05",
        "--backoff-max",
        "0.2",
        "--acked-log",
        path.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = stats(&out);
    assert_eq!(counter(&s, "acked"), 100);
    assert_eq!(counter(&s, "logins"), 8, "each device came back once");
    assert_eq!(counter(&s, "reconnects"), 4);
    assert_eq!(s["acked_log_lines"], 100);
    let lines = acked_lines(&path);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(lines.len(), 100);
    let log = srv.log.lock().unwrap();
    let mut seen = BTreeSet::new();
    for (imei, ts, bytes) in &lines {
        assert!(seen.insert((imei.clone(), *ts)), "{imei} {ts} logged twice");
        // The line's bytes are the record the server received, encoded alone in its codec.
        let packets = fleetview::decode(bytes, &DecodeOptions::default()).unwrap();
        let record = &packets[0].records()[0];
        assert_eq!(record.timestamp_ms, *ts);
        let received = distinct(&log.records[imei]);
        assert_eq!(&received[ts], record, "{imei} {ts}");
    }
    // Every record the server received was acked in the end, so each is in the log.
    let received: usize = log.records.values().map(|r| distinct(r).len()).sum();
    assert_eq!(received, 100);
}

#[test]
fn a_refused_connection_is_retried_until_the_server_is_up() {
    // A port with nothing behind it: connections are refused until the server starts there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleetview"))
        .args([
            "simulate",
            "--devices",
            "2",
            "--server",
            &addr,
            "--records",
            "10",
            "--batch",
            "5",
            "--rate",
            "100",
            "--backoff",
            "0.1",
            "--backoff-max",
            "0.3",
            "--json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(1500));
    // Several refused attempts by now; then the server comes up on that port.
    let listener = TcpListener::bind(&addr).unwrap();
    let log = Arc::new(Mutex::new(Log::default()));
    let shared = log.clone();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let log = shared.clone();
            thread::spawn(move || serve(stream, true, &log, &|_, _, _| Answer::All, None));
        }
    });
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the simulator did not finish"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = stats(&out);
    assert_eq!(counter(&s, "acked"), 20);
    // At most 0.3 s between attempts over 1.5 s: several refusals per device, not one.
    assert!(counter(&s, "connect_errors") >= 6, "{s}");
    assert_eq!(counter(&s, "logins"), 2);
    assert_eq!(log.lock().unwrap().records.len(), 2);
}

#[test]
fn backoff_arguments_are_checked() {
    let out = simulate(&[
        "--server",
        "127.0.0.1:1",
        "--backoff",
        "2",
        "--backoff-max",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--backoff-max 1 is below --backoff 2"));
}
