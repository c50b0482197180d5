//! Device TLS (`--tls ADDR --tls-cert PEM --tls-key PEM`), beside the plain port.
//!
//! Teltonika firmware from 03.27 speaks TLS 1.2 to the server ("Encryption: TLS", with the CA
//! that signed the server's certificate uploaded through the Configurator); 1.3 is offered
//! too. rustls with the ring provider: the same crypto stack `fleetview relay` already uses
//! through reqwest, so the binary carries one. Modems that only speak TLS 1.1 or CBC suites
//! are served by a proxy in front of the plain port ([`super::proxy`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// Why the TLS configuration could not be loaded.
#[derive(Debug)]
pub(crate) enum TlsError {
    /// The certificate file is unreadable or not PEM.
    Certificates(PathBuf, rustls::pki_types::pem::Error),
    /// The certificate file holds no certificate.
    NoCertificate(PathBuf),
    /// The key file is unreadable, not PEM, or holds no private key.
    Key(PathBuf, rustls::pki_types::pem::Error),
    /// rustls refused the pair (the key does not match the certificate, an unsupported key).
    Config(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Certificates(p, e) => {
                write!(
                    f,
                    "certificate file {}: cannot read the certificates: {e}",
                    p.display()
                )
            }
            Self::NoCertificate(p) => write!(
                f,
                "certificate file {}: no CERTIFICATE block in the file (expected PEM)",
                p.display()
            ),
            Self::Key(p, e) => write!(
                f,
                "key file {}: cannot read a private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}",
                p.display()
            ),
            Self::Config(e) => write!(f, "TLS certificate and key: {e}"),
        }
    }
}

/// The device port's acceptor from a PEM certificate chain (leaf first) and its private key.
pub(crate) fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    Ok(TlsAcceptor::from(Arc::new(server_config(cert, key)?)))
}

/// The server configuration (TLS 1.2 and 1.3, ring) from a PEM certificate chain (leaf first)
/// and its private key; the HTTP API adds its ALPN protocol to it.
pub(crate) fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Certificates(cert.to_path_buf(), e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_path_buf()));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key(key.to_path_buf(), e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(TlsError::Config)?;
    Ok(config)
}
