//! End to end: `fleetview simulate` against the real `fleetview serve`. Every acked record is in
//! the database once (resends add no rows), and `fleetview send` gets a simulated device's answer
//! to `getinfo` through the server.
#![cfg(feature = "server")]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_fleetview");

/// The server, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(dir: &Path) -> (Server, serde_json::Value) {
    let ready = dir.join("ready.json");
    let child = Command::new(BIN)
        .args([
            "serve",
            "--tcp",
            "127.0.0.1:0",
            "--udp",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ])
        .arg("--db")
        .arg(dir.join("fleet.db"))
        .arg("--ready-file")
        .arg(&ready)
        .args(["--sync", "normal"])
        .env("FLEETVIEW_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&ready) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                return (server, v);
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the server did not start"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn wait(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("{BIN} did not finish within {limit:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn simulate(args: &[&str]) -> Child {
    Command::new(BIN)
        .arg("simulate")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn simulated_fleet_into_the_real_server() {
    let dir = std::env::temp_dir().join(format!("fleetview-sim-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (server, addrs) = start_server(&dir);
    let tcp = addrs["tcp"].as_str().unwrap();
    let http = format!("http://{}", addrs["http"].as_str().unwrap());

    // Data: 20 devices × 25 records, all acked after commit.
    let out = wait(
        simulate(&[
            "--devices",
            "20",
            "--server",
            tcp,
            "--records",
            "25",
            "--batch",
            "5",
            "--rate",
            "100",
            "--seed",
            "3",
            "--json",
        ]),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["counters"]["acked"], 500);

    // The same seed again: the same records, acked again, stored once.
    let out = wait(
        simulate(&[
            "--devices",
            "20",
            "--server",
            tcp,
            "--records",
            "25",
            "--batch",
            "5",
            "--rate",
            "100",
            "--seed",
            "3",
            "--json",
            "--start-time",
            &first_timestamp(&dir),
        ]),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = rusqlite::Connection::open(dir.join("fleet.db")).unwrap();
    let rows: i64 = db
        .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
        .unwrap();
    let devices: i64 = db
        .query_row("SELECT count(*) FROM devices", [], |r| r.get(0))
        .unwrap();
    assert_eq!((rows, devices), (500, 20), "a resent fleet adds no rows");

    // A command through the server to a connected simulated device, answered over Codec 12.
    let device = simulate(&[
        "--devices",
        "1",
        "--server",
        tcp,
        "--rate",
        "2",
        "--duration",
        "20",
    ]);
    let imei = "352093080000002"; // device 0 of the default --imei-base, Luhn check digit 2
    thread::sleep(Duration::from_millis(500));
    let send = Command::new(BIN)
        .args([
            "send",
            imei,
            "getinfo",
            "--server",
            &http,
            "--timeout",
            "15",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&send.stdout);
    assert!(
        send.status.success(),
        "send failed: {stdout} {}",
        String::from_utf8_lossy(&send.stderr)
    );
    assert!(
        stdout.contains("RTC:") && stdout.contains("SAT:"),
        "{stdout}"
    );
    let mut device = device;
    let _ = device.kill();
    let _ = device.wait();
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The first record's timestamp of the first run (device 0's: the others are offset from it),
/// so that the second run repeats every record exactly.
fn first_timestamp(dir: &Path) -> String {
    let db = rusqlite::Connection::open(dir.join("fleet.db")).unwrap();
    let first: i64 = db
        .query_row(
            "SELECT min(r.timestamp_ms) FROM records r JOIN devices d ON d.id = r.device_id
             WHERE d.imei = (SELECT min(imei) FROM devices)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    first.to_string()
}
