//! HTTPS for the API: the certificate chain and key from PEM files (`--http-tls-cert`,
//! `--http-tls-key`), served by rustls with the ring provider (the same crypto stack as the rest
//! of the binary). TLS 1.2 and 1.3; HTTP/1.1 only (ALPN `http/1.1`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// Why the API's certificate cannot be used.
#[derive(Debug)]
pub(crate) enum TlsError {
    /// The certificate file is unreadable or holds no PEM certificate.
    Cert(PathBuf, String),
    /// The key file is unreadable or holds no PEM private key.
    Key(PathBuf, String),
    /// rustls refused the pair (the key does not match the certificate, unsupported key type).
    Config(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cert(p, why) => write!(f, "--http-tls-cert {}: {why}", p.display()),
            Self::Key(p, why) => write!(f, "--http-tls-key {}: {why}", p.display()),
            Self::Config(e) => write!(f, "--http-tls-cert/--http-tls-key: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// A TLS acceptor for the certificate chain in `cert` (leaf first) and the key in `key`
/// (PKCS#8, PKCS#1 or SEC1 PEM).
pub(crate) fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert(cert.to_path_buf(), e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::Cert(
            cert.to_path_buf(),
            "no CERTIFICATE block in the file".into(),
        ));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError::Key(key.to_path_buf(), e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
