//! Shared by the `server_*` tests: start the real `fleetview serve` binary on OS-assigned ports
//! of 127.0.0.1, scripted devices over real sockets, and a small HTTP/SSE client.
//!
//! Synchronisation is by protocol, never by sleeping: the server prints its bound addresses
//! once listening, a device waits for its ack, SSE subscribers wait for the response headers
//! (sent after the subscription exists). Every wait has a generous timeout so that a broken
//! server fails the test instead of hanging it.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fleetview::command::CommandMessage;
use fleetview::{
    AvlData, AvlRecord, Codec, CommandPacket, DecodeOptions, GpsElement, Imei, IoElement, IoValue,
    Packet, Priority,
};
use serde_json::Value;

/// Longest any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// A fresh directory for one test's database and logs, removed when the test passes (kept
/// after a failure, with the server logs in it).
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn temp_dir(name: &str) -> TempDir {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "fleetview-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// The PostgreSQL server the tests run on instead of SQLite, when `FLEETVIEW_TEST_PG` is set
/// (`postgres://USER@HOST:PORT/DB`, as `.ci/with-postgres` sets it).
pub fn test_pg() -> Option<String> {
    std::env::var("FLEETVIEW_TEST_PG")
        .ok()
        .filter(|u| !u.is_empty())
}

/// The `--db` of servers started on `dir`: `dir/fleetview.db`, or (with [`test_pg`]) a database
/// of that PostgreSQL server made for `dir` on first use (the same one on a restart).
pub fn db_arg(dir: &Path) -> String {
    let Some(url) = test_pg() else {
        return dir.join("fleetview.db").display().to_string();
    };
    let marker = dir.join("pg-database");
    if let Ok(name) = std::fs::read_to_string(&marker) {
        return with_database(&url, &name);
    }
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "fv_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros()
    );
    psql(&url, &format!("CREATE DATABASE {name}"));
    std::fs::write(&marker, &name).unwrap();
    with_database(&url, &name)
}

/// `url` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let base = url.rsplit_once('/').map_or(url, |(b, _)| b);
    format!("{base}/{name}")
}

/// Run one SQL statement with psql; its output (unaligned, tuples only).
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            url,
            "-c",
            sql,
        ])
        .output()
        .expect("psql (Debian's postgresql-client)");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Run `fleetview serve` on free loopback ports with `args`, expecting it to refuse to start;
/// its standard error.
pub fn serve_refused(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_fleetview"))
        .args(["serve", "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run fleetview serve");
    assert!(!out.status.success(), "fleetview serve {args:?} started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A running `fleetview serve`.
pub struct Server {
    child: Option<Child>,
    pub tcp: SocketAddr,
    pub udp: SocketAddr,
    pub http: SocketAddr,
    /// The TLS port, when started with `--tls`.
    pub tls: Option<SocketAddr>,
    pub dir: PathBuf,
    log: PathBuf,
}

impl Server {
    /// Start on `dir/fleetview.db` with ports chosen by the OS; `extra` flags are appended.
    pub fn start(dir: &Path, extra: &[&str]) -> Self {
        Self::start_env(dir, extra, &[])
    }

    /// [`Server::start`] with environment variables set for the server.
    pub fn start_env(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let log = dir.join(format!(
            "server-{}.log",
            RUNS.fetch_add(1, Ordering::Relaxed)
        ));
        let mut child = Command::new(env!("CARGO_BIN_EXE_fleetview"))
            .args([
                "serve",
                "--tcp",
                "127.0.0.1:0",
                "--udp",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--db",
            ])
            .arg(db_arg(dir))
            .args(extra)
            .env("FLEETVIEW_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn fleetview serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = match rx.recv_timeout(WAIT) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not start: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        let json: Value =
            serde_json::from_str(line.strip_prefix("fleetview serve ready ").expect(&line))
                .unwrap();
        let addr = |k: &str| json[k].as_str().unwrap().parse().unwrap();
        Self {
            tcp: addr("tcp"),
            udp: addr("udp"),
            http: addr("http"),
            tls: json["tls"].as_str().map(|a| a.parse().unwrap()),
            child: Some(child),
            dir: dir.to_path_buf(),
            log,
        }
    }

    /// The server's resident memory now, bytes (VmRSS of /proc/PID/status).
    pub fn rss(&self) -> u64 {
        let pid = self.child.as_ref().unwrap().id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .expect("VmRSS");
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 1024
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until the log contains `needle` (log lines are written before the socket is closed
    /// or answered, but a test may look from another connection).
    pub fn wait_log(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                start.elapsed() < WAIT,
                "log never contained {needle:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until one log line contains every one of `needles`; that line.
    pub fn wait_line(&self, needles: &[&str]) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if let Some(line) = log.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
                return line.to_string();
            }
            assert!(
                start.elapsed() < WAIT,
                "no log line with all of {needles:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then wait for the exit.
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        wait_exit(&mut child)
    }

    /// Send a signal (`HUP`, `TERM`, …) to the running server.
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().unwrap().id();
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill9(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        http(self.http, "GET", path, None, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        http(self.http, "POST", path, Some(body), None)
    }

    /// Records stored for a device, through the API (ascending time).
    pub fn positions(&self, imei: &str) -> Vec<Value> {
        let (status, v) = self.get(&format!("/api/devices/{imei}/positions?limit=100000"));
        assert_eq!(status, 200, "{v}");
        v["positions"].as_array().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > WAIT {
            let _ = child.kill();
            panic!("server did not exit within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A record at `ts_ms` with a position, speed and IO elements.
pub fn record(ts_ms: u64, speed: u16, io: &[(u16, IoValue)]) -> AvlRecord {
    AvlRecord {
        timestamp_ms: ts_ms,
        priority: Priority(0),
        gps: GpsElement {
            longitude: 252_560_283 + (ts_ms % 1000) as i32,
            latitude: 546_674_250,
            altitude: 172,
            angle: 248,
            satellites: 11,
            speed,
        },
        event_id: 0,
        generation_type: None,
        io: io
            .iter()
            .map(|(id, value)| IoElement {
                id: *id,
                value: value.clone(),
            })
            .collect(),
    }
}

/// `n` records from `start_ms`, one second apart.
pub fn records(start_ms: u64, n: usize) -> Vec<AvlRecord> {
    (0..n as u64)
        .map(|i| {
            record(
                start_ms + i * 1000,
                30,
                &[(239, IoValue::U8(1)), (66, IoValue::U16(12_500))],
            )
        })
        .collect()
}

pub fn frame(codec: Codec, recs: Vec<AvlRecord>) -> Vec<u8> {
    fleetview::encode::avl_frame(&AvlData::new(codec, recs)).unwrap()
}

/// A scripted device on a TCP connection.
pub struct Device {
    pub stream: TcpStream,
    pub imei: String,
}

impl Device {
    /// Connect and log in; panics unless accepted.
    pub fn connect(addr: SocketAddr, imei: &str) -> Self {
        let (d, answer) = Self::try_login(addr, imei);
        assert_eq!(answer, Some(1), "login of {imei} not accepted");
        d
    }

    /// Connect and log in; the server's answer byte (`None`: closed without one).
    pub fn try_login(addr: SocketAddr, imei: &str) -> (Self, Option<u8>) {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut d = Self {
            stream,
            imei: imei.into(),
        };
        d.write(&Imei::new(imei).unwrap().login_frame());
        let mut b = [0u8; 1];
        let answer = match d.stream.read(&mut b) {
            Ok(1) => Some(b[0]),
            _ => None,
        };
        (d, answer)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Read one 4-byte ack.
    pub fn ack(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.stream.read_exact(&mut b).expect("ack");
        u32::from_be_bytes(b)
    }

    /// Send a frame and return its ack.
    pub fn send(&mut self, codec: Codec, recs: Vec<AvlRecord>) -> u32 {
        self.write(&frame(codec, recs));
        self.ack()
    }

    /// True when the server closed the connection (EOF or reset) within the wait.
    pub fn closed_by_server(&mut self) -> bool {
        let mut b = [0u8; 64];
        loop {
            match self.stream.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

/// One HTTP/1.1 request; status and JSON body (Null when empty, a string when not JSON).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
    token: Option<&str>,
) -> (u16, Value) {
    let (status, _, body) = http_raw(addr, method, path, body, token);
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()))
    };
    (status, json)
}

/// Status, headers and body.
pub fn http_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
    token: Option<&str>,
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if method != "GET" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP header");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut d = Dechunk::default();
        body = d.feed(&body);
    }
    (status, head, body)
}

/// Incremental decoder of a chunked body.
#[derive(Default)]
struct Dechunk {
    buf: Vec<u8>,
}

impl Dechunk {
    fn feed(&mut self, data: &[u8]) -> Vec<u8> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        while let Some(eol) = self.buf.windows(2).position(|w| w == b"\r\n") {
            let size =
                usize::from_str_radix(std::str::from_utf8(&self.buf[..eol]).unwrap().trim(), 16)
                    .unwrap();
            if self.buf.len() < eol + 2 + size + 2 {
                break;
            }
            out.extend_from_slice(&self.buf[eol + 2..eol + 2 + size]);
            self.buf.drain(..eol + 2 + size + 2);
        }
        out
    }
}

/// A subscriber of `GET /api/live`.
pub struct Live {
    stream: TcpStream,
    chunks: Dechunk,
    text: String,
}

impl Live {
    /// Subscribe; returns once the server answered (the subscription exists from then on).
    pub fn open(addr: SocketAddr, query: &str) -> Self {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        write!(
            stream,
            "GET /api/live{query} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let start = Instant::now();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut b) {
                Ok(1) => head.push(b[0]),
                Ok(_) => panic!("SSE closed before its headers"),
                Err(_) => assert!(start.elapsed() < WAIT, "no SSE headers"),
            }
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("text/event-stream"), "{head}");
        Self {
            stream,
            chunks: Dechunk::default(),
            text: String::new(),
        }
    }

    /// The next event named `name` whose data satisfies `pred`; other events are skipped.
    pub fn next(&mut self, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            while let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                let mut event = "message";
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event:") {
                        event = e.trim();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                if event == name {
                    let v: Value = serde_json::from_str(&data).unwrap();
                    if pred(&v) {
                        return v;
                    }
                }
            }
            assert!(
                start.elapsed() < WAIT,
                "no {name:?} event; got so far: {:?}",
                self.text
            );
            let mut b = [0u8; 4096];
            match self.stream.read(&mut b) {
                Ok(0) => panic!("SSE stream closed"),
                Ok(n) => {
                    let data = self.chunks.feed(&b[..n]);
                    self.text.push_str(&String::from_utf8_lossy(&data));
                }
                Err(_) => {}
            }
        }
    }
}

/// A UDP device.
pub struct UdpDevice {
    pub socket: UdpSocket,
    pub imei: Imei,
}

impl UdpDevice {
    pub fn new(imei: &str) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(WAIT)).unwrap();
        Self {
            socket,
            imei: Imei::new(imei).unwrap(),
        }
    }

    pub fn datagram(&self, packet_id: u16, avl_packet_id: u8, recs: Vec<AvlRecord>) -> Vec<u8> {
        let data = AvlData::new(Codec::Codec8Ext, recs);
        fleetview::encode::avl_datagram(&self.imei, packet_id, avl_packet_id, &data).unwrap()
    }

    /// Send bytes and read the next answer.
    pub fn exchange(&self, to: SocketAddr, bytes: &[u8]) -> Vec<u8> {
        self.socket.send_to(bytes, to).unwrap();
        let mut b = [0u8; 64];
        let (n, _) = self.socket.recv_from(&mut b).expect("UDP ack");
        b[..n].to_vec()
    }
}

/// Read one command frame from the device's socket.
pub fn read_command(d: &mut Device) -> Packet {
    let mut head = [0u8; 8];
    d.stream.read_exact(&mut head).unwrap();
    let len = u32::from_be_bytes(head[4..8].try_into().unwrap()) as usize;
    let mut rest = vec![0u8; len + 4];
    d.stream.read_exact(&mut rest).unwrap();
    let mut bytes = head.to_vec();
    bytes.extend(rest);
    fleetview::decode(&bytes, &DecodeOptions::default())
        .unwrap()
        .remove(0)
}

/// The text of the next command frame the device receives.
pub fn command_text(d: &mut Device) -> String {
    let p = read_command(d);
    let fleetview::Content::Command(c) = &p.content else {
        panic!("not a command: {p:?}")
    };
    c.messages[0].text().unwrap_or("").to_string()
}

pub fn respond(d: &mut Device, codec: Codec, kind: u8, text: &str) {
    let mut m = CommandMessage::command(text);
    m.kind = kind;
    if codec == Codec::Codec14 {
        m.imei = Some(Imei::new(&d.imei).unwrap().to_bcd().unwrap());
    }
    let packet = CommandPacket {
        codec,
        messages: vec![m],
    };
    d.write(&fleetview::encode::command_frame(&packet).unwrap());
}

pub fn wait_status(server: &Server, id: i64, want: &str) -> Value {
    let start = Instant::now();
    loop {
        let (status, cmd) = server.get(&format!("/api/commands/{id}"));
        assert_eq!(status, 200, "{cmd}");
        if cmd["status"] == want {
            return cmd;
        }
        assert!(start.elapsed() < WAIT, "command {id} never {want}: {cmd}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A well-behaved device in the background: logs in, sends a record, waits for its ack, closes,
/// and again, until stopped. Attack tests run beside it: it must keep getting in and acked.
pub struct Steady {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<usize>,
}

impl Steady {
    pub fn start(addr: SocketAddr, imei: &str) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let imei = imei.to_string();
        let thread = std::thread::spawn(move || {
            let mut acked = 0;
            let mut ts = 1_600_000_000_000u64;
            while !flag.load(Ordering::Relaxed) || acked == 0 {
                let mut d = Device::connect(addr, &imei);
                assert_eq!(
                    d.send(Codec::Codec8Ext, records(ts, 1)),
                    1,
                    "steady device not acked"
                );
                ts += 1000;
                acked += 1;
            }
            acked
        });
        Self { stop, thread }
    }

    /// Stop; the number of acked frames (at least one; panics if the device ever failed).
    pub fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok(n) => n,
            Err(e) => std::panic::resume_unwind(e),
        }
    }
}
