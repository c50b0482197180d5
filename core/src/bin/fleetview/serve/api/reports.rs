//! The reports' routes: a device's trips, stops and events, and the geofences (shapes in
//! core/docs/http-api.md).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use axum::{Json, Router};
use fleetview::api::{
    EventJson, EventKind, FuelChange, FuelEventKind, GeofenceGeometry, GeofenceJson, Stop, Trip,
};
use fleetview::io_catalog;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};

use super::{bad_request, internal, known_device, openapi, time_param, ApiError, ApiResult};
use crate::serve::query::{FuelReading, MAX_LIMIT};
use crate::serve::reports::geometry::{parse_geofence, MAX_POSITIONS, MAX_RADIUS_M};
use crate::serve::reports::sql::MAX_TRACK;
use crate::serve::reports::{trip, Thresholds};
use crate::serve::{fuel, Ctx};

/// Geofences at most: every record with a fix is tested against each of them.
const MAX_GEOFENCES: usize = 1000;

pub(super) fn routes(r: Router<Arc<Ctx>>) -> Router<Arc<Ctx>> {
    r.route("/api/devices/{imei}/trips", get(trips))
        .route("/api/devices/{imei}/stops", get(stops))
        .route("/api/devices/{imei}/events", get(events))
        .route("/api/geofences", get(geofences).post(create_geofence))
        .route("/api/geofences/{id}", delete(delete_geofence))
}

type Params = HashMap<String, String>;

/// The body of `POST /api/geofences` (validated by hand by `parse_geofence`, each failure with
/// its own kind; this type documents exactly what it accepts).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(super) struct GeofenceRequest {
    /// 1 to 200 characters, not only spaces, tabs and line breaks (which are trimmed).
    #[schema(min_length = 1, max_length = 200, pattern = "[^ \t\n\r]")]
    name: String,
    /// A GeoJSON Polygon, or a Point with `radius_m` (a circle).
    #[schema(schema_with = geometry_schema)]
    geometry: GeofenceGeometry,
}

/// A geofence's geometry as `parse_geofence` takes it: a `Point` with `radius_m`, or a
/// `Polygon` of rings of 4 to 10,000 positions (a ring left open is closed by the server).
fn geometry_schema() -> Schema {
    let kind = |name: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some([name.to_string()]))
    };
    let point = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("type", kind("Point"))
        .property("coordinates", position_schema())
        .property(
            "radius_m",
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .exclusive_minimum(Some(0))
                .maximum(Some(MAX_RADIUS_M))
                .description(Some("The circle's radius, metres")),
        )
        .required("type")
        .required("coordinates")
        .required("radius_m");
    let ring = ArrayBuilder::new()
        .items(position_schema())
        .min_items(Some(4))
        .max_items(Some(MAX_POSITIONS))
        .description(Some(
            "A ring: its last position repeats the first (the server closes a ring left open)",
        ));
    let polygon = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("type", kind("Polygon"))
        .property(
            "coordinates",
            ArrayBuilder::new()
                .items(ring)
                .min_items(Some(1))
                .description(Some("The outer ring, then holes")),
        )
        .required("type")
        .required("coordinates");
    OneOfBuilder::new().item(point).item(polygon).build().into()
}

/// `[longitude, latitude]`, optionally followed by an altitude (ignored), as GeoJSON has it.
fn position_schema() -> ArrayBuilder {
    let degrees = |max: f64| {
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .minimum(Some(-max))
            .maximum(Some(max))
    };
    ArrayBuilder::new()
        .prefix_items([degrees(180.0), degrees(90.0)])
        .items(ObjectBuilder::new().schema_type(Type::Number))
        .min_items(Some(2))
        .max_items(Some(3))
}

/// The query of `trips` and `stops` (read by hand from the query string, each parameter
/// checked with its own message; this type documents them).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct ReportQuery {
    /// From (inclusive): milliseconds since 1970 or ISO 8601 UTC.
    #[param(schema_with = openapi::time_schema)]
    from: Option<String>,
    /// To (inclusive): milliseconds since 1970 or ISO 8601 UTC.
    #[param(schema_with = openapi::time_schema)]
    to: Option<String>,
    /// Shortest stop reported, seconds (default --min-stop-duration, 300).
    #[param(minimum = 0, maximum = 31536000)]
    min_stop_duration: Option<f64>,
    /// Shortest trip reported, metres (default --min-trip-distance, 500).
    #[param(minimum = 0, maximum = 31536000)]
    min_trip_distance: Option<f64>,
    /// Seconds without records that end a trip (default --trip-gap, 3600).
    #[param(minimum = 0, maximum = 31536000)]
    trip_gap: Option<f64>,
    /// km/h from which a device without ignition and movement IOs moves (default
    /// --moving-speed, 5).
    #[param(minimum = 0, maximum = 31536000)]
    moving_speed: Option<f64>,
}

#[utoipa::path(get, path = "/api/devices/{imei}/trips", params(
    ("imei" = String, Path, pattern = "^[0-9]{1,32}$", description = "The device's IMEI (up to 32 digits)"),
    ReportQuery,
), responses(
    (status = 200, description = "The trips, ascending in time", body = Vec<Trip>),
    (status = 400, description = "A malformed parameter (`bad_request`)", body = openapi::ErrorBody),
    (status = 401, description = "No or a wrong bearer token (`unauthorized`)", body = openapi::ErrorBody),
    (status = 404, description = "No such device (`unknown_device`)", body = openapi::ErrorBody),
    (status = 500, description = "A database failure (`internal`)", body = openapi::ErrorBody),
))]
pub(super) async fn trips(
    State(ctx): State<Arc<Ctx>>,
    UrlPath(imei): UrlPath<String>,
    Query(q): Query<Params>,
) -> ApiResult {
    Ok(Json(report(&ctx, &imei, &q).await?.0).into_response())
}

#[utoipa::path(get, path = "/api/devices/{imei}/stops", params(
    ("imei" = String, Path, pattern = "^[0-9]{1,32}$", description = "The device's IMEI (up to 32 digits)"),
    ReportQuery,
), responses(
    (status = 200, description = "The stops, ascending in time", body = Vec<Stop>),
    (status = 400, description = "A malformed parameter (`bad_request`)", body = openapi::ErrorBody),
    (status = 401, description = "No or a wrong bearer token (`unauthorized`)", body = openapi::ErrorBody),
    (status = 404, description = "No such device (`unknown_device`)", body = openapi::ErrorBody),
    (status = 500, description = "A database failure (`internal`)", body = openapi::ErrorBody),
))]
pub(super) async fn stops(
    State(ctx): State<Arc<Ctx>>,
    UrlPath(imei): UrlPath<String>,
    Query(q): Query<Params>,
) -> ApiResult {
    Ok(Json(report(&ctx, &imei, &q).await?.1).into_response())
}

/// The thresholds: the server's, each overridden by the query parameter of its name.
fn thresholds(ctx: &Ctx, q: &Params) -> Result<Thresholds, ApiError> {
    let mut t = ctx.thresholds;
    for name in Thresholds::NAMES {
        if let Some(s) = q.get(name) {
            let v = s
                .trim()
                .parse::<f64>()
                .map_err(|_| bad_request(format!("{name}={s:?}: expected a number")))?;
            t.set(name, v).map_err(|e| bad_request(e.to_string()))?;
        }
    }
    Ok(t)
}

/// The device's trips and stops within `from`..`to`.
async fn report(ctx: &Ctx, imei: &str, q: &Params) -> Result<(Vec<Trip>, Vec<Stop>), ApiError> {
    let imei = known_device(ctx, imei).await?;
    let from = time_param(q, "from", i64::MIN)?;
    let to = time_param(q, "to", i64::MAX)?;
    let t = thresholds(ctx, q)?;
    let points = ctx
        .reader
        .track(imei, from, to, MAX_TRACK + 1)
        .await
        .map_err(internal)?;
    if points.len() as i64 > MAX_TRACK {
        return Err(too_many());
    }
    let model = ctx.model.clone();
    // A month of records takes some milliseconds: off the runtime's threads.
    tokio::task::spawn_blocking(move || {
        trip::trips_and_stops(points, &t, &|id| {
            io_catalog::lookup(id, model.as_deref()).and_then(|i| i.unit)
        })
    })
    .await
    .map_err(internal)
}

/// Geofence events (stored) and refuels and drains (found in the fuel levels as
/// `GET /api/devices/{imei}/fuel` finds them, with `--fuel-threshold`), ascending in time.
#[utoipa::path(get, path = "/api/devices/{imei}/events", params(
    ("imei" = String, Path, pattern = "^[0-9]{1,32}$", description = "The device's IMEI (up to 32 digits)"),
    openapi::TimeRange,
), responses(
    (status = 200, description = "Geofence, refuel and drain events, ascending in time", body = Vec<EventJson>),
    (status = 400, description = "A malformed parameter (`bad_request`)", body = openapi::ErrorBody),
    (status = 401, description = "No or a wrong bearer token (`unauthorized`)", body = openapi::ErrorBody),
    (status = 404, description = "No such device (`unknown_device`)", body = openapi::ErrorBody),
    (status = 500, description = "A database failure (`internal`)", body = openapi::ErrorBody),
))]
pub(super) async fn events(
    State(ctx): State<Arc<Ctx>>,
    UrlPath(imei): UrlPath<String>,
    Query(q): Query<Params>,
) -> ApiResult {
    let imei = known_device(&ctx, &imei).await?;
    let from = time_param(&q, "from", i64::MIN)?;
    let to = time_param(&q, "to", i64::MAX)?;
    // Geofence events, and the fuel levels from the records' columns that trips read too (one
    // index for a month of records), side by side.
    let (out, track) = tokio::join!(
        ctx.reader
            .geofence_events(imei.clone(), from, to, MAX_LIMIT),
        ctx.reader.track(imei.clone(), from, to, MAX_TRACK + 1)
    );
    let (mut out, track) = (out.map_err(internal)?, track.map_err(internal)?);
    if track.len() as i64 > MAX_TRACK {
        return Err(too_many());
    }
    let model = ctx.model.clone();
    let readings = tokio::task::spawn_blocking(move || fuel_readings(track, model.as_deref()))
        .await
        .map_err(internal)?;
    let (_, _, points) = fuel::series(readings);
    out.extend(
        fuel::detect(&points, ctx.fuel_threshold)
            .into_iter()
            .map(|e| EventJson {
                kind: match e.kind {
                    FuelEventKind::Refuel => EventKind::Refuel,
                    FuelEventKind::Drain => EventKind::Drain,
                },
                imei: imei.clone(),
                timestamp_ms: e.timestamp_ms,
                latitude: e.latitude,
                longitude: e.longitude,
                geofence_id: None,
                geofence_name: None,
                fuel: Some(FuelChange {
                    start_ms: e.start_ms,
                    before: e.before,
                    after: e.after,
                    change: e.change,
                }),
            }),
    );
    out.sort_by_key(|e| e.timestamp_ms);
    Ok(Json(out).into_response())
}

fn too_many() -> ApiError {
    bad_request(format!(
        "more than {MAX_TRACK} records between from and to: ask for a shorter range"
    ))
}

/// The fuel readings of a track, in time order, as the fuel series reads them.
fn fuel_readings(mut track: Vec<trip::TrackPoint>, model: Option<&str>) -> Vec<FuelReading> {
    track.sort_by_key(|p| (p.timestamp_ms, p.hash));
    // The unit of the last sensor looked up (a device has one or two).
    let mut unit_of: Option<(u16, Option<&'static str>)> = None;
    track
        .into_iter()
        .filter_map(|p| {
            let (id, level) = p.fuel?;
            let unit = match unit_of {
                Some((known, unit)) if known == id => unit,
                _ => {
                    let unit = io_catalog::lookup(id, model).and_then(|i| i.unit);
                    unit_of = Some((id, unit));
                    unit
                }
            };
            let flag = |v: Option<bool>| v.map(u8::from);
            Some((
                id,
                unit.map(Into::into),
                fuel::Point {
                    timestamp_ms: p.timestamp_ms,
                    level,
                    stationary: fuel::stationary(p.speed, flag(p.ignition), flag(p.movement)),
                    latitude: p.latitude,
                    longitude: p.longitude,
                },
            ))
        })
        .collect()
}

#[utoipa::path(get, path = "/api/geofences", responses(
    (status = 200, description = "Every geofence, by id", body = Vec<GeofenceJson>),
    (status = 401, description = "No or a wrong bearer token (`unauthorized`)", body = openapi::ErrorBody),
    (status = 500, description = "A database failure (`internal`)", body = openapi::ErrorBody),
))]
pub(super) async fn geofences(State(ctx): State<Arc<Ctx>>) -> ApiResult {
    Ok(Json(ctx.reader.geofences().await.map_err(internal)?).into_response())
}

#[utoipa::path(post, path = "/api/geofences", request_body = GeofenceRequest, responses(
    (status = 201, description = "Created", body = GeofenceJson),
    openapi::BodyRejection,
    (status = 415, description = "The body is not declared as `application/json` (`unsupported_media_type`)", body = openapi::ErrorBody),
    (status = 400, description = "An invalid geofence (`invalid_geofence_name`, `unsupported_geometry`, `invalid_coordinates`, `invalid_radius`, `invalid_ring`, `bad_request`)", body = openapi::ErrorBody),
    (status = 401, description = "No or a wrong bearer token (`unauthorized`)", body = openapi::ErrorBody),
    (status = 409, description = "1,000 geofences already (`too_many_geofences`)", body = openapi::ErrorBody),
    (status = 500, description = "A database failure (`internal`)", body = openapi::ErrorBody),
))]
pub(super) async fn create_geofence(State(ctx): State<Arc<Ctx>>, body: Bytes) -> ApiResult {
    let body: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        bad_request(format!(
            "the body is not JSON ({e}): send {{\"name\":\"Depot\",\"geometry\":{{\"type\":\"Point\",\"coordinates\":[25.25,54.66],\"radius_m\":150}}}}"
        ))
    })?;
    let (name, geometry) = parse_geofence(&body)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.kind(), e.to_string()))?;
    if ctx.reader.geofences().await.map_err(internal)?.len() >= MAX_GEOFENCES {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "too_many_geofences",
            format!("there are {MAX_GEOFENCES} geofences already: delete one first"),
        ));
    }
    let json = serde_json::to_string(&geometry).map_err(internal)?;
    let id = ctx
        .store
        .create_geofence(name.clone(), json)
        .await
        .map_err(internal)?;
    tracing::info!(geofence = id, name = %name, "geofence created");
    let created = ctx
        .reader
        .geofences()
        .await
        .map_err(internal)?
        .into_iter()
        .find(|g| g.id == id)
        .ok_or_else(|| internal(format!("geofence {id} not found after its creation")))?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

#[utoipa::path(delete, path = "/api/geofences/{id}", params(("id" = i64, Path, description = "The geofence's id")), responses(
    (status = 204, description = "Deleted, with its events"),
    openapi::BodyRejection,
    (status = 415, description = "A `Content-Type` other than `application/json` (`unsupported_media_type`); none is fine", body = openapi::ErrorBody),
    (status = 400, description = "Not a number (`bad_request`)", body = openapi::ErrorBody),
    (status = 401, description = "No or a wrong bearer token (`unauthorized`)", body = openapi::ErrorBody),
    (status = 404, description = "No such geofence (`unknown_geofence`)", body = openapi::ErrorBody),
    (status = 500, description = "A database failure (`internal`)", body = openapi::ErrorBody),
))]
pub(super) async fn delete_geofence(
    State(ctx): State<Arc<Ctx>>,
    UrlPath(id): UrlPath<String>,
) -> ApiResult {
    let id: i64 = id
        .parse()
        .map_err(|_| bad_request(format!("geofence id {id:?}: expected a number")))?;
    if ctx.store.delete_geofence(id).await.map_err(internal)? {
        tracing::info!(geofence = id, "geofence deleted");
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError(
            StatusCode::NOT_FOUND,
            "unknown_geofence",
            format!("no geofence {id}"),
        ))
    }
}
