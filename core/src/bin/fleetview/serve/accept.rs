//! The TCP ports devices connect to: plain, plain behind a PROXY-protocol proxy, and TLS. Each
//! accepted connection gets a slot from [`Admission`] (which may close a connection that has
//! not logged in to make room), then, within its login deadline, its PROXY header is read or
//! its TLS handshake done, and [`Connection`] takes over.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use super::admission::Ticket;
use super::listener::Connection;
use super::{proxy, Ctx};
use crate::stream::Stream;

/// What a port expects from a new connection before the device's own bytes.
pub(crate) enum Port {
    /// The device's bytes at once.
    Plain,
    /// A PROXY protocol header (v1 or v2) with the device's address first.
    Proxy,
    /// A TLS handshake.
    Tls(TlsAcceptor),
}

impl Port {
    fn name(&self) -> &'static str {
        match self {
            Self::Plain => "TCP",
            Self::Proxy => "TCP (PROXY protocol)",
            Self::Tls(_) => "TLS",
        }
    }
}

/// Accept connections until shutdown. `alive` is cloned into every connection task; the
/// caller waits for all clones to drop.
pub(crate) async fn tcp(listener: TcpListener, port: Port, ctx: Arc<Ctx>, alive: mpsc::Sender<()>) {
    let port = Arc::new(port);
    let mut shutdown = ctx.shutdown.clone();
    let mut first = true;
    // Refusals are logged at most every 10 s with their count: a flood must not flood the log.
    let (mut refused, mut warned) = (0u64, None::<Instant>);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.wait_for(|&s| s) => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!("{} accept failed: {e}", port.name());
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Behind a proxy every connection comes from the proxy: the address that counts is
        // the one in the header.
        let source = (!matches!(*port, Port::Proxy)).then(|| peer.ip());
        let Ok(ticket) = ctx.admission.admit(source) else {
            refused += 1;
            if warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                warn!(%peer, limit = ctx.limits.max_connections, refused, "connection limit reached, every connection is a logged-in device: closing new connections");
                (refused, warned) = (0, Some(Instant::now()));
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let task = open(
            stream,
            peer,
            ticket,
            port.clone(),
            ctx.clone(),
            alive.clone(),
        );
        if std::mem::take(&mut first) {
            // Most of the memory of an idle connection: worth seeing when it grows.
            debug!(bytes = size_of_val(&task), "size of a connection task");
        }
        tokio::spawn(task);
    }
    debug!("{} listener stopped", port.name());
}

/// The steps before the device's bytes (PROXY header, TLS handshake), within the login
/// deadline and unless the connection is closed to make room meanwhile.
async fn open(
    mut stream: TcpStream,
    peer: SocketAddr,
    ticket: Ticket,
    port: Arc<Port>,
    ctx: Arc<Ctx>,
    alive: mpsc::Sender<()>,
) {
    let deadline = Instant::now() + ctx.limits.login_timeout;
    let evicted = ticket.evicted.clone();
    let opened = async {
        match &*port {
            Port::Plain => Ok((Stream::Plain(stream), peer, Vec::new())),
            Port::Proxy => {
                let (header, early) = proxy::read_header(&mut stream)
                    .await
                    .map_err(|e| e.to_string())?;
                let source = header.source.unwrap_or(peer);
                ticket.set_source(source.ip());
                Ok((Stream::Plain(stream), source, early))
            }
            Port::Tls(acceptor) => match acceptor.accept(stream).await {
                Ok(s) => Ok((Stream::Tls(Box::new(s.into())), peer, Vec::new())),
                Err(e) => Err(format!("TLS handshake failed: {e}")),
            },
        }
    };
    let result = tokio::select! {
        // Boxed: the handshake's state is not kept in the task for the connection's life.
        r = timeout_at(deadline, Box::pin(opened)) => r,
        _ = evicted.notified() => {
            debug!(%peer, "connection closed to make room: not logged in");
            return;
        }
    };
    match result {
        Ok(Ok((stream, peer, early))) => {
            Connection::new(ctx, stream, peer, ticket, deadline)
                .run(early, alive)
                .await
        }
        // A device with the wrong CA or an unsupported TLS version shows up here: worth a line.
        Ok(Err(why)) => info!(%peer, "connection closed: {why}"),
        Err(_) => debug!(
            %peer,
            "connection closed: no {} within the login timeout ({} s)",
            if matches!(*port, Port::Tls(_)) { "TLS handshake" } else { "PROXY header" },
            ctx.limits.login_timeout.as_secs_f64()
        ),
    }
}
