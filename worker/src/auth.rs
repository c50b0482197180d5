//! Who may use `POST /udp` (writes records) and `GET /devices/…` (reads where devices have
//! been). The relay fails closed: with the secret `RELAY_TOKEN` set, these routes need
//! `Authorization: Bearer <token>`; without it they answer `503` saying how to configure one,
//! unless the operator opts out explicitly with the var `ALLOW_UNAUTHENTICATED = "true"` in
//! `wrangler.toml`, and then every answer carries a [`UNAUTHENTICATED_WARNING`] header.
//! `/decode` (stateless) and `/health` stay open.

use crate::problem::Problem;

/// The var that opts out of authentication (`[vars]` in `wrangler.toml`).
pub const ALLOW_UNAUTHENTICATED: &str = "ALLOW_UNAUTHENTICATED";

/// Response header set on every `/udp` and `/devices` answer of a relay running without a
/// token, and its value.
pub const UNAUTHENTICATED_WARNING: (&str, &str) = (
    "X-Fleetview-Warning",
    "unauthenticated: RELAY_TOKEN is not set and ALLOW_UNAUTHENTICATED is \"true\", so anyone can store records and read positions",
);

/// How the protected routes are guarded, from the secret and the var.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Protection {
    /// `RELAY_TOKEN` is set: the bearer token is required.
    Token(String),
    /// No token, and `ALLOW_UNAUTHENTICATED = "true"`: open, with a warning.
    Open,
    /// No token and no opt-out: the protected routes are refused.
    Unconfigured,
    /// No token, and `ALLOW_UNAUTHENTICATED` holds something other than `"true"`/`"false"`.
    BadOptOut(String),
}

impl Protection {
    /// From the `RELAY_TOKEN` secret and the `ALLOW_UNAUTHENTICATED` var (each `None` when
    /// unset; an empty token counts as unset). A token always wins over the opt-out.
    pub fn new(token: Option<&str>, allow_unauthenticated: Option<&str>) -> Self {
        if let Some(t) = token.filter(|t| !t.is_empty()) {
            return Self::Token(t.to_string());
        }
        match allow_unauthenticated.map(str::trim) {
            Some("true") => Self::Open,
            None | Some("false") | Some("") => Self::Unconfigured,
            Some(other) => Self::BadOptOut(other.to_string()),
        }
    }

    /// Whether a request with this `Authorization` header value may pass.
    pub fn check(&self, authorization: Option<&str>) -> Result<(), Problem> {
        match self {
            Self::Token(expected) => check_token(expected, authorization),
            Self::Open => Ok(()),
            Self::Unconfigured => Err(Problem::new(
                503,
                "relay_token_missing",
                format!(
                    "this relay has no RELAY_TOKEN secret, so /udp and /devices are closed: set one with \
                     `npx wrangler secret put RELAY_TOKEN` (and give fleetview relay the same --token), or run \
                     without authentication by setting {ALLOW_UNAUTHENTICATED} = \"true\" under [vars] in wrangler.toml \
                     (anyone could then store records and read positions)"
                ),
            )),
            Self::BadOptOut(value) => Err(Problem::new(
                503,
                "invalid_configuration",
                format!(
                    "{ALLOW_UNAUTHENTICATED} = {value:?} in wrangler.toml: expected \"true\" or \"false\"; \
                     /udp and /devices stay closed until it is fixed or RELAY_TOKEN is set"
                ),
            )),
        }
    }
}

fn check_token(expected: &str, authorization: Option<&str>) -> Result<(), Problem> {
    let Some(header) = authorization else {
        return Err(Problem::new(
            401,
            "unauthorized",
            "missing Authorization header: this relay needs \"Authorization: Bearer <RELAY_TOKEN>\"",
        ));
    };
    let presented = header
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
        .map(|_| header[7..].trim());
    match presented {
        None => Err(Problem::new(
            401,
            "unauthorized",
            "Authorization header is not a bearer token: expected \"Bearer <RELAY_TOKEN>\"",
        )),
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(Problem::new(401, "unauthorized", "wrong bearer token")),
    }
}

/// Compare without an early exit, so the time taken does not tell how many leading bytes of a
/// guessed token were right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, &x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(!x);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_secret_means_closed() {
        for p in [
            Protection::new(None, None),
            Protection::new(Some(""), None),
            Protection::new(None, Some("false")),
        ] {
            assert_eq!(p, Protection::Unconfigured);
            let e = p.check(Some("Bearer anything")).unwrap_err();
            assert_eq!((e.status, e.kind), (503, "relay_token_missing"));
            assert!(
                e.message.contains("wrangler secret put RELAY_TOKEN"),
                "{}",
                e.message
            );
            assert!(
                e.message.contains("ALLOW_UNAUTHENTICATED = \"true\""),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn explicit_opt_out() {
        assert_eq!(Protection::new(None, Some("true")), Protection::Open);
        assert!(Protection::Open.check(None).is_ok());
        let p = Protection::new(None, Some("yes"));
        let e = p.check(None).unwrap_err();
        assert_eq!((e.status, e.kind), (503, "invalid_configuration"));
        assert!(e.message.contains("\"yes\""), "{}", e.message);
        // A token wins over the opt-out.
        assert_eq!(
            Protection::new(Some("t"), Some("true")),
            Protection::Token("t".into())
        );
    }

    #[test]
    fn tokens() {
        let p = Protection::new(Some("s3cret"), None);
        assert!(p.check(Some("Bearer s3cret")).is_ok());
        assert!(p.check(Some("bearer s3cret")).is_ok());
        for bad in [
            None,
            Some("Basic s3cret"),
            Some("Bearer s3cre"),
            Some("Bearer s3cretX"),
            Some("Bearer "),
            Some("Bear"),
        ] {
            assert_eq!(p.check(bad).unwrap_err().status, 401, "{bad:?}");
        }
    }
}
