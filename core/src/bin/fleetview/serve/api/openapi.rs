//! `GET /api/openapi.json`: the OpenAPI 3 document of every route, generated from the handlers'
//! `#[utoipa::path]` annotations (in `api.rs` and beside any other handler) and the types they
//! exchange (core's `fleetview::api` and `fleetview::json` shapes derive `utoipa::ToSchema` with
//! feature `openapi`, which `server` enables).
//!
//! A new route: annotate its handler with `#[utoipa::path(...)]` (method, path, params,
//! `responses(...)` with the body types) and add the handler to `paths(...)` below; a new type in
//! a body derives `utoipa::ToSchema`. `core/tests/server_openapi.rs` checks that every route the
//! router registers is in the document, and `make test-openapi` runs schemathesis against a
//! running server with it.

use serde::Serialize;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::Object;
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

/// A device as the API shows it (IO elements in the JSON model).
pub(crate) type Device = fleetview::api::DeviceJson<Vec<fleetview::json::IoJson>>;
/// `GET /api/devices/{imei}/positions`.
pub(crate) type PositionList = fleetview::api::Positions<Vec<fleetview::json::IoJson>>;
/// A command and its answer (the JSON model's command message).
pub(crate) type Command = fleetview::api::CommandJson<fleetview::json::MessageJson>;

/// An API error: `{"error":{"kind","message"}}` (kinds in core/docs/errors.md).
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    pub(crate) error: ErrorDetail,
}

/// The answers every route that takes a body shares, from the guard's body rules
/// (`api/guard.rs`): written once here, listed in each such route's `responses(...)`. The 415
/// answer stays beside each route, as its wording differs (a bodiless DELETE is fine).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only the document reads it.
pub(crate) enum BodyRejection {
    #[response(
        status = 403,
        description = "An `Origin` of another site (`cross_origin`)"
    )]
    CrossOrigin(ErrorBody),
    #[response(
        status = 408,
        description = "The body did not arrive in time (`body_timeout`)"
    )]
    BodyTimeout(ErrorBody),
    #[response(
        status = 413,
        description = "The body is over 64 KiB (`body_too_large`)"
    )]
    BodyTooLarge(ErrorBody),
}

/// What failed and why.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// Stable, snake_case (`bad_request`, `unknown_device`, `unauthorized`, …).
    pub(crate) kind: &'static str,
    /// What was wrong and what is expected.
    pub(crate) message: String,
}

/// The `from` and `to` query parameters of the time-ranged routes (read by `time_param`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // The handlers read the query themselves, with their own error messages.
pub(crate) struct TimeRange {
    /// From (inclusive): milliseconds since 1970, or ISO 8601 UTC (`2024-05-01T12:00:00Z`; a
    /// date alone is midnight).
    #[param(schema_with = time_schema)]
    from: Option<String>,
    /// To (inclusive), as `from`.
    #[param(schema_with = time_schema)]
    to: Option<String>,
}

/// `from`/`to`: [`super::TIME_PATTERN`].
pub(crate) fn time_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(super::TIME_PATTERN))
        .build()
}

/// A command's codec: `"12"` or `"14"`, as a string or a number.
pub(crate) fn codec_schema() -> Schema {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["12", "14"])),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .enum_values(Some([12, 14])),
        )
        .build()
        .into()
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "fleetview serve",
        description = "The HTTP API of fleetview serve: devices, their stored records, fuel, trips, stops, events, geofences, commands, live events, forwarders and metrics (core/docs/http-api.md).",
    ),
    paths(
        super::devices,
        super::positions,
        super::fuel_report,
        super::queue_command,
        super::command,
        super::retry_command,
        super::live,
        super::forwarders,
        super::metrics,
        super::openapi_json,
        super::reports::trips,
        super::reports::stops,
        super::reports::events,
        super::reports::geofences,
        super::reports::create_geofence,
        super::reports::delete_geofence,
    ),
    // Generic arguments are not collected from the bodies by themselves: listed here.
    components(schemas(fleetview::json::IoJson, fleetview::json::MessageJson, super::PositionsFormat, super::TextCommand, super::HexCommand)),
    modifiers(&Bearer),
    security(("bearer" = [])),
)]
pub(crate) struct Doc;

/// The bearer token (`--token-file`, `FLEETVIEW_TOKEN`, `--token`), required when set.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON (built once).
pub(crate) fn json() -> &'static str {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = Doc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").into();
        // utoipa tags each operation with its handler's module path: meaningless here.
        for item in doc.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                op.tags = None;
            }
        }
        doc.to_json()
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    })
}
