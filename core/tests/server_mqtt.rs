//! MQTT forwarding (`--forward mqtt://HOST:PORT/PREFIX`) to a real broker: Debian's mosquitto,
//! started privately by `.ci/with-mosquitto` (which sets `FLEETVIEW_TEST_MQTT`), and its
//! `mosquitto_sub` client subscribed with QoS 1. Without the broker the broker test says
//! so and passes (`make test-forward` runs them with it).
#![cfg(feature = "server")]

mod forward_common;
mod server_common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use forward_common::{check_order, send_frames};
use serde_json::Value;
use server_common::*;

const A: &str = "356307042441013";
const B: &str = "352093080000002";
const T0: u64 = 1_700_000_000_000;

fn broker() -> Option<String> {
    let b = std::env::var("FLEETVIEW_TEST_MQTT")
        .ok()
        .filter(|b| !b.is_empty());
    if b.is_none() {
        eprintln!("skipped: FLEETVIEW_TEST_MQTT is not set (run through .ci/with-mosquitto)");
    }
    b
}

/// `mosquitto_sub` on `topic` (QoS 1), its messages as (topic, JSON) in arrival order.
struct Subscriber {
    child: Child,
    got: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Subscriber {
    fn start(broker: &str, topic: &str) -> Self {
        let (host, port) = broker.rsplit_once(':').unwrap();
        let mut child = Command::new("mosquitto_sub")
            .args(["-h", host, "-p", port, "-q", "1", "-v", "-t", topic])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub (Debian's mosquitto-clients; .ci/setup forward)");
        let got: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let out = child.stdout.take().unwrap();
        let prefix = topic.trim_end_matches('#').to_string();
        let (got2, prefix2) = (got.clone(), prefix.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if line.starts_with(&prefix2) {
                    let (t, json) = line.split_once(' ').unwrap();
                    got2.lock()
                        .unwrap()
                        .push((t.to_string(), serde_json::from_str(json).unwrap()));
                }
            }
        });
        // Subscribed once a probe published to the topic comes back.
        let probe = format!("{prefix}probe");
        let start = Instant::now();
        loop {
            let ok = Command::new("mosquitto_pub")
                .args(["-h", host, "-p", port, "-q", "1", "-t", &probe, "-m", "{}"])
                .status()
                .expect("mosquitto_pub")
                .success();
            assert!(ok, "mosquitto_pub failed");
            std::thread::sleep(Duration::from_millis(100));
            if got.lock().unwrap().iter().any(|(t, _)| *t == probe) {
                got.lock().unwrap().clear();
                break;
            }
            assert!(start.elapsed() < WAIT, "mosquitto_sub never subscribed");
        }
        Self { child, got }
    }

    fn wait(&self, n: usize) -> Vec<(String, Value)> {
        let start = Instant::now();
        loop {
            let got = self.got.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{} of {n} messages",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn each_record_is_a_qos_1_message_on_prefix_slash_imei() {
    let Some(broker) = broker() else { return };
    let sub = Subscriber::start(&broker, "fleet/test/#");
    let dir = temp_dir("mqtt");
    let server = Server::start(&dir, &["--forward", &format!("mqtt://{broker}/fleet/test")]);
    let a = send_frames(server.tcp, A, T0, 5, 20);
    let b = send_frames(server.tcp, B, T0, 3, 10);
    let got = sub.wait(a.len() + b.len());
    for (topic, v) in &got {
        assert_eq!(
            topic,
            &format!("fleet/test/{}", v["imei"].as_str().unwrap())
        );
        assert_eq!(v["type"], "record");
    }
    let items: Vec<Value> = got.into_iter().map(|(_, v)| v).collect();
    check_order(&items, A, &a);
    check_order(&items, B, &b);
    let (status, f) = server.get("/api/forwarders");
    assert_eq!(status, 200);
    assert_eq!(f[0]["name"], format!("mqtt://{broker}/fleet/test"));
    assert!(server.stop().success());
}

#[test]
fn an_unreachable_broker_is_retried_and_reported() {
    // A port nothing listens on (no broker needed).
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let dir = temp_dir("mqtt-down");
    let server = Server::start(
        &dir,
        &[
            "--forward",
            &format!("mqtt://127.0.0.1:{dead_port}/fleet/down"),
        ],
    );
    send_frames(server.tcp, A, T0, 2, 5);
    let start = Instant::now();
    loop {
        let (_, f) = server.get("/api/forwarders");
        if f[0]["failures"].as_u64().unwrap_or(0) >= 1 {
            assert!(f[0]["pending"].as_i64().unwrap() > 0, "{f}");
            assert!(
                f[0]["last_error"].as_str().unwrap().contains("mqtt://"),
                "{f}"
            );
            break;
        }
        assert!(start.elapsed() < WAIT, "{f}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(server.stop().success());
}
