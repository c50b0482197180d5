//! `fleetview serve` under attack, over real sockets: idle-socket floods, one byte a second,
//! partial frames of the largest size from many connections, garbage, a flood from one
//! address behind which real devices sit (carrier NAT), TLS and the PROXY protocol. In each, a
//! well-behaved device ([`Sentinel`]) keeps logging in, sending and getting its acks, and every
//! record acked is stored.
//!
//! Attackers come from other loopback addresses (127.0.0.2 and up: Linux routes all of
//! 127.0.0.0/8 to lo) so that per-address limits see distinct hosts, as on the internet.
//! Waits are bounded by protocol events with generous limits, never by sleeps on timing.
#![cfg(feature = "server")]

mod server_common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fleetview::{Codec, Imei};
use server_common::*;

/// A well-behaved device that logs in, sends three frames, gets each ack and disconnects,
/// over and over until stopped: what every attack must leave alone.
struct Sentinel {
    stop: Arc<AtomicBool>,
    imei: &'static str,
    thread: JoinHandle<Report>,
}

struct Report {
    logins: usize,
    acked: usize,
    slowest: Duration,
}

fn sentinel(addr: SocketAddr, imei: &'static str) -> Sentinel {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut r = Report {
            logins: 0,
            acked: 0,
            slowest: Duration::ZERO,
        };
        let mut ts = 1_700_000_000_000;
        while !(stopped.load(Ordering::Relaxed) && r.logins >= 3) {
            let t = Instant::now();
            let (mut d, answer) = Device::try_login(addr, imei);
            assert_eq!(answer, Some(1), "login {} of the device refused", r.logins);
            r.slowest = r.slowest.max(t.elapsed());
            r.logins += 1;
            for _ in 0..3 {
                let t = Instant::now();
                assert_eq!(d.send(Codec::Codec8Ext, records(ts, 2)), 2);
                r.slowest = r.slowest.max(t.elapsed());
                ts += 2000;
                r.acked += 2;
            }
        }
        r
    });
    Sentinel { stop, imei, thread }
}

impl Sentinel {
    /// Stop, and check that it never failed and that what was acked is stored.
    fn finish(self, server: &Server) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        let r = match self.thread.join() {
            Ok(r) => r,
            Err(e) => panic!(
                "the well-behaved device failed under attack: {:?}\n{}",
                e.downcast_ref::<String>(),
                server.log()
            ),
        };
        assert_eq!(server.positions(self.imei).len(), r.acked);
        // Not a speed measurement: nothing may wait on the attackers (their limits are
        // seconds long, and an ack takes milliseconds).
        assert!(
            r.slowest < Duration::from_secs(5),
            "an ack took {:?}",
            r.slowest
        );
        eprintln!(
            "sentinel: {} logins, {} records acked, slowest step {:?}",
            r.logins, r.acked, r.slowest
        );
        r
    }
}

/// Another host on the loopback network: 127.0.0.`n`.
fn host(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// What an attacking socket does once connected.
#[derive(Clone)]
enum Attack {
    /// Nothing: it holds its connection silently.
    Idle,
    /// These bytes at once, then silence.
    Send(Vec<u8>),
    /// These bytes, one per `tick`.
    Trickle(Vec<u8>),
}

/// Counters of a flood.
#[derive(Default)]
struct FloodStats {
    opened: AtomicUsize,
    open: AtomicUsize,
    /// Connections the server closed (EOF or reset).
    closed: AtomicUsize,
}

/// `per_source` sockets from each of `sources`, each doing `attack`; a socket the server
/// closes is opened again after `pause`, until the flood is stopped.
struct Flood {
    stop: Arc<AtomicBool>,
    stats: Arc<FloodStats>,
    thread: Option<JoinHandle<()>>,
}

const TICK: Duration = Duration::from_millis(100);

fn flood(
    addr: SocketAddr,
    sources: Vec<IpAddr>,
    per_source: usize,
    attack: Attack,
    pause: Duration,
) -> Flood {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(FloodStats::default());
    let (stopped, counters) = (stop.clone(), stats.clone());
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for src in sources {
                for _ in 0..per_source {
                    let (stop, stats, attack) = (stopped.clone(), counters.clone(), attack.clone());
                    tasks.spawn(async move {
                        while !stop.load(Ordering::Relaxed) {
                            let socket = tokio::net::TcpSocket::new_v4().unwrap();
                            socket.bind(SocketAddr::new(src, 0)).unwrap();
                            let Ok(mut s) = socket.connect(addr).await else {
                                nap(pause, &stop).await;
                                continue;
                            };
                            stats.opened.fetch_add(1, Ordering::Relaxed);
                            stats.open.fetch_add(1, Ordering::Relaxed);
                            let mut trickle: &[u8] = &[];
                            match &attack {
                                Attack::Idle => {}
                                Attack::Send(b) => {
                                    let _ = s.write_all(b).await;
                                }
                                Attack::Trickle(b) => trickle = b,
                            }
                            let mut buf = [0u8; 512];
                            let closed = loop {
                                match tokio::time::timeout(TICK, s.read(&mut buf)).await {
                                    Ok(Ok(0) | Err(_)) => break true,
                                    Ok(Ok(_)) => {}
                                    Err(_) if stop.load(Ordering::Relaxed) => break false,
                                    Err(_) => {
                                        if let Some((first, rest)) = trickle.split_first() {
                                            if s.write_all(&[*first]).await.is_err() {
                                                break true;
                                            }
                                            trickle = rest;
                                        }
                                    }
                                }
                            };
                            stats.open.fetch_sub(1, Ordering::Relaxed);
                            if closed {
                                stats.closed.fetch_add(1, Ordering::Relaxed);
                                nap(pause, &stop).await;
                            }
                        }
                    });
                }
            }
            while tasks.join_next().await.is_some() {}
        });
    });
    Flood {
        stop,
        stats,
        thread: Some(thread),
    }
}

/// Sleep for `pause`, or less when the flood stops.
async fn nap(pause: Duration, stop: &AtomicBool) {
    let end = tokio::time::Instant::now() + pause;
    while !stop.load(Ordering::Relaxed) && tokio::time::Instant::now() < end {
        tokio::time::sleep(TICK.min(pause)).await;
    }
}

impl Flood {
    fn closed(&self) -> usize {
        self.stats.closed.load(Ordering::Relaxed)
    }

    fn open(&self) -> usize {
        self.stats.open.load(Ordering::Relaxed)
    }

    /// Wait until `f` holds of the counters (the flood's effect is seen), or fail.
    fn wait_until(&self, what: &str, f: impl Fn(&FloodStats) -> bool) {
        let start = Instant::now();
        while !f(&self.stats) {
            assert!(
                start.elapsed() < WAIT,
                "{what}: opened {}, open {}, closed by the server {}",
                self.stats.opened.load(Ordering::Relaxed),
                self.open(),
                self.closed()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A blocking socket to `addr` from the source address `src`.
fn connect_from(addr: SocketAddr, src: IpAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(src, 0)).unwrap();
        socket.connect(addr).await.unwrap()
    });
    let s = s.into_std().unwrap();
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Log in on `stream` and return the answer byte.
fn login(stream: &mut TcpStream, imei: &str) -> Option<u8> {
    stream
        .write_all(&Imei::new(imei).unwrap().login_frame())
        .unwrap();
    let mut b = [0u8; 1];
    match stream.read(&mut b) {
        Ok(1) => Some(b[0]),
        _ => None,
    }
}

fn imei(n: u64) -> String {
    format!("35{:013}", n)
}

#[test]
fn an_idle_socket_flood_never_keeps_devices_out() {
    let dir = temp_dir("adv-idle");
    let server = Server::start(&dir, &["--max-connections", "60", "--login-timeout", "3"]);
    // A fleet that logged in before the attack and stays connected through it.
    let mut fleet: Vec<Device> = (0..20)
        .map(|i| Device::connect(server.tcp, &imei(1000 + i)))
        .collect();
    // 160 silent sockets from 8 hosts against 60 slots, reopened as soon as closed.
    let attack = flood(
        server.tcp,
        (2..10).map(host).collect(),
        20,
        Attack::Idle,
        Duration::from_millis(300),
    );
    attack.wait_until("the server makes room by closing silent sockets", |s| {
        s.closed.load(Ordering::Relaxed) >= 200
    });
    let watch = sentinel(server.tcp, "356307042441013");
    attack.wait_until("the flood goes on while the device works", |s| {
        s.closed.load(Ordering::Relaxed) >= 400
    });
    watch.finish(&server);
    drop(attack);
    // Logged-in devices are never pushed out.
    for (i, d) in fleet.iter_mut().enumerate() {
        assert_eq!(d.send(Codec::Codec8, records(1_000_000 + i as u64, 1)), 1);
    }
}

#[test]
fn devices_behind_one_address_get_in_while_it_floods() {
    let dir = temp_dir("adv-nat");
    let server = Server::start(
        &dir,
        &["--max-pending-per-address", "10", "--login-timeout", "30"],
    );
    let nat = host(3);
    // 50 silent sockets from the NAT's address: only the 10 newest are held.
    let attack = flood(
        server.tcp,
        vec![nat],
        50,
        Attack::Idle,
        Duration::from_secs(60),
    );
    attack.wait_until("40 of them are closed", |s| {
        s.closed.load(Ordering::Relaxed) >= 40
    });
    assert!(attack.open() <= 10, "{} still open", attack.open());
    let watch = sentinel(server.tcp, "356307042441013");
    // 40 devices behind the same address log in and all stay: logged-in ones do not count.
    let mut devices: Vec<(TcpStream, String)> = (0..40)
        .map(|i| {
            let mut s = connect_from(server.tcp, nat);
            let imei = imei(2000 + i);
            assert_eq!(login(&mut s, &imei), Some(1), "device {i} behind the NAT");
            (s, imei)
        })
        .collect();
    for (i, (s, imei)) in devices.iter_mut().enumerate() {
        let mut d = Device {
            stream: s.try_clone().unwrap(),
            imei: imei.clone(),
        };
        assert_eq!(d.send(Codec::Codec8, records(1_000_000 + i as u64, 1)), 1);
    }
    watch.finish(&server);
}

#[test]
fn one_byte_a_second_is_closed_at_the_deadlines() {
    let dir = temp_dir("adv-slow");
    let server = Server::start(&dir, &["--login-timeout", "1", "--frame-timeout", "2"]);
    let watch = sentinel(server.tcp, "356307042441013");
    // 30 logins trickling in a byte per tick (17 bytes: 1.7 s), never finished in time.
    let login_bytes = Imei::new("352093086403655").unwrap().login_frame();
    let logins = flood(
        server.tcp,
        vec![host(4), host(5), host(6)],
        10,
        Attack::Trickle(login_bytes),
        Duration::from_secs(60),
    );
    // A logged-in device whose frame trickles in a byte per tick.
    let mut slow = Device::connect(server.tcp, "351234567890123");
    let f = frame(Codec::Codec8, records(5_000_000, 5));
    let t = Instant::now();
    let mut closed = false;
    for b in &f {
        if slow.stream.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(TICK);
        if t.elapsed() > WAIT {
            break;
        }
    }
    assert!(
        closed || slow.closed_by_server(),
        "the trickled frame was not closed"
    );
    let elapsed = t.elapsed();
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < WAIT,
        "closed after {elapsed:?}"
    );
    server.wait_log("not complete within 2 s");
    logins.wait_until("every trickled login is closed", |s| {
        s.closed.load(Ordering::Relaxed) >= 30
    });
    // Nothing of the trickled frame was stored (no data: not even a device row).
    let (status, _) = server.get("/api/devices/351234567890123/positions");
    assert_eq!(status, 404);
    watch.finish(&server);
}

#[test]
fn partial_frames_of_the_largest_size_from_many_connections_stay_bounded() {
    let dir = temp_dir("adv-partial");
    let server = Server::start(&dir, &["--frame-timeout", "4"]);
    let watch = sentinel(server.tcp, "356307042441013");
    let before = server.rss();
    // 300 devices log in and each starts a frame of the largest size (4096 bytes) that never
    // ends: one byte short.
    let n = 300;
    let mut partial = vec![0u8, 0, 0, 0, 0, 0, 0x10, 0x00, 0x08];
    partial.resize(4096 + 12 - 1, 0x01);
    let mut held: Vec<Device> = (0..n)
        .map(|i| {
            let mut s = connect_from(server.tcp, host(10 + (i % 50) as u8));
            let imei = imei(3000 + i);
            assert_eq!(login(&mut s, &imei), Some(1));
            let mut d = Device { stream: s, imei };
            d.write(&partial);
            d
        })
        .collect();
    let during = server.rss();
    let growth = during.saturating_sub(before);
    eprintln!(
        "server RSS: {} KiB before, {} KiB with {n} partial frames of 4 KiB ({} bytes per connection)",
        before / 1024,
        during / 1024,
        growth / n
    );
    // Each connection holds its partial frame and its own state; nothing grows beyond that.
    assert!(
        growth < n * 24 * 1024,
        "RSS grew by {growth} bytes for {n} partial frames"
    );
    // The frame deadline closes every one of them.
    for d in &mut held {
        assert!(
            d.closed_by_server(),
            "partial frame of {} not closed",
            d.imei
        );
    }
    server.wait_log("frame at byte 17 not complete within 4 s");
    watch.finish(&server);
}

#[test]
fn partial_frames_beyond_the_total_budget_are_closed() {
    let dir = temp_dir("adv-budget");
    // Room for 10 partial frames of 4 KiB (4107 bytes each) across all connections.
    let server = Server::start(&dir, &["--max-buffered-total", "42000"]);
    let mut partial = vec![0u8, 0, 0, 0, 0, 0, 0x10, 0x00, 0x08];
    partial.resize(4096 + 12 - 1, 0x01);
    let mut held: Vec<Device> = (0..20)
        .map(|i| {
            let mut d = Device::connect(server.tcp, &imei(4000 + i));
            d.write(&partial);
            d
        })
        .collect();
    server.wait_log("over --max-buffered-total");
    // The first 10 fit; each later one was closed when its frame went beyond the budget.
    for d in &mut held[10..] {
        assert!(d.closed_by_server(), "{} not closed", d.imei);
    }
    // The budget is given back when connections close: a frame sent in two halves (partial in
    // between) is acked again.
    drop(held);
    let f = frame(Codec::Codec8, records(9_000_000, 20));
    let start = Instant::now();
    loop {
        let mut d = Device::connect(server.tcp, "356307042441013");
        d.write(&f[..f.len() / 2]);
        std::thread::sleep(Duration::from_millis(50));
        let _ = d.stream.write_all(&f[f.len() / 2..]);
        let mut ack = [0u8; 4];
        if d.stream.read_exact(&mut ack).is_ok() {
            assert_eq!(u32::from_be_bytes(ack), 20);
            break;
        }
        assert!(start.elapsed() < WAIT, "the budget was never given back");
    }
}

#[test]
fn garbage_is_closed_and_the_device_goes_on() {
    let dir = temp_dir("adv-garbage");
    let server = Server::start(&dir, &[]);
    let watch = sentinel(server.tcp, "356307042441013");
    let mut x: u32 = 7;
    let junk: Vec<u8> = (0..16_384)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    let mut after_login = Imei::new("352093086403655").unwrap().login_frame();
    after_login.extend_from_slice(&junk);
    let attacks = [
        flood(
            server.tcp,
            vec![host(7)],
            10,
            Attack::Send(junk),
            Duration::from_millis(200),
        ),
        flood(
            server.tcp,
            vec![host(8)],
            10,
            Attack::Send(after_login),
            Duration::from_millis(200),
        ),
        flood(
            server.tcp,
            vec![host(9)],
            10,
            Attack::Send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
            Duration::from_millis(200),
        ),
    ];
    for a in &attacks {
        a.wait_until("garbage connections are closed", |s| {
            s.closed.load(Ordering::Relaxed) >= 50
        });
    }
    let log = server.wait_log("rejected input");
    assert!(log.contains("offset="), "rejections carry the byte offset");
    watch.finish(&server);
}

/// A CA and a server certificate for 127.0.0.1 made now, written as PEM files into `dir`:
/// (CA, certificate, key) paths.
fn make_ca(dir: &std::path::Path, name: &str) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} test CA"));
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, &ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let path = |f: &str| {
        dir.join(format!("{name}-{f}"))
            .to_str()
            .unwrap()
            .to_string()
    };
    std::fs::write(path("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(path("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(path("key.pem"), key.serialize_pem()).unwrap();
    (path("ca.pem"), path("cert.pem"), path("key.pem"))
}

/// A TLS client trusting `ca` (PEM file), speaking only `version`.
fn tls_connect(
    addr: SocketAddr,
    ca: &str,
    version: &'static rustls::SupportedProtocolVersion,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, std::io::Error> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[version])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), "127.0.0.1".try_into().unwrap()).unwrap();
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(WAIT))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    // Complete the handshake now, so that a refused certificate shows here.
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// A server with a TLS port (beside the plain one) for the certificate `make_ca` wrote.
fn tls_server(dir: &std::path::Path, cert: &str, key: &str) -> Server {
    Server::start(
        dir,
        &["--tls", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key],
    )
}

#[test]
fn tls_handshake_data_and_ack_beside_the_plain_port() {
    let dir = temp_dir("adv-tls");
    let (ca, cert, key) = make_ca(&dir, "good");
    let server = tls_server(&dir, &cert, &key);
    let tls_addr = server.tls.expect("the ready line names the TLS port");
    let watch = sentinel(server.tcp, "356307042441013");
    for (imei, version) in [
        ("352093086403655", &rustls::version::TLS12),
        ("351234567890123", &rustls::version::TLS13),
    ] {
        let mut tls = tls_connect(tls_addr, &ca, version).unwrap();
        tls.write_all(&Imei::new(imei).unwrap().login_frame())
            .unwrap();
        let mut b = [0u8; 1];
        tls.read_exact(&mut b).unwrap();
        assert_eq!(b, [1], "login over TLS");
        for i in 0..3 {
            tls.write_all(&frame(Codec::Codec8Ext, records(1_000_000 + i * 10_000, 4)))
                .unwrap();
            let mut ack = [0u8; 4];
            tls.read_exact(&mut ack).unwrap();
            assert_eq!(u32::from_be_bytes(ack), 4);
        }
        assert_eq!(server.positions(imei).len(), 12);
    }
    // A device trusting another CA refuses the server; the server logs the failed handshake.
    let (other_ca, _, _) = make_ca(&dir, "other");
    assert!(tls_connect(tls_addr, &other_ca, &rustls::version::TLS12).is_err());
    server.wait_log("TLS handshake failed");
    // Plain bytes on the TLS port, TLS on the plain port: closed, nothing stored.
    let (mut plain, answer) = Device::try_login(tls_addr, "352093086403656");
    assert_ne!(answer, Some(1), "no login without TLS");
    assert!(plain.closed_by_server());
    assert!(tls_connect(server.tcp, &ca, &rustls::version::TLS13).is_err());
    // Silent sockets on the TLS port are flooded like the plain one.
    let idle = flood(
        tls_addr,
        vec![host(11)],
        20,
        Attack::Idle,
        Duration::from_secs(60),
    );
    idle.wait_until("silent TLS sockets are held", |s| {
        s.opened.load(Ordering::Relaxed) >= 20
    });
    watch.finish(&server);
}

#[test]
fn simulated_devices_over_tls() {
    let dir = temp_dir("adv-sim-tls");
    let (ca, cert, key) = make_ca(&dir, "sim");
    let server = tls_server(&dir, &cert, &key);
    let tls_addr = server.tls.unwrap().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fleetview"))
        .args([
            "simulate",
            "--devices",
            "5",
            "--server",
            &tls_addr,
            "--tls",
            "--ca",
            &ca,
            "--records",
            "20",
            "--batch",
            "5",
            "--rate",
            "100",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["counters"]["acked"], 100, "{s}");
    let (_, devices) = server.get("/api/devices");
    let stored: u64 = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["records"].as_u64().unwrap())
        .sum();
    assert_eq!(stored, 100);
}

#[test]
fn proxy_protocol_gives_the_device_address() {
    let dir = temp_dir("adv-proxy");
    let server = Server::start(&dir, &["--proxy-protocol"]);
    // What HAProxy's send-proxy-v2 sends: signature, PROXY over TCP/IPv4, addresses, ports.
    let mut header = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    header.extend_from_slice(&[203, 0, 113, 9, 10, 0, 0, 1]);
    header.extend_from_slice(&40_000u16.to_be_bytes());
    header.extend_from_slice(&5027u16.to_be_bytes());
    for (imei, hdr) in [
        ("352093086403655", header.clone()),
        (
            "351234567890123",
            b"PROXY TCP4 198.51.100.2 10.0.0.1 51000 5027\r\n".to_vec(),
        ),
    ] {
        let mut s = TcpStream::connect(server.tcp).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        // The header and the login in one segment, as a proxy forwards them.
        let mut first = hdr;
        first.extend_from_slice(&Imei::new(imei).unwrap().login_frame());
        s.write_all(&first).unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        assert_eq!(b, [1]);
        let mut d = Device {
            stream: s,
            imei: imei.into(),
        };
        assert_eq!(d.send(Codec::Codec8, records(1_000_000, 2)), 2);
    }
    let log = server.wait_log("peer=198.51.100.2:51000");
    assert!(log.contains("peer=203.0.113.9:40000"), "{log}");
    // A device connecting past the proxy sends no header: closed, with the reason.
    let (mut direct, answer) = Device::try_login(server.tcp, "356307042441013");
    assert_eq!(answer, None);
    assert!(direct.closed_by_server());
    server.wait_log("no valid PROXY header");
}

/// HAProxy (Debian's package; `.ci/setup` installs it) terminating TLS in front of the plain
/// port with `send-proxy-v2`, as the README configures it for modems rustls refuses.
fn haproxy_binary() -> String {
    for p in ["/usr/sbin/haproxy", "/usr/bin/haproxy"] {
        if std::path::Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("haproxy is not installed: apt-get install haproxy (.ci/setup does)");
}

/// HAProxy, stopped when dropped.
struct Haproxy(std::process::Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn tls_through_haproxy_with_the_proxy_protocol() {
    let dir = temp_dir("adv-haproxy");
    let (ca, cert, key) = make_ca(&dir, "haproxy");
    // HAProxy wants the certificate and its key in one file.
    let pem = dir.join("haproxy.pem");
    let both = std::fs::read_to_string(&cert).unwrap() + &std::fs::read_to_string(&key).unwrap();
    std::fs::write(&pem, both).unwrap();
    let server = Server::start(&dir, &["--proxy-protocol"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n\
             frontend devices_tls\n    bind 127.0.0.1:{port} ssl crt {pem}\n    default_backend fleetview\n\
             backend fleetview\n    server fleetview {tcp} send-proxy-v2\n",
            pem = pem.display(),
            tcp = server.tcp
        ),
    )
    .unwrap();
    let _haproxy = Haproxy(
        std::process::Command::new(haproxy_binary())
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("haproxy.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let front: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let start = Instant::now();
    let mut tls = loop {
        match tls_connect(front, &ca, &rustls::version::TLS12) {
            Ok(t) => break t,
            Err(e) => {
                assert!(start.elapsed() < WAIT, "HAProxy did not start: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    let device_port = tls.sock.local_addr().unwrap().port();
    tls.write_all(&Imei::new("352093086403655").unwrap().login_frame())
        .unwrap();
    let mut b = [0u8; 1];
    tls.read_exact(&mut b).unwrap();
    assert_eq!(b, [1]);
    tls.write_all(&frame(Codec::Codec8Ext, records(1_000_000, 3)))
        .unwrap();
    let mut ack = [0u8; 4];
    tls.read_exact(&mut ack).unwrap();
    assert_eq!(u32::from_be_bytes(ack), 3);
    // The server saw the device's own address and port, not HAProxy's connection.
    server.wait_log(&format!("peer=127.0.0.1:{device_port}"));
    assert_eq!(server.positions("352093086403655").len(), 3);
}
