//! Routing: method and path to a [`Route`], or the 404/405 [`Problem`]. Written by hand rather
//! than with `worker::Router` so that unknown paths and wrong methods get the same JSON error
//! shape as every other failure, and so that the table is unit-tested natively.

use fleetview::Imei;

use crate::problem::Problem;

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /health`.
    Health,
    /// `POST /udp`: one raw datagram.
    Udp,
    /// `POST /decode`: hex or binary, answered with the JSON model.
    Decode,
    /// `GET /devices/{imei}/positions`.
    Positions {
        /// The device.
        imei: Imei,
    },
}

/// Match `method` and `path` (without the query string).
pub fn route(method: &str, path: &str) -> Result<Route, Problem> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (route, allowed) = match segments.as_slice() {
        ["health"] => (Ok(Route::Health), "GET"),
        ["udp"] => (Ok(Route::Udp), "POST"),
        ["decode"] => (Ok(Route::Decode), "POST"),
        ["devices", imei, "positions"] => (
            Imei::new(imei).map(|imei| Route::Positions { imei }).ok_or_else(|| {
                Problem::new(
                    400,
                    "invalid_imei",
                    format!(
                        "path segment 2 {imei:?} is not an IMEI: expected 1 to {} ASCII digits",
                        fleetview::imei::MAX_IMEI_LEN
                    ))
            }),
            "GET",
        ),
        _ => {
            return Err(Problem::new(
                404,
                "not_found",
                format!(
                    "no route {path}: the routes are POST /udp, POST /decode, GET /devices/{{imei}}/positions and GET /health"
                ),
            ))
        }
    };
    let method_ok = method == allowed || (allowed == "GET" && method == "HEAD");
    if !method_ok {
        return Err(Problem::new(
            405,
            "method_not_allowed",
            format!("{method} {path}: only {allowed} is allowed here"),
        ));
    }
    route
}

/// The methods a path accepts, for the `Allow` header of a 405.
pub fn allowed_methods(path: &str) -> &'static str {
    match path.trim_matches('/').split('/').next() {
        Some("udp" | "decode") => "POST",
        _ => "GET, HEAD",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(route("GET", "/health"), Ok(Route::Health));
        assert_eq!(route("POST", "/udp"), Ok(Route::Udp));
        assert_eq!(route("POST", "/decode/"), Ok(Route::Decode));
        assert_eq!(
            route("GET", "/devices/352093086403655/positions"),
            Ok(Route::Positions {
                imei: Imei::new("352093086403655").unwrap()
            })
        );
    }

    #[test]
    fn failures() {
        assert_eq!(route("GET", "/udp").unwrap_err().status, 405);
        assert_eq!(route("POST", "/health").unwrap_err().status, 405);
        assert_eq!(route("GET", "/nope").unwrap_err().status, 404);
        assert_eq!(
            route("GET", "/devices/35x/positions").unwrap_err().kind,
            "invalid_imei"
        );
        assert_eq!(
            route("GET", "/devices/1/positions/2").unwrap_err().status,
            404
        );
        assert_eq!(allowed_methods("/udp"), "POST");
    }
}
