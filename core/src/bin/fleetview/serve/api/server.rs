//! The HTTP accept loop. `axum::serve` has no header-read timeout and no connection limit, so
//! the API runs on hyper's HTTP/1.1 connection builder directly:
//!
//! - at most `max_connections` connections at once (a semaphore); one more is closed as soon as
//!   it is accepted, so that a flood of idle sockets costs a file descriptor for an instant, not
//!   for ever, and a refusal is immediate rather than a hang;
//! - a connection has `header_timeout` to deliver each request's headers, counted from the
//!   moment the server waits for them (after the connection opens, and again after each
//!   response): a client that trickles its headers (slowloris) or says nothing is dropped;
//! - with a certificate, the TLS handshake must finish within the same time;
//! - a request head larger than [`READ_BUFFER`] is refused.
//!
//! Shutdown stops accepting, lets requests in progress finish (live streams end on the same
//! signal) and closes idle keep-alive connections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

/// How the accept loop treats connections.
#[derive(Clone)]
pub(crate) struct ServerOptions {
    /// Time to send the headers of a request (and to finish the TLS handshake).
    pub(crate) header_timeout: Duration,
    /// Connections held at once.
    pub(crate) max_connections: usize,
    /// HTTPS when set.
    pub(crate) tls: Option<TlsAcceptor>,
}

/// Largest read buffer of a connection, which bounds its request head (hyper's default is
/// about 400 KiB; the API's requests are a few hundred bytes): 256 connections hold at most
/// 16 MiB of buffers. A longer head gets `431 Request Header Fields Too Large`.
const READ_BUFFER: usize = 64 * 1024;

/// Refusals at the connection limit are logged at most this often.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// Serve `app` on `listener` until `shutdown` turns true; then wait up to `drain` for the
/// connections to finish.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    opts: ServerOptions,
    mut shutdown: watch::Receiver<bool>,
    drain: Duration,
) {
    let permits = Arc::new(Semaphore::new(opts.max_connections));
    let graceful = GracefulShutdown::new();
    let service = TowerToHyperService::new(app);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(opts.header_timeout)
        .max_buf_size(READ_BUFFER);
    let mut refused = 0u64;
    let mut last_refusal_log: Option<Instant> = None;
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    warn!("HTTP accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = async { let _ = shutdown.wait_for(|&s| s).await; } => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            drop(stream);
            refused += 1;
            if last_refusal_log.is_none_or(|t| t.elapsed() >= REFUSAL_LOG_EVERY) {
                warn!(
                    "HTTP connection from {peer} refused: {} connections open (--http-max-connections); \
                     {refused} refused so far",
                    opts.max_connections
                );
                last_refusal_log = Some(Instant::now());
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let http = http.clone();
        let service = service.clone();
        let tls = opts.tls.clone();
        let timeout = opts.header_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => connection(stream, &http, service, watcher).await,
                Some(acceptor) => {
                    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => connection(tls, &http, service, watcher).await,
                        Ok(Err(e)) => debug!("HTTPS handshake with {peer} failed: {e}"),
                        Err(_) => debug!(
                            "HTTPS handshake with {peer} not done within {} s: closed",
                            timeout.as_secs_f64()
                        ),
                    }
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        info!(
            "HTTP connections still open after {} s: closing them",
            drain.as_secs_f64()
        );
    }
}

async fn connection<I>(
    io: I,
    http: &http1::Builder,
    service: TowerToHyperService<Router>,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = http.serve_connection(TokioIo::new(io), service);
    // Header timeouts, resets and clients that leave are routine here.
    if let Err(e) = watcher.watch(conn).await {
        debug!("HTTP connection: {e}");
    }
}
