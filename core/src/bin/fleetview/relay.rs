//! `fleetview relay`: the UDP side of the edge relay. Devices send UDP-channel datagrams; a
//! Cloudflare Worker cannot listen on UDP, so this process does: it POSTs each datagram as is to
//! the Worker's `POST /udp` and sends the Worker's answer (the 7-byte ack, sent only after the
//! records are stored in D1) back to the address the datagram came from.
//!
//! The relay never parses datagrams: the Worker decodes, validates and answers. Nothing it meets
//! is fatal: a timeout, a refused connection or a 4xx/5xx answer is logged and the device gets
//! no ack, so it sends the data again, which the Worker deduplicates. Datagrams are forwarded
//! concurrently (up to `--max-in-flight`), each on its own task, so one slow request does not
//! hold up other devices.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{header, StatusCode, Url};
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tracing::{debug, error, info, warn};

/// Largest UDP payload; datagrams from devices are at most ~1.3 KB.
const MAX_DATAGRAM: usize = 65_535;
/// The Worker's ack is `0005 | packet id | 01 | AVL packet id | count`.
const ACK_LEN: usize = 7;
/// Environment variable read when `--token` is not given, so the token need not appear in the
/// process list.
const TOKEN_ENV: &str = "FLEETVIEW_RELAY_TOKEN";

#[derive(clap::Args)]
pub(crate) struct Args {
    /// UDP address to listen on for device datagrams, e.g. 0.0.0.0:5027.
    #[arg(long, value_name = "ADDR")]
    udp: SocketAddr,
    /// The Worker: its base URL (https://fleetview-relay.example.workers.dev), to which `/udp` is
    /// appended, or the full URL of its `/udp` route.
    #[arg(long, value_name = "URL")]
    to: String,
    /// Bearer token: the Worker's RELAY_TOKEN secret. Default: $FLEETVIEW_RELAY_TOKEN.
    #[arg(long, value_name = "T")]
    token: Option<String>,
    /// Give up on one datagram's POST after this many milliseconds; the device resends.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    timeout_ms: u64,
    /// Datagrams forwarded at once; further datagrams wait in the socket buffer.
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_in_flight: usize,
}

/// What every forwarding task shares.
struct Relay {
    socket: UdpSocket,
    client: reqwest::Client,
    url: Url,
    token: Option<String>,
}

pub(crate) fn run(args: Args) -> ExitCode {
    init_tracing();
    let url = match endpoint(&args.to) {
        Ok(u) => u,
        Err(e) => {
            error!("--to {:?}: {e}", args.to);
            return ExitCode::from(2);
        }
    };
    if args.max_in_flight == 0 {
        error!("--max-in-flight must be at least 1");
        return ExitCode::from(2);
    }
    let token = args
        .token
        .clone()
        .or_else(|| std::env::var(TOKEN_ENV).ok())
        .filter(|t| !t.is_empty());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(args, url, token))
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLEETVIEW_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Already set (several subcommands in one test process): keep the first.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// The `/udp` URL from `--to`: http or https, `/udp` appended to a base URL.
fn endpoint(to: &str) -> Result<Url, String> {
    let mut url = Url::parse(to).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme {:?}: expected http or https", url.scheme()));
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(String::from("expected an absolute URL with a host"));
    }
    if !url.path().trim_end_matches('/').ends_with("/udp") {
        let path = format!("{}/udp", url.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    Ok(url)
}

async fn serve(args: Args, url: Url, token: Option<String>) -> ExitCode {
    let socket = match UdpSocket::bind(args.udp).await {
        Ok(s) => s,
        Err(e) => {
            error!("cannot listen on udp {}: {e}", args.udp);
            return ExitCode::FAILURE;
        }
    };
    let local = socket
        .local_addr()
        .map_or_else(|_| args.udp.to_string(), |a| a.to_string());
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_millis(args.timeout_ms))
        .pool_max_idle_per_host(args.max_in_flight)
        .user_agent(concat!("fleetview-relay/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            error!("cannot build the HTTP client: {e}");
            return ExitCode::FAILURE;
        }
    };
    info!(
        token = token.is_some(),
        "relay listening on {local}, forwarding to {url}"
    );
    let relay = Arc::new(Relay {
        socket,
        client,
        url,
        token,
    });
    let slots = Arc::new(Semaphore::new(args.max_in_flight));
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            r = relay.socket.recv_from(&mut buf) => r,
            _ = tokio::signal::ctrl_c() => {
                info!("interrupted: stopping");
                return ExitCode::SUCCESS;
            }
        };
        let (n, peer) = match received {
            Ok(r) => r,
            Err(e) => {
                // ICMP port unreachable from an earlier ack and the like: nothing to do with the
                // next datagram.
                debug!("udp receive: {e}");
                continue;
            }
        };
        let datagram = buf[..n].to_vec();
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return ExitCode::FAILURE;
        };
        let relay = Arc::clone(&relay);
        tokio::spawn(async move {
            relay.forward(datagram, peer).await;
            drop(permit);
        });
    }
}

impl Relay {
    /// POST one datagram and send the ack back; every failure is logged and ends here.
    async fn forward(&self, datagram: Vec<u8>, peer: SocketAddr) {
        let started = Instant::now();
        let len = datagram.len();
        let mut request = self
            .client
            .post(self.url.clone())
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(datagram);
        if let Some(t) = &self.token {
            request = request.bearer_auth(t);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let what = if e.is_timeout() {
                    "timed out"
                } else {
                    "failed"
                };
                warn!(%peer, bytes = len, "POST {} {what}: {e}; no ack sent", self.url);
                return;
            }
        };
        let status = response.status();
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                warn!(%peer, bytes = len, %status, "reading the Worker's answer failed: {e}; no ack sent");
                return;
            }
        };
        let ms = started.elapsed().as_secs_f64() * 1e3;
        if status != StatusCode::OK {
            // 400 malformed, 401 token, 403 IMEI not allowed, 5xx storage: the body says why.
            warn!(
                %peer,
                bytes = len,
                status = status.as_u16(),
                "Worker refused the datagram: {}; no ack sent",
                excerpt(&body)
            );
            return;
        }
        if body.len() != ACK_LEN {
            warn!(%peer, bytes = len, "Worker answered 200 with {} bytes instead of the {ACK_LEN}-byte ack: {}; no ack sent", body.len(), excerpt(&body));
            return;
        }
        match self.socket.send_to(&body, peer).await {
            Ok(_) => {
                debug!(%peer, bytes = len, ack = %fleetview::hex::encode(&body), "acked in {ms:.1} ms")
            }
            Err(e) => warn!(%peer, "sending the ack failed: {e}"),
        }
    }
}

/// The start of an answer body, for a log line.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    let text = text.trim();
    if text.is_empty() {
        String::from("(empty body)")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            endpoint("http://127.0.0.1:8787").unwrap().as_str(),
            "http://127.0.0.1:8787/udp"
        );
        assert_eq!(
            endpoint("https://x.workers.dev/").unwrap().as_str(),
            "https://x.workers.dev/udp"
        );
        assert_eq!(
            endpoint("https://x.workers.dev/udp").unwrap().as_str(),
            "https://x.workers.dev/udp"
        );
        assert_eq!(
            endpoint("https://x.dev/relay").unwrap().as_str(),
            "https://x.dev/relay/udp"
        );
        assert!(endpoint("ftp://x.dev").is_err());
        assert!(endpoint("x.dev").is_err());
    }
}
