//! The HTTP API's flags and what they become at start: the token, the server's own names, the
//! timeouts, the connection cap and the certificate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::guard::{Guard, OwnNames};
use super::server::ServerOptions;
use crate::token::{self, Token, TOKEN_ENV};

#[derive(clap::Args, Debug)]
pub(crate) struct HttpArgs {
    /// Bearer token the HTTP API requires (`Authorization: Bearer T`, or `?access_token=T`).
    /// Visible to every user in `ps`: prefer --token-file or the FLEETVIEW_TOKEN environment
    /// variable.
    #[arg(long, conflicts_with = "token_file")]
    token: Option<String>,
    /// File holding the bearer token (surrounding whitespace ignored). Without --token and
    /// --token-file, the token is read from $FLEETVIEW_TOKEN when set.
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// Another name this server is reached by (DNS name, reverse proxy): `NAME` (any port) or
    /// `NAME:PORT`. Repeatable. Requests whose Host is not one of the server's names are refused
    /// (DNS rebinding); the bound address, and localhost when bound to loopback, always are.
    #[arg(long, value_name = "NAME")]
    public_host: Vec<String>,
    /// Serve the API over HTTPS with this PEM certificate chain (leaf first). Needs
    /// --http-tls-key.
    #[arg(long, value_name = "PEM", requires = "http_tls_key")]
    http_tls_cert: Option<PathBuf>,
    /// PEM private key of --http-tls-cert.
    #[arg(long, value_name = "PEM", requires = "http_tls_cert")]
    http_tls_key: Option<PathBuf>,
    /// Seconds an HTTP client has to send a request's headers (and the body of a POST), and to
    /// finish the TLS handshake; an idle keep-alive connection is closed after as long.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    http_header_timeout: f64,
    /// HTTP connections held at once (each live view holds one); more are closed on arrival.
    #[arg(long, default_value_t = 256, value_name = "N")]
    http_max_connections: usize,
}

/// The HTTP side, ready to serve.
pub(crate) struct HttpSetup {
    pub(crate) token: Option<Token>,
    pub(crate) server: ServerOptions,
    public_host: Vec<String>,
}

impl HttpSetup {
    /// Check the flags against the address the API is to listen on (`--http`) and load the
    /// token and the certificate. Logs where the token came from and what is exposed.
    pub(crate) fn new(args: &HttpArgs, listen: SocketAddr) -> Result<Self, String> {
        let env = std::env::var(TOKEN_ENV).ok();
        let env_set = env.is_some();
        let loaded = token::load(args.token.as_deref(), args.token_file.as_deref(), env)
            .map_err(|e| e.to_string())?;
        if let Some((_, source)) = &loaded {
            info!("HTTP API token from {source}");
            if env_set && *source != token::TokenSource::Env {
                info!("{TOKEN_ENV} is set but {source} takes precedence");
            }
            if let Some(w) = token::source_warning(source) {
                warn!("{w}");
            }
        }
        let token = loaded.map(|(t, _)| t);
        if !listen.ip().is_loopback() && token.is_none() {
            return Err(format!(
                "refusing to serve HTTP on {listen} without --token: the API lists positions and sends commands to devices. \
                 Bind a loopback address (--http 127.0.0.1:8080) or require a bearer token \
                 (--token-file PATH, {TOKEN_ENV}, or --token SECRET)"
            ));
        }
        let header_timeout = Duration::try_from_secs_f64(args.http_header_timeout)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                format!(
                    "--http-header-timeout {}: expected a positive number of seconds",
                    args.http_header_timeout
                )
            })?;
        if args.http_max_connections == 0 {
            return Err("--http-max-connections must be at least 1".into());
        }
        let tls = match (&args.http_tls_cert, &args.http_tls_key) {
            (Some(cert), Some(key)) => Some(super::https::acceptor(cert, key)?),
            _ => None,
        };
        if tls.is_none() && !listen.ip().is_loopback() {
            warn!(
                "the HTTP API on {listen} is plain HTTP: the token and positions cross the network in clear \
                 (give --http-tls-cert and --http-tls-key, or put a TLS proxy in front)"
            );
        }
        // Checked now, used once the port is known.
        OwnNames::new(listen, tls.is_some(), &args.public_host)?;
        Ok(Self {
            token,
            server: ServerOptions {
                header_timeout,
                max_connections: args.http_max_connections,
                tls,
            },
            public_host: args.public_host.clone(),
        })
    }

    /// The request guard for the address actually bound (the port may have been 0).
    pub(crate) fn guard(&self, bound: SocketAddr) -> Result<Arc<Guard>, String> {
        let names = OwnNames::new(bound, self.server.tls.is_some(), &self.public_host)?;
        info!("HTTP API answers to {}", names.describe());
        Ok(Arc::new(Guard {
            names,
            body_timeout: self.server.header_timeout,
        }))
    }

    /// `http` or `https`.
    pub(crate) fn scheme(&self) -> &'static str {
        if self.server.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}
