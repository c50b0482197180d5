//! HTTPS for the API (`--http-tls-cert`, `--http-tls-key`): the same rustls server
//! configuration as the device port (`serve/tls.rs`; TLS 1.2 and 1.3, ring), speaking
//! HTTP/1.1 (ALPN `http/1.1`).

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

/// A TLS acceptor for the certificate chain in `cert` (leaf first) and the key in `key`.
pub(crate) fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let mut config = super::super::tls::server_config(cert, key)
        .map_err(|e| format!("--http-tls-cert/--http-tls-key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
