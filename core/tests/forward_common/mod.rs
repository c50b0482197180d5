//! A real webhook receiver for the forwarding tests: an HTTP/1.1 server on a loopback port that
//! keeps every request body it answered `200` (with its signature header), and that can go down
//! (its socket closed: connections refused) and come back on the same port.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One POST the receiver accepted.
#[derive(Clone, Debug)]
pub struct Post {
    pub body: Vec<u8>,
    pub signature: Option<String>,
}

/// The webhook receiver.
pub struct Receiver {
    pub addr: SocketAddr,
    pub posts: Arc<Mutex<Vec<Post>>>,
    up: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
}

impl Receiver {
    /// Listen on a free loopback port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut r = Self {
            addr,
            posts: Arc::default(),
            up: None,
        };
        r.serve(listener);
        r
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn serve(&mut self, listener: TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (posts, stop2) = (self.posts.clone(), stop.clone());
        let t = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let posts = posts.clone();
                        let stop3 = stop2.clone();
                        std::thread::spawn(move || connection(s, &posts, &stop3));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        self.up = Some((stop, t));
    }

    /// Close the socket: new connections are refused, open ones closed.
    pub fn down(&mut self) {
        if let Some((stop, t)) = self.up.take() {
            stop.store(true, Ordering::Relaxed);
            t.join().unwrap();
        }
    }

    /// Listen again on the same port.
    pub fn up(&mut self) {
        let start = Instant::now();
        let listener = loop {
            match TcpListener::bind(self.addr) {
                Ok(l) => break l,
                Err(e) if start.elapsed() < Duration::from_secs(20) => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("cannot listen on {} again: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    /// Every item received so far, in order.
    pub fn items(&self) -> Vec<Value> {
        self.posts
            .lock()
            .unwrap()
            .iter()
            .flat_map(|p| match serde_json::from_slice::<Value>(&p.body) {
                Ok(Value::Array(a)) => a,
                other => panic!("not a JSON array: {other:?}"),
            })
            .collect()
    }

    /// Wait until `pred` holds for the items received.
    pub fn wait(&self, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let items = self.items();
            if pred(&items) {
                return items;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the receiver never got {what}: {} items",
                items.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.down();
    }
}

/// Serve requests on one connection until it closes or the receiver goes down.
fn connection(s: TcpStream, posts: &Mutex<Vec<Post>>, stop: &AtomicBool) {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut out = s;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(_) if !stop.load(Ordering::Relaxed) => continue,
            Err(_) => return,
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let mut len = 0usize;
        let mut signature = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap_or((h, ""));
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().unwrap(),
                "x-fleetview-signature" => signature = Some(v.trim().to_string()),
                _ => {}
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        posts.lock().unwrap().push(Post { body, signature });
        let _ = out.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    }
}

/// `frames` frames of `per` records (Codec 8 Extended) for `imei` from `start`, one second
/// apart, each acked; the records' times.
pub fn send_frames(
    addr: SocketAddr,
    imei: &str,
    start: u64,
    frames: usize,
    per: usize,
) -> Vec<u64> {
    let mut d = super::server_common::Device::connect(addr, imei);
    let mut times = Vec::new();
    for f in 0..frames {
        let recs = super::server_common::records(start + (f * per) as u64 * 1000, per);
        times.extend(recs.iter().map(|r| r.timestamp_ms));
        assert_eq!(d.send(fleetview::Codec::Codec8Ext, recs), per as u32);
    }
    times
}

/// Check that each device's records arrived in order with none missing: the first arrival of
/// each record, per device, is in ascending time, and every expected timestamp is there.
pub fn check_order(items: &[Value], imei: &str, expected: &[u64]) {
    let mut seen = std::collections::HashSet::new();
    let firsts: Vec<u64> = items
        .iter()
        .filter(|v| v["type"] == "record" && v["imei"] == imei)
        .map(|v| v["timestamp_ms"].as_u64().unwrap())
        .filter(|t| seen.insert(*t))
        .collect();
    assert_eq!(
        firsts, expected,
        "records of {imei} missing or out of order"
    );
}
