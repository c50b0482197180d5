//! The HTTP side: the JSON API (routes and shapes in core/docs/http-api.md), live updates as
//! Server-Sent Events, and the web UI as static files.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use fleetview::api::{FuelLevel, FuelSeries, Positions};
use fleetview::{io_catalog, Imei};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

mod guard;
mod https;
mod openapi;
mod options;
mod reports;
mod server;

pub(crate) use self::options::{HttpArgs, HttpSetup};
pub(crate) use self::server::serve;

use super::query::MAX_LIMIT;
use super::storage::now_ms;
use super::{fuel, Ctx};
use crate::token::Token;

/// The body of `POST /api/devices/{imei}/commands`: the command as text or as bytes.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
enum CommandRequest {
    Text(TextCommand),
    Hex(HexCommand),
}

/// A command as text (`getinfo`, `setdigout 1`).
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TextCommand {
    /// The command, at most 1,024 characters.
    #[schema(min_length = 1, max_length = 1024)]
    text: String,
    /// `"12"` (default) or `"14"`, also as a number.
    #[serde(default)]
    #[schema(schema_with = openapi::codec_schema)]
    codec: Option<Value>,
}

/// A command as bytes.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct HexCommand {
    /// The bytes in hex, at most 8,192 characters; spaces, commas, colons, dashes, underscores
    /// and `0x` or `\x` prefixes between bytes are ignored.
    #[schema(
        max_length = 8192,
        pattern = r"^((0[xX]|\\[xX]|[ \t\r\n,:;_-])*[0-9a-fA-F][ \t\r\n,:;_-]*[0-9a-fA-F])+(0[xX]|\\[xX]|[ \t\r\n,:;_-])*$"
    )]
    hex: String,
    /// `"12"` (default) or `"14"`, also as a number.
    #[serde(default)]
    #[schema(schema_with = openapi::codec_schema)]
    codec: Option<Value>,
}

/// The body of `POST /api/commands/{id}/retry`: an object, nothing in it is read.
#[derive(serde::Deserialize, utoipa::ToSchema)]
struct RetryRequest {}

/// `format` of `GET /api/devices/{imei}/positions`.
#[derive(Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
enum PositionsFormat {
    /// `{"imei","positions"}` (default).
    Json,
    /// A GeoJSON FeatureCollection (`application/geo+json`).
    Geojson,
}

/// Longest command text, in characters (at most 4 bytes each: within [`MAX_COMMAND`]).
const MAX_TEXT: usize = 1024;
/// Longest command hex text, in characters (at most [`MAX_COMMAND`] bytes).
const MAX_HEX: usize = 2 * MAX_COMMAND;

/// Records returned by `positions` when no `limit` is given.
const DEFAULT_LIMIT: i64 = 10_000;
/// Largest command payload accepted (devices take a few hundred bytes).
const MAX_COMMAND: usize = 4096;

/// The router: `/api/...` (behind the bearer token when one is set) and the UI at `/`, all
/// behind the [`guard`] (Host, Origin, content type, body limits).
pub(crate) fn router(ctx: Arc<Ctx>, token: Option<Token>, guard: Arc<guard::Guard>) -> Router {
    let api = Router::new()
        .route("/api/devices", get(devices))
        .route("/api/devices/{imei}/positions", get(positions))
        .route("/api/devices/{imei}/fuel", get(fuel_report))
        .route("/api/devices/{imei}/commands", post(queue_command))
        .route("/api/commands/{id}", get(command))
        .route("/api/commands/{id}/retry", post(retry_command))
        .route("/api/live", get(live))
        .route("/api/forwarders", get(forwarders))
        .route("/api/openapi.json", get(openapi_json))
        .route("/metrics", get(metrics));
    // Origin, content type and body limits of state-changing requests, for routes that exist
    // with their method (the reports' too), after the token (guard::guard_host's note).
    let api = reports::routes(api)
        .route_layer(middleware::from_fn_with_state(guard.clone(), guard::guard))
        .route_layer(middleware::from_fn_with_state(token, auth));
    Router::new()
        .merge(api)
        .fallback(static_file)
        .layer(middleware::from_fn_with_state(guard, guard::guard_host))
        .with_state(ctx)
}

/// An API error: the status and `{"error":{"kind","message"}}`.
pub(crate) struct ApiError(StatusCode, &'static str, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = openapi::ErrorBody {
            error: openapi::ErrorDetail {
                kind: self.1,
                message: self.2,
            },
        };
        (self.0, Json(body)).into_response()
    }
}

fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, "bad_request", msg.into())
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    let msg = e.to_string();
    tracing::error!("API: {msg}");
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal", msg)
}

type ApiResult = Result<Response, ApiError>;

/// With a token, every API request needs `Authorization: Bearer T` (or `?access_token=T`,
/// percent-encoded, for EventSource, which cannot set headers).
async fn auth(State(token): State<Option<Token>>, req: Request, next: Next) -> Response {
    let Some(token) = &token else {
        return next.run(req).await;
    };
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| bearer(v.as_bytes()));
    let query = req.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned().into_bytes())
    });
    let given = header.map(<[u8]>::to_vec).or(query).unwrap_or_default();
    if token.matches(&given) {
        next.run(req).await
    } else {
        let mut r = ApiError(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this server needs a bearer token: send `Authorization: Bearer <token>` (the token of fleetview serve: \
             --token-file, FLEETVIEW_TOKEN or --token)"
                .into(),
        )
        .into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        r
    }
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is case-insensitive).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
}

/// Each forwarder of this node: deliveries, failures, and the lag of its outbox.
#[utoipa::path(get, path = "/api/forwarders", responses(
    (status = 200, description = "This node's forwarders (`--forward`), in the order given", body = Vec<super::forward::ForwarderJson>),
    (status = 401, description = "No or a wrong bearer token (`unauthorized`)", body = openapi::ErrorBody),
))]
async fn forwarders(State(ctx): State<Arc<Ctx>>) -> ApiResult {
    let mut out = Vec::with_capacity(ctx.forwarders.all.len());
    for f in &ctx.forwarders.all {
        out.push(f.json(&ctx.reader).await);
    }
    Ok(Json(out).into_response())
}

/// Every device the server knows, ordered by IMEI, each with its last position.
#[utoipa::path(get, path = "/api/devices", responses(
    (status = 200, description = "The devices", body = Vec<openapi::Device>),
    (status = 401, description = "No or a wrong bearer token (`unauthorized`)", body = openapi::ErrorBody),
    (status = 500, description = "A database failure (`internal`)", body = openapi::ErrorBody),
))]
async fn devices(State(ctx): State<Arc<Ctx>>) -> ApiResult {
    let model = ctx.model.clone();
    let list = ctx.reader.devices(model).await.map_err(internal)?;
    let now = now_ms();
    let fresh = ctx.limits.idle.as_millis() as i64;
    let out: Vec<_> = list
        .into_iter()
        .map(|mut d| {
            // Here, or (PostgreSQL) on another node with a live lease.
            d.connected = d.connected || ctx.hub.connected(&d.imei, now, fresh);
            d
        })
        .collect();
    Ok(Json(out).into_response())
}

/// A known IMEI from the URL, or 400/404.
async fn known_device(ctx: &Ctx, imei: &str) -> Result<String, ApiError> {
    if Imei::new(imei).is_none() {
        return Err(bad_request(format!(
            "{imei:?} is not an IMEI: expected up to 32 digits"
        )));
    }
    let exists = ctx
        .reader
        .device_exists(imei.to_string())
        .await
        .map_err(internal)?;
    // A device connected here that has sent no data yet has no row, but takes commands.
    if exists || ctx.hub.holds(imei) {
        Ok(imei.to_string())
    } else {
        Err(ApiError(
            StatusCode::NOT_FOUND,
            "unknown_device",
            format!("no device {imei}: it has never connected to this server"),
        ))
    }
}

/// `from`/`to`: milliseconds since 1970, or ISO 8601 UTC (`2024-05-01T12:00:00Z`, a date
/// alone is midnight); exactly what [`TIME_PATTERN`] matches.
fn time_param(q: &HashMap<String, String>, name: &str, default: i64) -> Result<i64, ApiError> {
    match q.get(name).map(|s| s.trim_matches([' ', '\t', '\n', '\r'])) {
        None | Some("") => Ok(default),
        Some(s) => parse_time(s).ok_or_else(|| {
            bad_request(format!(
                "{name}={s:?} is not a time: give milliseconds since 1970 or ISO 8601 like 2024-05-01T12:00:00Z"
            ))
        }),
    }
}

/// What [`parse_time`] takes (spaces around it aside), as the OpenAPI document says it:
/// `-?D{1,18}` milliseconds, or `YYYY-MM-DD[(T| )HH:MM[:SS[.F{1,9}]]][Z]`.
pub(crate) const TIME_PATTERN: &str = r"^[ \t\n\r]*(-?[0-9]{1,18}|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([T ]([01][0-9]|2[0-3]):[0-5][0-9](:([0-5][0-9]|60)(\.[0-9]{1,9})?)?)?Z?)?[ \t\n\r]*$";

/// Milliseconds since 1970 from `-?D{1,18}`, or ISO 8601 (core's strict
/// `time::parse_iso8601`): exactly what [`TIME_PATTERN`] describes.
pub(crate) fn parse_time(s: &str) -> Option<i64> {
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    if (1..=18).contains(&unsigned.len()) && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    fleetview::time::parse_iso8601(s)
}

/// A device's stored records, ascending in time (the most recent `limit` of the range).
#[utoipa::path(get, path = "/api/devices/{imei}/positions", params(
    ("imei" = String, Path, pattern = "^[0-9]{1,32}$", description = "The device's IMEI (up to 32 digits)"),
    openapi::TimeRange,
    ("limit" = Option<i64>, Query, minimum = 1, maximum = 100000, description = "At most this many, the most recent (default 10,000)"),
    ("format" = Option<PositionsFormat>, Query, description = "`json` (default) or `geojson` (a FeatureCollection, application/geo+json)"),
), responses(
    (status = 200, description = "The records", content(
        (openapi::PositionList = "application/json"),
        (Object = "application/geo+json"),
    )),
    (status = 400, description = "A malformed parameter (`bad_request`)", body = openapi::ErrorBody),
    (status = 401, description = "No or a wrong bearer token (`unauthorized`)", body = openapi::ErrorBody),
    (status = 404, description = "No such device (`unknown_device`)", body = openapi::ErrorBody),
    (status = 500, description = "A database failure (`internal`)", body = openapi::ErrorBody),
))]
async fn positions(
    State(ctx): State<Arc<Ctx>>,
    UrlPath(imei): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let imei = known_device(&ctx, &imei).await?;
    let from = time_param(&q, "from", i64::MIN)?;
    let to = time_param(&q, "to", i64::MAX)?;
    let limit = match q.get("limit") {
        None => DEFAULT_LIMIT,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                bad_request(format!(
                    "limit={s:?}: expected a number from 1 to {MAX_LIMIT}"
                ))
            })?,
    };
    let format = match q.get("format").map(String::as_str) {
        None | Some("json") => PositionsFormat::Json,
        Some("geojson") => PositionsFormat::Geojson,
        Some(f) => {
            return Err(bad_request(format!(
                "format={f:?}: expected json or geojson"
            )))
        }
    };
    let rows = ctx
        .reader
        .positions(imei.clone(), from, to, limit, ctx.model.clone())
        .await
        .map_err(internal)?;
    if format == PositionsFormat::Json {
        return Ok(Json(Positions {
            imei,
            positions: rows,
        })
        .into_response());
    }
    // Properties: the stored record without its coordinates, and the device.
    let collection =
        fleetview::export::point_collection(rows.into_iter().filter(|r| r.record.valid), |r| {
            let (longitude, latitude) = (r.record.longitude, r.record.latitude);
            let mut p = match serde_json::to_value(r) {
                Ok(Value::Object(m)) => m,
                _ => serde_json::Map::new(),
            };
            p.remove("longitude");
            p.remove("latitude");
            p.insert("imei".into(), json!(imei));
            (longitude, latitude, p)
        });
    let mut resp = Json(collection).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/geo+json"),
    );
    Ok(resp)
}

/// A device's fuel level series and the refuels and drains in it.
#[utoipa::path(get, path = "/api/devices/{imei}/fuel", params(
    ("imei" = String, Path, pattern = "^[0-9]{1,32}$", description = "The device's IMEI (up to 32 digits)"),
    openapi::TimeRange,
    ("threshold" = Option<f64>, Query, exclusive_minimum = 0, description = "Smallest change reported, in the level's unit (default --fuel-threshold)"),
), responses(
    (status = 200, description = "The series and its events", body = FuelSeries),
    (status = 400, description = "A malformed parameter (`bad_request`)", body = openapi::ErrorBody),
    (status = 401, description = "No or a wrong bearer token (`unauthorized`)", body = openapi::ErrorBody),
    (status = 404, description = "No such device (`unknown_device`)", body = openapi::ErrorBody),
    (status = 500, description = "A database failure (`internal`)", body = openapi::ErrorBody),
))]
async fn fuel_report(
    State(ctx): State<Arc<Ctx>>,
    UrlPath(imei): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let imei = known_device(&ctx, &imei).await?;
    let from = time_param(&q, "from", i64::MIN)?;
    let to = time_param(&q, "to", i64::MAX)?;
    let threshold = match q.get("threshold") {
        None => ctx.fuel_threshold,
        Some(s) => s
            .parse::<f64>()
            .ok()
            .filter(|t| t.is_finite() && *t > 0.0)
            .ok_or_else(|| {
                bad_request(format!(
                    "threshold={s:?}: expected a positive number, in the level's unit"
                ))
            })?,
    };
    let readings = ctx
        .reader
        .fuel_points(imei.clone(), from, to)
        .await
        .map_err(internal)?;
    let (io_id, unit, points) = fuel::series(readings);
    let events = fuel::detect(&points, threshold);
    let name = io_id
        .and_then(|id| io_catalog::lookup(id, ctx.model.as_deref()))
        .map(|i| i.name);
    let levels = points
        .iter()
        .map(|p| FuelLevel {
            timestamp_ms: p.timestamp_ms,
            value: p.level,
            stationary: p.stationary,
        })
        .collect();
    Ok(Json(FuelSeries {
        imei,
        io_id,
        name: name.map(Into::into),
        unit,
        threshold,
        levels,
        events,
    })
    .into_response())
}

/// Queue a Codec 12 or 14 command for a device (sent when it is connected and its data acked).
#[utoipa::path(post, path = "/api/devices/{imei}/commands", params(("imei" = String, Path, pattern = "^[0-9]{1,32}$", description = "The device's IMEI (up to 32 digits)")),
    request_body = CommandRequest,
    responses(
    (status = 201, description = "Queued", body = openapi::Command),
    openapi::BodyRejection,
    (status = 415, description = "The body is not declared as `application/json` (`unsupported_media_type`)", body = openapi::ErrorBody),
    (status = 400, description = "A malformed parameter (`bad_request`)", body = openapi::ErrorBody),
    (status = 401, description = "No or a wrong bearer token (`unauthorized`)", body = openapi::ErrorBody),
    (status = 404, description = "No such device (`unknown_device`)", body = openapi::ErrorBody),
    (status = 500, description = "A database failure (`internal`)", body = openapi::ErrorBody),
))]
async fn queue_command(
    State(ctx): State<Arc<Ctx>>,
    UrlPath(imei): UrlPath<String>,
    body: Bytes,
) -> ApiResult {
    let req: CommandRequest = serde_json::from_slice(&body).map_err(|e| {
        if e.is_data() {
            bad_request(
                "give exactly one of \"text\" (non-empty) and \"hex\", and optionally \"codec\" (\"12\" or \"14\"), nothing else",
            )
        } else {
            bad_request(format!(
                "the body is not JSON ({e}): send {{\"text\":\"getinfo\"}} or {{\"hex\":\"0102\"}}, with \"codec\":\"12\" or \"14\""
            ))
        }
    })?;
    let (text, hex, codec) = match req {
        CommandRequest::Text(TextCommand { text, codec }) => (Some(text), None, codec),
        CommandRequest::Hex(HexCommand { hex, codec }) => (None, Some(hex), codec),
    };
    let codec = match codec.unwrap_or(Value::Null) {
        Value::Null => "12",
        Value::String(s) if s == "12" => "12",
        Value::String(s) if s == "14" => "14",
        Value::Number(n) if n.as_u64() == Some(12) => "12",
        Value::Number(n) if n.as_u64() == Some(14) => "14",
        other => {
            return Err(bad_request(format!(
                "codec {other}: commands go out in Codec \"12\" or \"14\""
            )))
        }
    };
    let (text, payload) = match (text, hex) {
        (Some(t), _) if t.chars().count() > MAX_TEXT => {
            return Err(bad_request(format!(
                "text: {} characters; at most {MAX_TEXT}",
                t.chars().count()
            )))
        }
        (_, Some(h)) if h.chars().count() > MAX_HEX => {
            return Err(bad_request(format!(
                "hex: {} characters; at most {MAX_HEX}",
                h.chars().count()
            )))
        }
        (Some(t), None) if !t.is_empty() => {
            let payload = t.as_bytes().to_vec();
            (Some(t), payload)
        }
        (None, Some(h)) => {
            let bytes = fleetview::hex::decode(&h).map_err(|e| bad_request(format!("hex: {e}")))?;
            if bytes.is_empty() {
                return Err(bad_request("hex: the payload is empty"));
            }
            (None, bytes)
        }
        _ => {
            return Err(bad_request(
                "give exactly one of \"text\" (non-empty) and \"hex\"",
            ))
        }
    };
    if payload.len() > MAX_COMMAND {
        return Err(bad_request(format!(
            "the command is {} bytes; at most {MAX_COMMAND} are sent",
            payload.len()
        )));
    }
    let imei = known_device(&ctx, &imei).await?;
    if codec == "14" && Imei::new(&imei).and_then(|i| i.to_bcd().ok()).is_none() {
        return Err(bad_request(format!(
            "Codec 14 addresses a 15-digit IMEI; {imei} has {} digits",
            imei.len()
        )));
    }
    let id = ctx
        .store
        .queue(&imei, codec, text, payload)
        .await
        .map_err(internal)?;
    tracing::info!(imei = %imei, command = id, codec, "command queued");
    // Read back before waking the connection: the answer describes the command as queued.
    let v = ctx
        .reader
        .command(id)
        .await
        .map_err(internal)?
        .unwrap_or_else(|| super::query::Command {
            id,
            imei: imei.clone(),
            codec: codec.into(),
            status: "queued".into(),
            ..super::query::Command::default()
        });
    ctx.hub.publish("command", &v);
    ctx.hub.wake(&imei);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

fn command_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| bad_request(format!("command id {id:?}: expected a number")))
}

fn unknown_command(id: i64) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        "unknown_command",
        format!("no command {id}"),
    )
}

/// A command and its answer.
#[utoipa::path(get, path = "/api/commands/{id}", params(("id" = i64, Path, description = "The command's id")), responses(
    (status = 200, description = "The command", body = openapi::Command),
    (status = 400, description = "A malformed id (`bad_request`)", body = openapi::ErrorBody),
    (status = 401, description = "No or a wrong bearer token (`unauthorized`)", body = openapi::ErrorBody),
    (status = 404, description = "No such command (`unknown_command`)", body = openapi::ErrorBody),
))]
async fn command(State(ctx): State<Arc<Ctx>>, UrlPath(id): UrlPath<String>) -> ApiResult {
    let id = command_id(&id)?;
    match ctx.reader.command(id).await.map_err(internal)? {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(unknown_command(id)),
    }
}

/// `POST /api/commands/{id}/retry`: queue an `unanswered` (or `failed`) command again. Such a
/// command may have run on the device already, so it is never re-sent without this.
#[utoipa::path(post, path = "/api/commands/{id}/retry", params(("id" = i64, Path, description = "The command's id")),
    request_body(content = RetryRequest, description = "Nothing is read from it: `{}`, or no body (still declared as `application/json`)"),
    responses(
    (status = 200, description = "Queued again", body = openapi::Command),
    openapi::BodyRejection,
    (status = 415, description = "The body is not declared as `application/json` (`unsupported_media_type`)", body = openapi::ErrorBody),
    (status = 400, description = "A malformed id (`bad_request`)", body = openapi::ErrorBody),
    (status = 401, description = "No or a wrong bearer token (`unauthorized`)", body = openapi::ErrorBody),
    (status = 404, description = "No such command (`unknown_command`)", body = openapi::ErrorBody),
    (status = 409, description = "Not unanswered or failed (`not_retryable`)", body = openapi::ErrorBody),
))]
async fn retry_command(
    State(ctx): State<Arc<Ctx>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> ApiResult {
    if !body.is_empty() {
        serde_json::from_slice::<RetryRequest>(&body).map_err(|e| {
            bad_request(format!(
                "the body is not a JSON object ({e}): send {{}} or nothing"
            ))
        })?;
    }
    let id = command_id(&id)?;
    let Some(before) = ctx.reader.command(id).await.map_err(internal)? else {
        return Err(unknown_command(id));
    };
    let Some(imei) = ctx.store.retry(id).await.map_err(internal)? else {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "not_retryable",
            format!(
                "command {id} is {}: only an unanswered or failed command can be queued again",
                before.status
            ),
        ));
    };
    tracing::info!(imei = %imei, command = id, "command queued again (retry)");
    let v = ctx
        .reader
        .command(id)
        .await
        .map_err(internal)?
        .unwrap_or(before);
    ctx.hub.publish("command", &v);
    ctx.hub.wake(&imei);
    Ok(Json(v).into_response())
}

/// Live events until the client leaves or the server stops.
#[utoipa::path(get, path = "/api/live", responses(
    (status = 200, description = "Server-Sent Events: `records`, `device`, `fuel`, `command` (core/docs/http-api.md)", content_type = "text/event-stream", body = String),
    (status = 401, description = "No or a wrong bearer token (`unauthorized`)", body = openapi::ErrorBody),
))]
async fn live(State(ctx): State<Arc<Ctx>>) -> impl IntoResponse {
    let rx = ctx.hub.subscribe();
    if let Some(cluster) = &ctx.cluster {
        // Before the answer: the other nodes relay their events from now on.
        cluster.set_watching(true).await;
    }
    let shutdown = ctx.shutdown.clone();
    let stream = futures_util::stream::unfold(
        (rx, shutdown),
        |(mut rx, mut shutdown)| async move {
            let event = tokio::select! {
                r = rx.recv() => match r {
                    Ok(live) => SseEvent::default().event(live.event).data(&live.data),
                    // A subscriber too slow for the flow: say so (the UI re-fetches on reconnect).
                    Err(RecvError::Lagged(n)) => SseEvent::default().comment(format!("lagged: {n} events dropped")),
                    Err(RecvError::Closed) => return None,
                },
                _ = shutdown.wait_for(|&s| s) => return None,
            };
            Some((Ok::<_, Infallible>(event), (rx, shutdown)))
        },
    );
    Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("ping"),
    )
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", responses(
    (status = 200, description = "The OpenAPI 3 document of every route", body = Object),
    (status = 401, description = "No or a wrong bearer token (`unauthorized`)", body = openapi::ErrorBody),
))]
async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::json(),
    )
        .into_response()
}

/// Prometheus metrics (text exposition format), behind the token when one is set.
#[utoipa::path(get, path = "/metrics", responses(
    (status = 200, description = "Metrics, names prefixed `fleetview_`", content_type = "text/plain; version=0.0.4", body = String),
    (status = 401, description = "No or a wrong bearer token (`unauthorized`)", body = openapi::ErrorBody),
))]
async fn metrics(State(ctx): State<Arc<Ctx>>) -> Response {
    let text = super::metrics::render(&ctx).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// The web UI: files of `--web DIR`, `index.html` for `/` and for paths without an extension
/// (the app's own routes). Without a built UI, a page saying how to build it.
async fn static_file(State(ctx): State<Arc<Ctx>>, method: Method, uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.starts_with("api/") || path == "api" {
        return ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no API route {method} /{path}"),
        )
        .into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let Some(dir) = &ctx.web else {
        return if path.is_empty() || path == "index.html" {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], NO_UI).into_response()
        } else {
            StatusCode::NOT_FOUND.into_response()
        };
    };
    let rel = if path.is_empty() { "index.html" } else { path };
    if !Path::new(rel)
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut file = dir.join(rel);
    if file.is_dir() {
        file = file.join("index.html");
    }
    let bytes = match tokio::fs::read(&file).await {
        Ok(b) => b,
        Err(_) if Path::new(rel).extension().is_none() => {
            match tokio::fs::read(dir.join("index.html")).await {
                Ok(b) => {
                    file = PathBuf::from("index.html");
                    b
                }
                Err(_) => return StatusCode::NOT_FOUND.into_response(),
            }
        }
        Err(_) => return StatusCode::NOT_FOUND.into_response(),
    };
    let mut resp = Response::new(Body::from(bytes));
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&file)),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

const NO_UI: &str = "<!doctype html><meta charset=utf-8><title>Fleetview</title>
<h1>Fleetview server</h1>
<p>The web UI is not built. Build it with <code>npm --prefix web run build</code> (or start with <code>make run</code>),
or point <code>--web DIR</code> at a built copy.</p>
<p>The API works: <a href=\"api/devices\">api/devices</a>, <code>api/devices/{imei}/positions</code>,
<code>api/devices/{imei}/fuel</code>, <a href=\"api/live\">api/live</a> (Server-Sent Events).</p>";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_milliseconds_or_iso_8601() {
        assert_eq!(parse_time("1560166592000"), Some(1_560_166_592_000));
        assert_eq!(
            parse_time("2019-06-10T11:36:32.000Z"),
            Some(1_560_166_592_000)
        );
        assert_eq!(parse_time("2019-06-10T11:36:32Z"), Some(1_560_166_592_000));
        assert_eq!(
            parse_time("2019-06-10T11:36:32.5Z"),
            Some(1_560_166_592_500)
        );
        assert_eq!(parse_time("2019-06-10"), Some(1_560_124_800_000));
        assert_eq!(parse_time("1970-01-01T00:00"), Some(0));
        assert_eq!(parse_time("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        for bad in [
            "",
            "yesterday",
            "2019-13-01",
            "2019-06-10T25:00",
            "2019-06-10T11:36:32.x",
            "2019-06",
            "+5",
            "12345-01-01",
            "2019-6-1",
            "2019-06-10T1:2",
            "2019-06-10T11:36.5",
            "1234567890123456789",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn iso_round_trip_with_core() {
        for ms in [0u64, 951_782_400_123, 1_560_166_592_000, 4_102_444_799_999] {
            assert_eq!(parse_time(&fleetview::time::iso8601(ms)), Some(ms as i64));
        }
    }
}
