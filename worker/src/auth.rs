//! The optional bearer token. When the secret `RELAY_TOKEN` is set, `POST /udp` and
//! `GET /devices/…` need `Authorization: Bearer <token>`: the first writes records, the second
//! reads where devices have been. `/decode` (stateless) and `/health` stay open.

use crate::problem::Problem;

/// Check an `Authorization` header value against the expected token (`None`: no token set,
/// everything passes).
pub fn check(expected: Option<&str>, authorization: Option<&str>) -> Result<(), Problem> {
    let Some(expected) = expected.filter(|t| !t.is_empty()) else {
        return Ok(());
    };
    let Some(header) = authorization else {
        return Err(Problem::new(
            401,
            "unauthorized",
            "missing Authorization header: this relay needs \"Authorization: Bearer <RELAY_TOKEN>\"",
        ));
    };
    let presented = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim);
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
    fn no_secret_means_open() {
        assert!(check(None, None).is_ok());
        assert!(check(Some(""), None).is_ok());
    }

    #[test]
    fn tokens() {
        assert!(check(Some("s3cret"), Some("Bearer s3cret")).is_ok());
        assert_eq!(check(Some("s3cret"), None).unwrap_err().status, 401);
        assert_eq!(
            check(Some("s3cret"), Some("Basic s3cret"))
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            check(Some("s3cret"), Some("Bearer s3cre"))
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            check(Some("s3cret"), Some("Bearer s3cretX"))
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            check(Some("s3cret"), Some("Bearer ")).unwrap_err().status,
            401
        );
    }
}
