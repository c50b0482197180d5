//! Distances on the Earth and geofence shapes: a circle (GeoJSON `Point` with `radius_m`) or
//! a polygon (GeoJSON `Polygon`, holes allowed), validated from the API's JSON with an error
//! that says what is wrong and where.
//!
//! Containment in a polygon is planar in longitude and latitude (ray casting), which is exact
//! enough for geofences of a city's size away from the poles; a polygon may not cross the
//! antimeridian (its longitudes would be read the long way round).

use fleetview::api::GeofenceGeometry;
use serde_json::Value;

/// Mean Earth radius (IUGG), metres.
const EARTH_RADIUS_M: f64 = 6_371_008.8;
/// Largest radius of a circle, metres: a geofence, not a continent.
pub(crate) const MAX_RADIUS_M: f64 = 1_000_000.0;
/// Most positions in a ring: a ring this long with six decimals (`[25.123456,54.123456],`)
/// fits in the 64 KiB body, so the OpenAPI document's `maxItems` is never met by a 413. The
/// body bounds the positions of all rings together to about 11,000 (6 bytes each at least),
/// and so the work per record.
pub(crate) const MAX_POSITIONS: usize = 2_500;
/// Longest geofence name, characters.
pub(crate) const MAX_NAME: usize = 200;

/// Great-circle distance in metres (haversine).
pub(crate) fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// A geofence's shape, ready to test positions against.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Shape {
    Circle {
        lat: f64,
        lon: f64,
        radius_m: f64,
    },
    Polygon {
        /// Outer ring, then holes; `[longitude, latitude]`, closed.
        rings: Vec<Vec<[f64; 2]>>,
        /// Bounding box of the outer ring: min lon, min lat, max lon, max lat.
        bbox: [f64; 4],
    },
}

impl Shape {
    pub(crate) fn new(g: &GeofenceGeometry) -> Self {
        match g {
            GeofenceGeometry::Point {
                coordinates: [lon, lat],
                radius_m,
            } => Shape::Circle {
                lat: *lat,
                lon: *lon,
                radius_m: *radius_m,
            },
            GeofenceGeometry::Polygon { coordinates } => {
                let mut bbox = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
                for [x, y] in coordinates.first().into_iter().flatten() {
                    bbox = [
                        bbox[0].min(*x),
                        bbox[1].min(*y),
                        bbox[2].max(*x),
                        bbox[3].max(*y),
                    ];
                }
                Shape::Polygon {
                    rings: coordinates.clone(),
                    bbox,
                }
            }
        }
    }

    /// Whether the position is inside (a point on a circle's edge is inside).
    pub(crate) fn contains(&self, lat: f64, lon: f64) -> bool {
        match self {
            Shape::Circle {
                lat: clat,
                lon: clon,
                radius_m,
            } => distance_m(*clat, *clon, lat, lon) <= *radius_m,
            Shape::Polygon { rings, bbox } => {
                if lon < bbox[0] || lon > bbox[2] || lat < bbox[1] || lat > bbox[3] {
                    return false;
                }
                let mut rings = rings.iter();
                rings.next().is_some_and(|outer| in_ring(outer, lon, lat))
                    && !rings.any(|hole| in_ring(hole, lon, lat))
            }
        }
    }
}

/// Ray casting (even-odd) over a closed ring.
fn in_ring(ring: &[[f64; 2]], x: f64, y: f64) -> bool {
    let mut inside = false;
    for w in ring.windows(2) {
        let ([x1, y1], [x2, y2]) = (w[0], w[1]);
        if (y1 > y) != (y2 > y) && x < (x2 - x1) * (y - y1) / (y2 - y1) + x1 {
            inside = !inside;
        }
    }
    inside
}

/// Why a geofence is refused: each a `400` with its own `kind`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum GeofenceError {
    /// The body is not a JSON object with `name` and `geometry`.
    Body(String),
    /// `name` missing, empty or too long.
    Name(String),
    /// `geometry.type` is neither `Point` nor `Polygon`.
    GeometryType(String),
    /// A position that is not `[longitude, latitude]` with both in range.
    Coordinates(String),
    /// `radius_m` missing, not above 0 or too large.
    Radius(String),
    /// A ring with fewer than 4 positions or too many.
    Ring(String),
}

impl GeofenceError {
    /// The error's `kind` in the API's answer.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Body(_) => "bad_request",
            Self::Name(_) => "invalid_geofence_name",
            Self::GeometryType(_) => "unsupported_geometry",
            Self::Coordinates(_) => "invalid_coordinates",
            Self::Radius(_) => "invalid_radius",
            Self::Ring(_) => "invalid_ring",
        }
    }
}

impl std::fmt::Display for GeofenceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Body(m)
            | Self::Name(m)
            | Self::GeometryType(m)
            | Self::Coordinates(m)
            | Self::Radius(m)
            | Self::Ring(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for GeofenceError {}

/// The name and geometry of a `POST /api/geofences` body, validated.
pub(crate) fn parse_geofence(body: &Value) -> Result<(String, GeofenceGeometry), GeofenceError> {
    let Value::Object(o) = body else {
        return Err(GeofenceError::Body(
            "the body must be a JSON object: {\"name\":\"Depot\",\"geometry\":{\"type\":\"Point\",\"coordinates\":[25.25,54.66],\"radius_m\":150}}".into(),
        ));
    };
    // Spaces, tabs and line breaks around the name are trimmed (what the OpenAPI document's
    // pattern `[^ \t\n\r]` says: a name needs another character).
    let blank = [' ', '\t', '\n', '\r'];
    let name = match o.get("name") {
        Some(Value::String(s)) if s.chars().count() > MAX_NAME => {
            return Err(GeofenceError::Name(format!(
                "name: {} characters, at most {MAX_NAME}",
                s.chars().count()
            )))
        }
        Some(Value::String(s)) if !s.trim_matches(blank).is_empty() => {
            s.trim_matches(blank).to_string()
        }
        _ => {
            return Err(GeofenceError::Name(
                "name: expected a string with more than spaces, tabs and line breaks".into(),
            ))
        }
    };
    let Some(Value::Object(g)) = o.get("geometry") else {
        return Err(GeofenceError::Body(
            "geometry: expected a GeoJSON object (a Polygon, or a Point with radius_m)".into(),
        ));
    };
    let geometry = match g.get("type").and_then(Value::as_str) {
        Some("Point") => {
            let coordinates = position(g.get("coordinates"), "geometry.coordinates")?;
            let radius_m = match g.get("radius_m").and_then(Value::as_f64) {
                Some(r) if r.is_finite() && r > 0.0 && r <= MAX_RADIUS_M => r,
                Some(r) => {
                    return Err(GeofenceError::Radius(format!(
                        "radius_m: {r} m, expected above 0 and at most {MAX_RADIUS_M} m"
                    )))
                }
                None => {
                    return Err(GeofenceError::Radius(
                        "radius_m: a Point geofence is a circle and needs a radius in metres"
                            .into(),
                    ))
                }
            };
            GeofenceGeometry::Point {
                coordinates,
                radius_m,
            }
        }
        Some("Polygon") => {
            let Some(Value::Array(rings)) = g.get("coordinates") else {
                return Err(GeofenceError::Coordinates(
                    "geometry.coordinates: expected an array of rings, each an array of [longitude, latitude]".into(),
                ));
            };
            if rings.is_empty() {
                return Err(GeofenceError::Ring(
                    "geometry.coordinates: a Polygon needs its outer ring".into(),
                ));
            }
            let mut out = Vec::with_capacity(rings.len());
            for (i, ring) in rings.iter().enumerate() {
                let at = format!("geometry.coordinates[{i}]");
                let Value::Array(points) = ring else {
                    return Err(GeofenceError::Coordinates(format!(
                        "{at}: expected an array of [longitude, latitude]"
                    )));
                };
                if points.len() > MAX_POSITIONS {
                    return Err(GeofenceError::Ring(format!(
                        "{at}: {} positions, at most {MAX_POSITIONS} in a ring",
                        points.len()
                    )));
                }
                let mut ring = points
                    .iter()
                    .enumerate()
                    .map(|(j, p)| position(Some(p), &format!("{at}[{j}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                if ring.len() < 4 {
                    return Err(GeofenceError::Ring(format!(
                        "{at}: {} positions; a ring needs at least 4 (a triangle and the first position again)",
                        ring.len()
                    )));
                }
                // GeoJSON repeats the first position last; a ring left open is closed here.
                if ring.first() != ring.last() {
                    ring.push(ring[0]);
                }
                out.push(ring);
            }
            GeofenceGeometry::Polygon { coordinates: out }
        }
        Some(other) => {
            return Err(GeofenceError::GeometryType(format!(
            "geometry.type {other:?}: expected \"Polygon\", or \"Point\" with radius_m (a circle)"
        )))
        }
        None => {
            return Err(GeofenceError::GeometryType(
                "geometry.type: missing; expected \"Polygon\" or \"Point\"".into(),
            ))
        }
    };
    Ok((name, geometry))
}

/// `[longitude, latitude]`, or `[longitude, latitude, altitude]` (the altitude ignored), all
/// numbers.
fn position(v: Option<&Value>, at: &str) -> Result<[f64; 2], GeofenceError> {
    let bad = |why: String| GeofenceError::Coordinates(format!("{at}: {why}"));
    let Some(Value::Array(p)) = v else {
        return Err(bad("expected [longitude, latitude]".into()));
    };
    let numbers: Option<Vec<f64>> = p.iter().map(Value::as_f64).collect();
    let (lon, lat) = match numbers.as_deref() {
        Some(&[lon, lat]) | Some(&[lon, lat, _]) => (lon, lat),
        _ => {
            return Err(bad(
                "expected [longitude, latitude] (or with an altitude after them), numbers".into(),
            ))
        }
    };
    if !(-180.0..=180.0).contains(&lon) {
        return Err(bad(format!("longitude {lon} is outside -180..180")));
    }
    if !(-90.0..=90.0).contains(&lat) {
        return Err(bad(format!(
            "latitude {lat} is outside -90..90 (GeoJSON puts the longitude first)"
        )));
    }
    Ok([lon, lat])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn haversine_matches_known_distances() {
        // One degree of latitude: 111.195 km on the mean sphere.
        assert!((distance_m(0.0, 0.0, 1.0, 0.0) - 111_195.08).abs() < 0.1);
        // Vilnius cathedral to the TV tower, about 4.9 km.
        let d = distance_m(54.685_8, 25.287_5, 54.687_2, 25.214_4);
        assert!((4_700.0..4_750.0).contains(&d), "{d}");
        assert_eq!(distance_m(54.0, 25.0, 54.0, 25.0), 0.0);
    }

    #[test]
    fn circles_and_polygons_with_holes() {
        let c = Shape::Circle {
            lat: 54.0,
            lon: 25.0,
            radius_m: 100.0,
        };
        assert!(c.contains(54.0, 25.0));
        assert!(c.contains(54.0 + 99.0 / 111_195.08, 25.0));
        assert!(!c.contains(54.0 + 101.0 / 111_195.08, 25.0));
        let square = |a: f64, b: f64| vec![[a, a], [b, a], [b, b], [a, b], [a, a]];
        let p = Shape::new(&GeofenceGeometry::Polygon {
            coordinates: vec![square(0.0, 10.0), square(4.0, 6.0)],
        });
        assert!(p.contains(1.0, 1.0));
        assert!(p.contains(9.0, 2.0));
        assert!(!p.contains(5.0, 5.0), "in the hole");
        assert!(!p.contains(11.0, 5.0));
        assert!(!p.contains(-1.0, 5.0));
    }

    #[test]
    fn geofences_are_validated_with_specific_errors() {
        let ok = parse_geofence(
            &json!({"name":" Depot ","geometry":{"type":"Point","coordinates":[25.25,54.66],"radius_m":150}}),
        );
        assert_eq!(
            ok,
            Ok((
                "Depot".into(),
                GeofenceGeometry::Point {
                    coordinates: [25.25, 54.66],
                    radius_m: 150.0
                }
            ))
        );
        let kind = |v: Value| parse_geofence(&v).unwrap_err();
        // radius_m belongs in the geometry (what the OpenAPI document says).
        let e =
            kind(json!({"name":"a","radius_m":5,"geometry":{"type":"Point","coordinates":[1,2]}}));
        assert_eq!(e.kind(), "invalid_radius");
        // An altitude is ignored; a fourth number is refused.
        assert!(parse_geofence(
            &json!({"name":"a","geometry":{"type":"Point","coordinates":[1,2,300],"radius_m":5}})
        )
        .is_ok());
        let e = kind(
            json!({"name":"a","geometry":{"type":"Point","coordinates":[1,2,3,4],"radius_m":5}}),
        );
        assert_eq!(e.kind(), "invalid_coordinates");
        // A name of blanks only, or over 200 characters (bytes do not count).
        assert_eq!(
            kind(json!({"name":" \t\r\n","geometry":{}})).kind(),
            "invalid_geofence_name"
        );
        assert_eq!(
            kind(json!({"name":"x".repeat(201),"geometry":{}})).kind(),
            "invalid_geofence_name"
        );
        assert!(parse_geofence(
            &json!({"name":"é".repeat(200),"geometry":{"type":"Point","coordinates":[1,2],"radius_m":5}})
        )
        .is_ok());
        let e =
            kind(json!({"name":"a","geometry":{"type":"Point","coordinates":[1,2],"radius_m":0}}));
        assert_eq!(e.kind(), "invalid_radius");
        let e = kind(json!({"name":"a","geometry":{"type":"Point","coordinates":[1,2]}}));
        assert_eq!(e.kind(), "invalid_radius");
        let e = kind(
            json!({"name":"a","geometry":{"type":"Point","coordinates":[54.6,125.2],"radius_m":5}}),
        );
        assert_eq!(
            (e.kind(), e.to_string().as_str()),
            (
                "invalid_coordinates",
                "geometry.coordinates: latitude 125.2 is outside -90..90 (GeoJSON puts the longitude first)"
            )
        );
        // A ring left open is closed.
        assert_eq!(
            parse_geofence(
                &json!({"name":"a","geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}})
            )
            .map(|(_, g)| g),
            Ok(GeofenceGeometry::Polygon {
                coordinates: vec![vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]]
            })
        );
        let e = kind(
            json!({"name":"a","geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,0]]]}}),
        );
        assert_eq!(e.kind(), "invalid_ring");
        let e = kind(
            json!({"name":"a","geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],["x",1],[0,0]]]}}),
        );
        assert_eq!(
            e.to_string(),
            "geometry.coordinates[0][2]: expected [longitude, latitude] (or with an altitude after them), numbers"
        );
        let e = kind(json!({"name":"a","geometry":{"type":"LineString","coordinates":[]}}));
        assert_eq!(e.kind(), "unsupported_geometry");
        assert_eq!(
            kind(json!({"name":"","geometry":{}})).kind(),
            "invalid_geofence_name"
        );
        assert_eq!(kind(json!({"name":"a"})).kind(), "bad_request");
        assert_eq!(kind(json!([1])).kind(), "bad_request");
    }
}
