//! The HTTP API of `fleetview serve` against hostile clients, over real sockets: slowloris
//! headers and bodies, a flood of connections past the cap, a foreign Host (DNS rebinding),
//! cross-site form posts, the token from a file and the environment, a percent-encoded
//! `access_token`, and HTTPS with a CA made by the test. During each attack a well-behaved
//! device logs in and gets its acks over TCP, and the API keeps answering its own clients.
#![cfg(feature = "server")]

mod server_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetview::Codec;
use serde_json::{json, Value};
use server_common::*;
use tokio_rustls::rustls;

/// The device commands are posted for.
const IMEI: &str = "356307042441013";
/// The well-behaved device that shows the TCP side is unaffected (never sent commands).
const HEARTBEAT: &str = "352093086403655";

/// A device that logs in, sends two frames and checks both acks: the TCP side is unaffected.
fn device_round(server: &Server, round: u64) {
    let mut d = Device::connect(server.tcp, HEARTBEAT);
    let start = 1_700_000_000_000 + round * 100_000;
    assert_eq!(d.send(Codec::Codec8, records(start, 3)), 3);
    assert_eq!(d.send(Codec::Codec8Ext, records(start + 10_000, 2)), 2);
}

/// Send `raw` (a whole request) and read the answer to the end: status and JSON body.
fn exchange(stream: &mut impl ReadWrite, raw: &str) -> (u16, Value) {
    stream.write_all(raw.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    parse(&answer)
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn parse(answer: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.into()));
    (status, body)
}

/// One request on a new connection, with exactly the given header lines.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut raw = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for h in headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    if !body.is_empty() || method != "GET" {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    exchange(&mut s, &raw)
}

fn host(addr: SocketAddr) -> String {
    format!("Host: {addr}")
}

/// Read once, waiting up to `wait`: whether the server has closed `s` (EOF or reset).
fn closed_now(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 512];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// Whether the server closes `s` before `limit`; the time it took.
fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if closed_now(s, Duration::from_millis(100)) {
            return Some(start.elapsed());
        }
    }
    None
}

/// A client that sends `bytes` one at a time, `every` apart, until the server closes the
/// socket; returns how many it got out, and when the server closed it.
fn trickle(
    addr: SocketAddr,
    bytes: Vec<u8>,
    every: Duration,
) -> std::thread::JoinHandle<(usize, Option<Duration>)> {
    let mut s = TcpStream::connect(addr).unwrap();
    std::thread::spawn(move || {
        let start = Instant::now();
        for (i, b) in bytes.iter().enumerate() {
            if s.write_all(&[*b]).is_err() {
                return (i, Some(start.elapsed()));
            }
            // A closed socket shows on read before the next write fails.
            if closed_now(&mut s, every) {
                return (i + 1, Some(start.elapsed()));
            }
        }
        (bytes.len(), None)
    })
}

#[test]
fn slowloris_headers_and_bodies_are_dropped_while_others_are_served() {
    let dir = temp_dir("http-slowloris");
    let server = Server::start(&dir, &["--http-header-timeout", "1"]);
    device_round(&server, 0);
    let addr = server.http;
    // A live view subscribed now must outlive the header timeout: it is waiting for events,
    // not sending headers.
    let mut live = Live::open(addr, "");
    let opened = Instant::now();

    // Three connections that never finish their headers (a byte every 200 ms: 60 s for this
    // header), and two that send nothing at all.
    let header = format!(
        "GET /api/devices HTTP/1.1\r\nHost: {addr}\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(260)
    );
    let slow: Vec<_> = (0..3)
        .map(|_| {
            trickle(
                addr,
                header.clone().into_bytes(),
                Duration::from_millis(200),
            )
        })
        .collect();
    let mut silent: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // A body announced and trickled after complete headers.
    let post = format!(
        "POST /api/devices/{IMEI}/commands HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 300\r\n\r\n"
    );
    let mut slow_body = TcpStream::connect(addr).unwrap();
    slow_body.write_all(post.as_bytes()).unwrap();
    let body_thread = {
        let mut s = slow_body.try_clone().unwrap();
        std::thread::spawn(move || {
            for _ in 0..300 {
                if s.write_all(b" ").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };

    // Meanwhile: the API answers, the device gets its acks.
    let (status, devices) = request(addr, "GET", "/api/devices", &[&host(addr)], "");
    assert_eq!(status, 200, "{devices}");
    device_round(&server, 1);

    // Each slow connection is closed after about the timeout, long before it is done.
    for t in slow {
        let (sent, closed) = t.join().unwrap();
        let closed = closed.expect("a slowloris connection was never closed");
        assert!(sent < header.len(), "the whole header went through");
        assert!(
            closed >= Duration::from_millis(800),
            "closed after {closed:?}"
        );
        assert!(
            closed < Duration::from_secs(15),
            "closed only after {closed:?}"
        );
    }
    for s in &mut silent {
        let t = closed_within(s, Duration::from_secs(15)).expect("a silent connection stayed open");
        assert!(t < Duration::from_secs(15));
    }
    // The trickled body gets a 408 with the error JSON.
    slow_body.set_read_timeout(Some(WAIT)).unwrap();
    let mut answer = Vec::new();
    let _ = slow_body.read_to_end(&mut answer);
    let (status, err) = parse(&answer);
    assert_eq!(status, 408, "{err}");
    assert_eq!(err["error"]["kind"], "body_timeout");
    drop(slow_body);
    body_thread.join().unwrap();

    // An idle keep-alive connection is closed after the timeout too.
    let mut keep = TcpStream::connect(addr).unwrap();
    write!(keep, "GET /api/devices HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let t = closed_within(&mut keep, Duration::from_secs(15)).expect("idle keep-alive stayed open");
    assert!(t >= Duration::from_millis(800), "{t:?}");

    let (status, _) = request(addr, "GET", "/api/devices", &[&host(addr)], "");
    assert_eq!(status, 200);
    device_round(&server, 2);
    assert!(opened.elapsed() > Duration::from_secs(2));
    live.next("records", |v| {
        v["imei"] == HEARTBEAT && v["records"][0]["timestamp_ms"] == 1_700_000_200_000u64
    });
    assert!(server.stop().success());
}

#[test]
fn connections_past_the_cap_are_closed_at_once_and_the_cap_frees_up() {
    let dir = temp_dir("http-cap");
    let server = Server::start(
        &dir,
        &["--http-max-connections", "3", "--http-header-timeout", "60"],
    );
    let addr = server.http;
    // Three idle connections hold every slot (accepted in order, before the fourth).
    let mut held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut extra = TcpStream::connect(addr).unwrap();
    let t = closed_within(&mut extra, WAIT).expect("the connection past the cap was kept");
    assert!(t < WAIT);
    server.wait_log("refused: 3 connections open");
    // Devices are not HTTP clients: they keep logging in and getting acks.
    device_round(&server, 0);

    // One slot freed: a request gets through (once the server has seen the close).
    drop(held.pop());
    let start = Instant::now();
    loop {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let _ = write!(
            s,
            "GET /api/devices HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        );
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        if !answer.is_empty() {
            assert_eq!(parse(&answer).0, 200);
            break;
        }
        assert!(start.elapsed() < WAIT, "the freed slot was never reused");
    }
    device_round(&server, 1);
    drop(held);
    assert!(server.stop().success());
}

#[test]
fn a_foreign_host_is_refused_and_own_names_are_served() {
    let dir = temp_dir("http-host");
    let server = Server::start(&dir, &["--public-host", "fleet.example.com"]);
    device_round(&server, 0);
    let addr = server.http;
    let port = addr.port();
    // A page on evil.example whose name now resolves to 127.0.0.1 (DNS rebinding).
    for path in [
        "/api/devices",
        "/",
        &format!("/api/devices/{IMEI}/positions"),
    ] {
        let (status, err) = request(
            addr,
            "GET",
            path,
            &[&format!("Host: evil.example:{port}")],
            "",
        );
        assert_eq!(status, 403, "{path}: {err}");
        assert_eq!(err["error"]["kind"], "host_not_allowed");
        let msg = err["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("\"evil.example:") && msg.contains("--public-host"),
            "{msg}"
        );
    }
    let (status, _) = request(
        addr,
        "GET",
        "/api/devices",
        &["Host: 127.0.0.1.nip.example"],
        "",
    );
    assert_eq!(status, 403);
    let (status, err) = request(addr, "GET", "/api/devices", &[], "");
    assert_eq!(
        (status, &err["error"]["kind"]),
        (400, &json!("missing_host"))
    );
    server.wait_log("HTTP GET /api/devices refused: ForeignHost(\"evil.example:");

    for own in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "fleet.example.com".to_string(),
        "FLEET.EXAMPLE.COM:443".to_string(),
    ] {
        let (status, list) = request(addr, "GET", "/api/devices", &[&format!("Host: {own}")], "");
        assert_eq!(status, 200, "{own}: {list}");
        assert_eq!(list[0]["imei"], HEARTBEAT, "{own}");
    }
    device_round(&server, 1);
    assert!(server.stop().success());
}

#[test]
fn cross_site_form_posts_are_refused_and_same_origin_json_is_accepted() {
    let dir = temp_dir("http-origin");
    let server = Server::start(&dir, &[]);
    let mut device = Device::connect(server.tcp, IMEI);
    assert_eq!(device.send(Codec::Codec8, records(1_700_000_000_000, 1)), 1);
    let addr = server.http;
    let path = format!("/api/devices/{IMEI}/commands");
    let body = r#"{"text":"cpureset"}"#;

    // What an HTML form on another site can send: text/plain with a foreign Origin.
    let (status, err) = request(
        addr,
        "POST",
        &path,
        &[
            &host(addr),
            "Origin: http://evil.example",
            "Content-Type: text/plain",
        ],
        body,
    );
    assert_eq!(status, 403, "{err}");
    assert_eq!(err["error"]["kind"], "cross_origin");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("http://evil.example"));
    // JSON from a foreign origin (a preflight this server never grants) and `Origin: null`.
    for origin in [
        "http://evil.example",
        "null",
        &format!("http://127.0.0.1:{}", addr.port() + 1),
    ] {
        let (status, err) = request(
            addr,
            "POST",
            &path,
            &[
                &host(addr),
                &format!("Origin: {origin}"),
                "Content-Type: application/json",
            ],
            body,
        );
        assert_eq!(status, 403, "{origin}: {err}");
    }
    // No Origin but not JSON: 415.
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let (status, err) = request(
            addr,
            "POST",
            &path,
            &[&host(addr), &format!("Content-Type: {ct}")],
            body,
        );
        assert_eq!(status, 415, "{ct}: {err}");
        assert_eq!(err["error"]["kind"], "unsupported_media_type");
    }
    // A body over 64 KiB is refused before the route sees it.
    let big = format!(r#"{{"text":"{}"}}"#, "x".repeat(70_000));
    let (status, err) = request(
        addr,
        "POST",
        &path,
        &[&host(addr), "Content-Type: application/json"],
        &big,
    );
    assert_eq!(status, 413, "{err}");
    assert_eq!(err["error"]["kind"], "body_too_large");
    // Nothing was queued: the device logs in and acks again, and command 1 does not exist.
    device_round(&server, 1);
    let (status, _) = server.get("/api/commands/1");
    assert_eq!(status, 404);

    // The web UI's own request: same origin, JSON.
    let (status, cmd) = request(
        addr,
        "POST",
        &path,
        &[
            &host(addr),
            &format!("Origin: http://{addr}"),
            "Content-Type: application/json; charset=utf-8",
        ],
        r#"{"text":"getver"}"#,
    );
    assert_eq!(status, 201, "{cmd}");
    // The command reaches the device on its open connection (its data is acked).
    let mut head = [0u8; 8];
    device.stream.read_exact(&mut head).unwrap();
    let mut rest = vec![0u8; u32::from_be_bytes(head[4..8].try_into().unwrap()) as usize + 4];
    device.stream.read_exact(&mut rest).unwrap();
    assert!(rest.windows(6).any(|w| w == b"getver"));
    drop(device);
    assert!(server.stop().success());
}

#[test]
fn the_token_comes_from_a_file_or_the_environment() {
    let dir = temp_dir("http-token");
    let file = dir.join("token");
    std::fs::write(&file, "f1le-t0ken\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let server = Server::start_env(
        &dir,
        &["--token-file", file.to_str().unwrap()],
        &[("FLEETVIEW_TOKEN", "ignored-env")],
    );
    let mut d = Device::connect(server.tcp, IMEI);
    assert_eq!(d.send(Codec::Codec8, records(1_600_000_000_000, 1)), 1);
    drop(d);
    let log = server.wait_log("HTTP API token from --token-file");
    assert!(
        log.contains("FLEETVIEW_TOKEN is set but --token-file"),
        "{log}"
    );
    assert!(!log.contains("visible to every user"), "{log}");
    assert!(!log.contains("f1le-t0ken"), "the token was logged: {log}");
    assert_eq!(http(server.http, "GET", "/api/devices", None, None).0, 401);
    assert_eq!(
        http(
            server.http,
            "GET",
            "/api/devices",
            None,
            Some("ignored-env")
        )
        .0,
        401
    );
    assert_eq!(
        http(server.http, "GET", "/api/devices", None, Some("f1le-t0ken")).0,
        200
    );
    // `fleetview send` reads the same file, and the environment.
    for (args, env) in [
        (vec!["--token-file", file.to_str().unwrap()], None),
        (vec![], Some("f1le-t0ken")),
    ] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_fleetview"));
        cmd.args(["send", IMEI, "getver", "--timeout", "0.2", "--server"])
            .arg(format!("http://{}", server.http))
            .args(&args)
            .env_remove("FLEETVIEW_TOKEN");
        if let Some(t) = env {
            cmd.env("FLEETVIEW_TOKEN", t);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Queued (so authorised); no device answers within 0.2 s.
        assert!(stderr.contains("queued for"), "{args:?} {env:?}: {stderr}");
    }
    device_round(&server, 0);
    assert!(server.stop().success());

    let dir = temp_dir("http-token-env");
    let server = Server::start_env(&dir, &[], &[("FLEETVIEW_TOKEN", "env-t0ken")]);
    server.wait_log("HTTP API token from FLEETVIEW_TOKEN");
    assert_eq!(http(server.http, "GET", "/api/devices", None, None).0, 401);
    assert_eq!(
        http(server.http, "GET", "/api/devices", None, Some("env-t0ken")).0,
        200
    );
    device_round(&server, 1);
    assert!(server.stop().success());

    // On the command line it works, with a warning.
    let server = Server::start(&dir, &["--token", "flag-t0ken"]);
    server.wait_log("--token is visible to every user of this machine");
    assert_eq!(
        http(server.http, "GET", "/api/devices", None, Some("flag-t0ken")).0,
        200
    );
    assert!(server.stop().success());
}

#[test]
fn access_token_in_the_query_is_percent_decoded() {
    let dir = temp_dir("http-access-token");
    let token = "a+b/c=d&e%f?g#h";
    let server = Server::start(&dir, &["--token", token]);
    device_round(&server, 0);
    let encoded: String = form_encode(token);
    assert_eq!(encoded, "a%2Bb%2Fc%3Dd%26e%25f%3Fg%23h");
    let path = format!("/api/devices?x=1&access_token={encoded}");
    assert_eq!(server.get(&path).0, 200);
    // The raw token in a query does not decode to itself (`+` is a space, `&` ends it).
    assert_eq!(
        server.get(&format!("/api/devices?access_token={token}")).0,
        401
    );
    assert_eq!(server.get("/api/devices?access_token=a%2Bb").0, 401);
    // EventSource's way: the live stream with the encoded token, and its events arrive.
    let mut live = Live::open(server.http, &format!("?access_token={encoded}"));
    let mut d = Device::connect(server.tcp, IMEI);
    assert_eq!(d.send(Codec::Codec8, records(1_800_000_000_000, 1)), 1);
    live.next("records", |v| v["imei"] == IMEI);
    assert!(server.stop().success());
}

/// What the web UI's `encodeURIComponent` produces for these characters.
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'~'
            | b'*'
            | b'\''
            | b'('
            | b')' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A CA and a server certificate for localhost and 127.0.0.1, made now; PEM files in `dir`.
/// Returns the CA certificate (DER) for clients to trust.
fn make_certificates(dir: &std::path::Path) -> rustls::pki_types::CertificateDer<'static> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Fleetview test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.pem() + &ca_cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    ca_cert.der().clone()
}

fn tls_client(ca: rustls::pki_types::CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn https(
    config: &Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    name: &str,
    raw: &str,
) -> Result<(u16, Value), std::io::Error> {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let server_name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(config.clone(), server_name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(raw.as_bytes())?;
    let mut answer = Vec::new();
    match tls.read_to_end(&mut answer) {
        Ok(_) => {}
        // The server closes after `Connection: close` without a close_notify alert; the
        // answer is complete by then.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {}
        Err(e) => return Err(e),
    }
    Ok(parse(&answer))
}

#[test]
fn https_with_a_test_made_ca() {
    let dir = temp_dir("http-tls");
    let ca = make_certificates(&dir);
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let server = Server::start(
        &dir,
        &[
            "--http-tls-cert",
            cert.to_str().unwrap(),
            "--http-tls-key",
            key.to_str().unwrap(),
            "--http-header-timeout",
            "3",
        ],
    );
    device_round(&server, 0);
    let mut d = Device::connect(server.tcp, IMEI);
    assert_eq!(d.send(Codec::Codec8, records(1_600_000_000_000, 1)), 1);
    drop(d);
    let addr = server.http;
    let port = addr.port();
    server.wait_log(&format!("web UI and API at https://{addr}/"));
    let config = tls_client(ca);

    let get =
        format!("GET /api/devices HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n");
    let (status, list) = https(&config, addr, "localhost", &get).unwrap();
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let (status, _) = https(&config, addr, "127.0.0.1", &get).unwrap();
    assert_eq!(status, 200);

    // The web UI's command post over HTTPS (Origin https://localhost:PORT).
    let body = r#"{"text":"getinfo"}"#;
    let post = format!(
        "POST /api/devices/{IMEI}/commands HTTP/1.1\r\nHost: localhost:{port}\r\nOrigin: https://localhost:{port}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, cmd) = https(&config, addr, "localhost", &post).unwrap();
    assert_eq!(status, 201, "{cmd}");
    // `fleetview send` over HTTPS, trusting the test CA with --ca (and failing without it).
    let send = |ca: Option<&std::path::Path>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_fleetview"));
        cmd.args(["send", IMEI, "getver", "--timeout", "0.2", "--server"])
            .arg(format!("https://localhost:{port}"));
        if let Some(ca) = ca {
            cmd.arg("--ca").arg(ca);
        }
        let out = cmd.output().unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let stderr = send(Some(&dir.join("ca.pem")));
    assert!(stderr.contains("queued for"), "{stderr}");
    let stderr = send(None);
    assert!(stderr.contains("certificate"), "{stderr}");
    // Foreign Host over TLS: refused like over HTTP.
    let evil = format!(
        "GET /api/devices HTTP/1.1\r\nHost: evil.example:{port}\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(https(&config, addr, "localhost", &evil).unwrap().0, 403);

    // A client that does not trust the CA fails its handshake; plain HTTP gets no answer.
    let stranger = tls_client(make_certificates(&temp_dir("http-tls-other")));
    assert!(https(&stranger, addr, "localhost", &get).is_err());
    let mut plain = TcpStream::connect(addr).unwrap();
    plain.set_read_timeout(Some(WAIT)).unwrap();
    plain.write_all(get.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "plain HTTP answered");

    // A client that connects and never starts the handshake is dropped after the header
    // timeout (3 s here), like any slow client; others are served meanwhile.
    let mut idle = TcpStream::connect(addr).unwrap();
    assert_eq!(https(&config, addr, "localhost", &get).unwrap().0, 200);
    device_round(&server, 1);
    assert!(
        closed_within(&mut idle, WAIT).is_some(),
        "idle TLS client kept"
    );
    assert!(server.stop().success());
}
