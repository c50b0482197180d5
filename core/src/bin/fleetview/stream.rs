//! A TCP connection with or without TLS, for the server's device connections and the
//! simulator's devices alike.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A device connection's byte stream, on either side: plain TCP or TLS over it. The TLS state
/// is boxed so that plain connections (most of them) stay small.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The client side of device TLS (`fleetview simulate --tls --ca PEM`): trusts only the CA a
/// device would have uploaded, and checks the server's name (or IP address) against it.
pub(crate) struct TlsClient {
    connector: tokio_rustls::TlsConnector,
    name: rustls::pki_types::ServerName<'static>,
}

impl TlsClient {
    /// Trust the certificates in the PEM file `ca`; `host` is the name or address the
    /// server's certificate must carry.
    pub(crate) fn new(ca: &std::path::Path, host: &str) -> Result<Self, String> {
        use rustls::pki_types::ServerName;
        let config = client_config(ca_roots(ca)?)?;
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| format!("{host:?} is not a server name for TLS: {e}"))?;
        Ok(Self {
            connector: tokio_rustls::TlsConnector::from(config),
            name,
        })
    }

    /// The TLS handshake over a connected socket.
    pub(crate) async fn connect(&self, tcp: TcpStream) -> io::Result<Stream> {
        let s = self.connector.connect(self.name.clone(), tcp).await?;
        Ok(Stream::Tls(Box::new(s.into())))
    }
}

/// The certificates of the PEM file `ca` (the `--ca` of `simulate` and `send`) as trust roots.
pub(crate) fn ca_roots(ca: &std::path::Path) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--ca {}: {e}", ca.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "--ca {}: no CERTIFICATE block (expected PEM)",
            ca.display()
        ));
    }
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| format!("--ca {}: {e}", ca.display()))?;
    }
    Ok(roots)
}

/// A client configuration (TLS 1.2 and 1.3, ring) trusting `roots`.
pub(crate) fn client_config(
    roots: rustls::RootCertStore,
) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}
