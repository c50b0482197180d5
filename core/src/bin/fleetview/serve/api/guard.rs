//! What a request must be before any route sees it, against a web page in the operator's own
//! browser:
//!
//! - **Host** is one of the server's own names. A page on `evil.example` can make its name
//!   resolve to 127.0.0.1 (DNS rebinding) and then read the API as same-origin; its requests
//!   still carry `Host: evil.example`, which is refused here.
//! - **State-changing requests** (every method but GET, HEAD and OPTIONS) come from the same
//!   origin or from a client that sends no `Origin` (curl, `fleetview send`), and carry JSON
//!   (`Content-Type: application/json`). An HTML form can post `text/plain` across sites
//!   without a CORS preflight; JSON from another origin needs one, which this server never
//!   grants.
//! - **Bodies** arrive within the header timeout and are at most [`MAX_BODY`] bytes: a client
//!   that announces a body and trickles it holds no task for long.
//!
//! The checks are plain functions over header values, unit-tested below; [`guard`] is the
//! axum middleware that applies them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::uri::Authority;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// Largest request body read (a command is a few hundred bytes of JSON).
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// The names this server answers to, and the scheme it is reached by.
#[derive(Clone, Debug)]
pub(crate) struct OwnNames {
    /// The bound port: built-in names must come with it (or without a port when it is the
    /// scheme's default).
    port: u16,
    https: bool,
    /// `localhost` is a name of this server (bound to loopback or to every address).
    localhost: bool,
    /// Bound to every address (0.0.0.0 or [::]): any IP literal is a name of this server. An IP
    /// literal cannot be rebound: a page whose origin is that address was served by it.
    any_ip: bool,
    /// IP literals accepted.
    ips: Vec<IpAddr>,
    /// `--public-host` names (lowercase), each with its port or any port.
    public: Vec<(String, Option<u16>)>,
}

impl OwnNames {
    /// The names of a server bound to `bound`, plus `public` (`NAME` or `NAME:PORT`, as given
    /// to `--public-host`; a name without a port matches any port, because a reverse proxy in
    /// front usually listens on another one).
    pub(crate) fn new(bound: SocketAddr, https: bool, public: &[String]) -> Result<Self, String> {
        let ip = bound.ip();
        let loopback = ip.is_loopback();
        let mut ips = vec![ip];
        if loopback {
            ips.extend([
                IpAddr::from([127, 0, 0, 1]),
                IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
            ]);
        }
        let mut names = Vec::new();
        for p in public {
            let parsed = parse_authority(p).ok_or_else(|| {
                format!("--public-host {p:?}: expected a host name, NAME:PORT or an IP address")
            })?;
            names.push(parsed);
        }
        Ok(Self {
            port: bound.port(),
            https,
            localhost: loopback || ip.is_unspecified(),
            any_ip: ip.is_unspecified(),
            ips,
            public: names,
        })
    }

    fn default_port(&self) -> u16 {
        if self.https {
            443
        } else {
            80
        }
    }

    /// Whether a `Host` header value names this server.
    pub(crate) fn accepts(&self, host: &str) -> bool {
        let Some((name, port)) = parse_authority(host) else {
            return false;
        };
        if self
            .public
            .iter()
            .any(|(n, p)| *n == name && p.is_none_or(|p| Some(p) == port))
        {
            return true;
        }
        if port.unwrap_or(self.default_port()) != self.port {
            return false;
        }
        if name == "localhost" {
            return self.localhost;
        }
        match name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            Ok(ip) => self.any_ip || self.ips.contains(&ip),
            Err(_) => false,
        }
    }

    /// The names, for error messages (`127.0.0.1:8080, localhost:8080, …`).
    pub(crate) fn describe(&self) -> String {
        let mut out: Vec<String> = Vec::new();
        let with_port = |h: String| format!("{h}:{}", self.port);
        if self.any_ip {
            out.push(format!(
                "any IP address of this machine with port {}",
                self.port
            ));
        }
        for ip in &self.ips {
            if ip.is_unspecified() {
                continue;
            }
            let s = SocketAddr::new(*ip, self.port).to_string();
            if !out.contains(&s) {
                out.push(s);
            }
        }
        if self.localhost {
            out.push(with_port("localhost".into()));
        }
        for (n, p) in &self.public {
            out.push(match p {
                Some(p) => format!("{n}:{p}"),
                None => n.clone(),
            });
        }
        out.join(", ")
    }
}

/// `host[:port]` → (lowercase host without a trailing dot, port). IPv6 hosts keep their
/// brackets. `None` for anything else (user info, paths, empty).
fn parse_authority(s: &str) -> Option<(String, Option<u16>)> {
    let a: Authority = s.trim().parse().ok()?;
    if a.as_str().contains('@') || a.host().is_empty() {
        return None;
    }
    let host = a.host().trim_end_matches('.').to_ascii_lowercase();
    Some((host, a.port_u16()))
}

/// Why a request is refused before routing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No `Host` header (HTTP/1.1 requires one).
    MissingHost,
    /// `Host` is not a name of this server.
    ForeignHost(String),
    /// `Origin` of another site (or `null`) on a state-changing request.
    CrossOrigin { origin: String, host: String },
    /// A state-changing request whose body is not declared as JSON.
    NotJson(Option<String>),
    /// A method no route of this server takes (TRACE, CONNECT, an extension method).
    Method,
}

impl Refusal {
    fn into_error(self, method: &Method, path: &str, names: &OwnNames) -> ApiError {
        match self {
            Self::MissingHost => ApiError(
                StatusCode::BAD_REQUEST,
                "missing_host",
                "the request has no Host header (HTTP/1.1 requires one)".into(),
            ),
            Self::ForeignHost(host) => ApiError(
                StatusCode::FORBIDDEN,
                "host_not_allowed",
                format!(
                    "Host {host:?} is not a name of this server (it answers to {}): a web page reached \
                     through another name (DNS rebinding) may not use it. Reached through a DNS name or \
                     a proxy? Start fleetview serve with --public-host NAME",
                    names.describe()
                ),
            ),
            Self::CrossOrigin { origin, host } => ApiError(
                StatusCode::FORBIDDEN,
                "cross_origin",
                format!(
                    "{method} {path} from Origin {origin:?} refused: state-changing requests are accepted \
                     only from this server's own pages (Origin of host {host}) or from clients that send \
                     no Origin (curl, fleetview send)"
                ),
            ),
            Self::Method => ApiError(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!(
                    "{method} {path}: this server takes GET, HEAD, OPTIONS, POST, PUT, PATCH and DELETE only"
                ),
            ),
            Self::NotJson(ct) => ApiError(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "{method} {path}: the body must be JSON sent with Content-Type: application/json (got {}); \
                     form encodings are refused so that a web page cannot post to this API",
                    ct.map_or_else(|| "no Content-Type".into(), |c| format!("{c:?}"))
                ),
            ),
        }
    }
}

/// GET, HEAD and OPTIONS change nothing; every other method does.
fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// `Origin` is absent, or names the same host and port as `Host` (the scheme's default port
/// when a port is left out). The scheme is not compared: a page of another scheme on the same
/// host and port would have to be served by this very server.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    match (parse_authority(rest), parse_authority(host)) {
        (Some((oh, op)), Some((hh, hp))) => {
            oh == hh && op.unwrap_or(default) == hp.unwrap_or(default)
        }
        _ => false,
    }
}

/// `application/json`, with or without parameters (`; charset=utf-8`).
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The checks on method and headers, in order: Host, then (for state-changing requests)
/// Origin and Content-Type.
pub(crate) fn check(
    names: &OwnNames,
    method: &Method,
    host: Option<&str>,
    origin: Option<&str>,
    content_type: Option<&str>,
) -> Result<(), Refusal> {
    check_host(names, method, host)?;
    let host = host.unwrap_or_default();
    if !changes_state(method) {
        return Ok(());
    }
    if let Some(origin) = origin {
        if !same_origin(origin, host) {
            return Err(Refusal::CrossOrigin {
                origin: origin.to_string(),
                host: host.to_string(),
            });
        }
    }
    match content_type {
        Some(ct) if is_json(ct) => Ok(()),
        other => Err(Refusal::NotJson(other.map(str::to_string))),
    }
}

/// The outer middleware, for every request (the web UI's files included): the `Host` and the
/// method ([`check`]'s first steps). The rest of [`guard`] runs only for a route that exists
/// for the method, after the token check: a request for a route or method that does not exist
/// gets its 404 or 405, an unauthenticated one its 401, whatever its content type.
pub(crate) async fn guard_host(State(g): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let host = req
        .headers()
        .get(header::HOST)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let refusal = match check_host(&g.names, &method, host.as_deref()) {
        Ok(()) => return next.run(req).await,
        Err(r) => r,
    };
    if matches!(refusal, Refusal::ForeignHost(_)) {
        tracing::warn!("HTTP {method} {path} refused: {refusal:?}");
    }
    refusal.into_error(&method, &path, &g.names).into_response()
}

/// [`check`]'s first steps: a `Host` of this server, and a method some route may take.
fn check_host(names: &OwnNames, method: &Method, host: Option<&str>) -> Result<(), Refusal> {
    let host = host.ok_or(Refusal::MissingHost)?;
    if !names.accepts(host) {
        return Err(Refusal::ForeignHost(host.to_string()));
    }
    if changes_state(method)
        && !matches!(
            *method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        )
    {
        return Err(Refusal::Method);
    }
    Ok(())
}

/// What the middleware needs.
#[derive(Debug)]
pub(crate) struct Guard {
    pub(crate) names: OwnNames,
    /// Time allowed for a request body (the header timeout).
    pub(crate) body_timeout: Duration,
}

/// The middleware: [`check`], then the body of a state-changing request read within the time
/// and size limits, before the route runs.
pub(crate) async fn guard(State(g): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let headers = req.headers();
    let header = |name| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let (host, origin, content_type) = (
        header(header::HOST),
        header(header::ORIGIN),
        header(header::CONTENT_TYPE),
    );
    if let Err(refusal) = check(
        &g.names,
        &method,
        host.as_deref(),
        origin.as_deref(),
        content_type.as_deref(),
    ) {
        if matches!(
            refusal,
            Refusal::ForeignHost(_) | Refusal::CrossOrigin { .. }
        ) {
            tracing::warn!("HTTP {method} {path} refused: {refusal:?}");
        }
        return refusal.into_error(&method, &path, &g.names).into_response();
    }
    if !changes_state(&method) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes =
        match tokio::time::timeout(g.body_timeout, axum::body::to_bytes(body, MAX_BODY)).await {
            Ok(Ok(b)) => b,
            Ok(Err(_)) => {
                return ApiError(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!(
                    "{method} {path}: the body is larger than {MAX_BODY} bytes (or was cut short)"
                ),
                )
                .into_response()
            }
            Err(_) => {
                return ApiError(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    format!(
                        "{method} {path}: the body did not arrive within {} s",
                        g.body_timeout.as_secs_f64()
                    ),
                )
                .into_response()
            }
        };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(bound: &str, public: &[&str]) -> OwnNames {
        let public: Vec<String> = public.iter().map(|s| s.to_string()).collect();
        OwnNames::new(bound.parse().unwrap(), false, &public).unwrap()
    }

    #[test]
    fn loopback_names() {
        let n = names("127.0.0.1:8080", &[]);
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST:8080",
            "localhost.:8080",
            "[::1]:8080",
        ] {
            assert!(n.accepts(ok), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "evil.example",
            "localhost",
            "localhost:8081",
            "127.0.0.1",
            "10.0.0.1:8080",
            "user@localhost:8080",
            "",
            "localhost:8080/x",
        ] {
            assert!(!n.accepts(bad), "{bad}");
        }
        assert_eq!(n.describe(), "127.0.0.1:8080, [::1]:8080, localhost:8080");
    }

    #[test]
    fn default_port_and_public_names() {
        let n = names("127.0.0.1:80", &["fleet.example.com", "Other.example:8443"]);
        assert!(n.accepts("localhost"));
        assert!(n.accepts("127.0.0.1:80"));
        assert!(n.accepts("fleet.example.com"));
        assert!(n.accepts("FLEET.example.com:443"));
        assert!(n.accepts("other.example:8443"));
        assert!(!n.accepts("other.example"));
        assert!(!n.accepts("evil.fleet.example.com"));
        let https = OwnNames::new("127.0.0.1:443".parse().unwrap(), true, &[]).unwrap();
        assert!(https.accepts("localhost"));
        assert!(OwnNames::new("127.0.0.1:1".parse().unwrap(), false, &["a/b".into()]).is_err());
    }

    #[test]
    fn every_address_and_one_address() {
        let n = names("0.0.0.0:8080", &[]);
        assert!(n.accepts("192.168.1.20:8080"));
        assert!(n.accepts("[2001:db8::1]:8080"));
        assert!(n.accepts("localhost:8080"));
        assert!(!n.accepts("fleet.lan:8080"));
        let n = names("192.168.1.20:8080", &[]);
        assert!(n.accepts("192.168.1.20:8080"));
        assert!(!n.accepts("192.168.1.21:8080"));
        assert!(!n.accepts("localhost:8080"));
    }

    #[test]
    fn state_changing_requests() {
        let n = names("127.0.0.1:8080", &[]);
        let host = Some("127.0.0.1:8080");
        let json = Some("application/json; charset=utf-8");
        assert_eq!(check(&n, &Method::POST, host, None, json), Ok(()));
        assert_eq!(
            check(&n, &Method::POST, host, Some("http://127.0.0.1:8080"), json),
            Ok(())
        );
        assert_eq!(
            check(
                &n,
                &Method::POST,
                host,
                Some("http://evil.example"),
                Some("text/plain")
            ),
            Err(Refusal::CrossOrigin {
                origin: "http://evil.example".into(),
                host: "127.0.0.1:8080".into()
            })
        );
        for origin in [
            "null",
            "http://127.0.0.1:8081",
            "http://localhost:8080",
            "file://",
        ] {
            assert!(
                matches!(
                    check(&n, &Method::POST, host, Some(origin), json),
                    Err(Refusal::CrossOrigin { .. })
                ),
                "{origin}"
            );
        }
        assert_eq!(
            check(&n, &Method::POST, host, None, Some("text/plain")),
            Err(Refusal::NotJson(Some("text/plain".into())))
        );
        assert_eq!(
            check(&n, &Method::DELETE, host, None, None),
            Err(Refusal::NotJson(None))
        );
        // Reading needs neither.
        assert_eq!(
            check(&n, &Method::GET, host, Some("http://evil.example"), None),
            Ok(())
        );
        assert_eq!(
            check(&n, &Method::GET, Some("evil.example:8080"), None, None),
            Err(Refusal::ForeignHost("evil.example:8080".into()))
        );
        assert_eq!(
            check(&n, &Method::GET, None, None, None),
            Err(Refusal::MissingHost)
        );
    }

    #[test]
    fn origins() {
        assert!(same_origin(
            "https://fleet.example.com",
            "fleet.example.com"
        ));
        assert!(same_origin(
            "https://fleet.example.com:443",
            "fleet.example.com"
        ));
        assert!(same_origin("http://[::1]:8080", "[::1]:8080"));
        assert!(!same_origin(
            "https://fleet.example.com",
            "fleet.example.com:8080"
        ));
        assert!(!same_origin("ftp://a", "a"));
        assert!(!same_origin("a", "a"));
    }
}
