//! `fleetview send`: queue a command through a running `fleetview serve` and print the
//! device's answer. It posts to `POST /api/devices/{imei}/commands` and polls
//! `GET /api/commands/{id}` until the command is answered, fails, or the timeout passes.
//!
//! The client is a few lines of HTTP/1.1 over a std socket (with rustls for `https://`): one
//! request per connection, to the project's own server, so no HTTP client library is needed.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::ServerName;

use serde_json::{json, Value};

/// Command codecs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CommandCodec {
    /// Codec 12: the command alone.
    #[value(name = "12")]
    C12,
    /// Codec 14: the command addressed to the device's IMEI (it answers nACK if not its own).
    #[value(name = "14")]
    C14,
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The device's IMEI.
    imei: String,
    /// The command, e.g. `getinfo` or `setdigout 1`. With --hex: the payload as hex.
    command: String,
    /// Codec of the command frame.
    #[arg(long, value_enum, default_value_t = CommandCodec::C12)]
    codec: CommandCodec,
    /// The command is hex bytes rather than text.
    #[arg(long)]
    hex: bool,
    /// The server's address: http://HOST:PORT, or https://HOST:PORT when it serves the API
    /// with a certificate.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// PEM certificate(s) of the authority that signed the server's certificate, for an
    /// https:// server whose certificate is not from a public CA.
    #[arg(long, value_name = "PEM")]
    ca: Option<PathBuf>,
    /// Bearer token, when the server requires one. Visible in `ps`: prefer --token-file or the
    /// FLEETVIEW_TOKEN environment variable (read when neither flag is given).
    #[arg(long, conflicts_with = "token_file")]
    token: Option<String>,
    /// File holding the bearer token (surrounding whitespace ignored).
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// Seconds to wait for the answer (the device may be offline; the command stays queued).
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
    /// Print the whole command object as JSON instead of the answer's text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> ExitCode {
    match send(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fleetview send: {e}");
            ExitCode::FAILURE
        }
    }
}

fn send(args: &Args) -> Result<ExitCode, String> {
    let token = crate::token::load(
        args.token.as_deref(),
        args.token_file.as_deref(),
        std::env::var(crate::token::TOKEN_ENV).ok(),
    )
    .map_err(|e| e.to_string())?
    .map(|(t, _)| t.as_str().to_string());
    let mut server = Server::parse(&args.server, token)?;
    if server.https {
        server.tls = Some(tls_config(args.ca.as_deref())?);
    } else if args.ca.is_some() {
        return Err("--ca is for an https:// --server".into());
    }
    let codec = match args.codec {
        CommandCodec::C12 => "12",
        CommandCodec::C14 => "14",
    };
    let body = if args.hex {
        json!({"hex": args.command, "codec": codec})
    } else {
        json!({"text": args.command, "codec": codec})
    };
    let created = server.request(
        "POST",
        &format!("/api/devices/{}/commands", args.imei),
        Some(&body),
    )?;
    let id = created["id"]
        .as_i64()
        .ok_or_else(|| format!("the server answered without a command id: {created}"))?;
    let wait = Duration::try_from_secs_f64(args.timeout)
        .map_err(|_| format!("--timeout {}: not a duration", args.timeout))?;
    eprintln!(
        "fleetview send: command {id} queued for {}; waiting up to {} s for the answer",
        args.imei,
        wait.as_secs_f64()
    );
    let deadline = Instant::now() + wait;
    let mut said_sent = false;
    loop {
        let cmd = server.request("GET", &format!("/api/commands/{id}"), None)?;
        let status = cmd["status"].as_str().unwrap_or("");
        if status == "sent" && !said_sent {
            eprintln!("fleetview send: sent to the device");
            said_sent = true;
        }
        match status {
            "unanswered" => {
                let why = cmd["error"].as_str().unwrap_or("no answer");
                eprintln!(
                    "fleetview send: command {id} is unanswered ({why}); it may have run on the device and is not sent again \
                     unless retried: POST /api/commands/{id}/retry"
                );
                return Ok(ExitCode::FAILURE);
            }
            "answered" | "failed" => {
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&cmd).unwrap_or_default());
                } else if let Some(text) = cmd["response"]["text"].as_str() {
                    println!("{text}");
                } else if let Some(hex) = cmd["response"]["payload_hex"].as_str() {
                    println!("{hex}");
                }
                if status == "failed" {
                    let why = cmd["error"].as_str().unwrap_or("no reason given");
                    eprintln!("fleetview send: command {id} failed: {why}");
                    return Ok(ExitCode::FAILURE);
                }
                return Ok(ExitCode::SUCCESS);
            }
            _ if Instant::now() >= deadline => {
                return Err(format!(
                    "no answer within {} s (command {id} is {status}; it stays queued and goes out when the device connects)",
                    wait.as_secs_f64()
                ));
            }
            _ => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// The roots for an https:// server: the `--ca` file, or the public CAs (webpki-roots).
fn tls_config(ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let roots = match ca {
        Some(path) => crate::stream::ca_roots(path)?,
        None => rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    crate::stream::client_config(roots)
}

/// A `http://host:port` or `https://host:port` server.
struct Server {
    /// `host:port` to connect to.
    host: String,
    /// What the URL said (the `Host` header).
    authority: String,
    /// The name the certificate must carry (the host without port or brackets).
    name: String,
    token: Option<String>,
    https: bool,
    /// The client configuration of an https:// server ([`tls_config`]).
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Server {
    fn parse(url: &str, token: Option<String>) -> Result<Self, String> {
        let (rest, https) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(rest), _) => (rest, false),
            (_, Some(rest)) => (rest, true),
            _ => {
                return Err(format!(
                    "--server {url:?}: expected http://HOST:PORT or https://HOST:PORT"
                ))
            }
        };
        let authority = rest.trim_end_matches('/').to_string();
        if authority.is_empty() || authority.contains('/') {
            return Err(format!(
                "--server {url:?}: expected http(s)://HOST:PORT without a path"
            ));
        }
        let has_port = authority.contains(':') && !authority.ends_with(']');
        let host = if has_port {
            authority.clone()
        } else {
            format!("{authority}:{}", if https { 443 } else { 80 })
        };
        let name = match authority.rsplit_once(':') {
            Some((h, _)) if has_port => h,
            _ => &authority,
        }
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
        Ok(Self {
            host,
            authority,
            name,
            token,
            https,
            tls: None,
        })
    }

    /// One request; the JSON body of a 2xx answer, or the server's error message.
    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let addr = self
            .host
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?
            .next()
            .ok_or_else(|| format!("cannot resolve {}", self.host))?;
        let scheme = if self.https { "https" } else { "http" };
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(|e| {
            format!(
                "cannot connect to {scheme}://{} ({e}): is fleetview serve running?",
                self.authority
            )
        })?;
        tcp.set_read_timeout(Some(Duration::from_secs(30))).ok();
        let mut stream: Box<dyn ReadWrite> = match &self.tls {
            None => Box::new(tcp),
            Some(config) => {
                let name = ServerName::try_from(self.name.clone())
                    .map_err(|e| format!("{:?} is not a server name: {e}", self.name))?;
                let conn = rustls::ClientConnection::new(config.clone(), name)
                    .map_err(|e| format!("TLS: {e}"))?;
                Box::new(rustls::StreamOwned::new(conn, tcp))
            }
        };
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n",
            self.authority
        );
        if let Some(t) = &self.token {
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
        stream
            .write_all(req.as_bytes())
            .map_err(|e| format!("cannot send the request: {e}"))?;
        let mut raw = Vec::new();
        match stream.read_to_end(&mut raw) {
            Ok(_) => {}
            // The server closes after `Connection: close` without a TLS close_notify.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(e) => return Err(format!("cannot read the answer: {e}")),
        }
        let (status, json) = parse_response(&raw)?;
        if (200..300).contains(&status) {
            return Ok(json);
        }
        let msg = json["error"]["message"]
            .as_str()
            .map_or_else(|| json.to_string(), str::to_string);
        Err(match status {
            401 => format!(
                "the server needs a token (--token-file, FLEETVIEW_TOKEN or --token): {msg}"
            ),
            _ => format!("{method} {path}: HTTP {status}: {msg}"),
        })
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Status and JSON body of an HTTP/1.1 response read to the end (fixed length or chunked).
fn parse_response(raw: &[u8]) -> Result<(u16, Value), String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the server's answer has no HTTP header")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            format!(
                "not an HTTP status line: {:?}",
                head.lines().next().unwrap_or("")
            )
        })?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let mut body = raw[split + 4..].to_vec();
    if chunked {
        body = dechunk(&body).ok_or("malformed chunked body")?;
    }
    if body.is_empty() {
        return Ok((status, Value::Null));
    }
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    Ok((status, json))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_fixed_and_chunked() {
        let r = b"HTTP/1.1 201 Created\r\ncontent-length: 9\r\n\r\n{\"id\":17}";
        assert_eq!(parse_response(r).unwrap(), (201, json!({"id": 17})));
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(parse_response(r).unwrap(), (200, json!({"a": 1})));
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn server_urls() {
        assert_eq!(
            Server::parse("http://127.0.0.1:8080/", None).unwrap().host,
            "127.0.0.1:8080"
        );
        assert_eq!(
            Server::parse("http://fleet.example", None).unwrap().host,
            "fleet.example:80"
        );
        let s = Server::parse("https://fleet.example", None).unwrap();
        assert_eq!(
            (s.host.as_str(), s.name.as_str()),
            ("fleet.example:443", "fleet.example")
        );
        assert!(s.https);
        let s = Server::parse("https://[::1]:8443", None).unwrap();
        assert_eq!((s.host.as_str(), s.name.as_str()), ("[::1]:8443", "::1"));
        assert!(Server::parse("ftp://x", None).is_err());
        assert!(Server::parse("http://x/prefix", None).is_err());
    }
}
