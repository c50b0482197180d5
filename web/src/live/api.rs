//! Types and calls of the HTTP API (core/docs/http-api.md). Deserialisation is tolerant: unknown
//! fields are ignored and optional ones default, so a server that adds fields never breaks the
//! view.

use fleetview::api::{CommandJson, DeviceEvent, DeviceJson, PositionJson, Positions};
use fleetview::json::MessageJson;
use serde::de::IgnoredAny;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, RequestInit, Response};

/// A stored record: core's API shape, read without its IO elements.
pub type Position = PositionJson<IgnoredAny>;

/// A device as the view keeps it: what `GET /api/devices` (core's `DeviceJson`) or a live
/// `device` event (core's `DeviceEvent`) said, `None` for what neither said yet.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Device {
    pub imei: String,
    pub connected: Option<bool>,
    pub last_seen_ms: Option<u64>,
    pub records: Option<u64>,
    pub last_position: Option<Position>,
}

impl From<DeviceJson<IgnoredAny>> for Device {
    fn from(d: DeviceJson<IgnoredAny>) -> Self {
        Self {
            imei: d.imei,
            connected: Some(d.connected),
            last_seen_ms: u64::try_from(d.last_seen_ms).ok(),
            records: u64::try_from(d.records).ok(),
            last_position: d.last_position,
        }
    }
}

impl From<DeviceEvent> for Device {
    fn from(d: DeviceEvent) -> Self {
        Self {
            imei: d.imei,
            connected: Some(d.connected),
            last_seen_ms: d.last_seen_ms.and_then(|t| u64::try_from(t).ok()),
            ..Self::default()
        }
    }
}

/// `GET /api/devices/{imei}/fuel`, and the fuel level samples and refuel/drain events in it:
/// core's API shapes.
pub use fleetview::api::{FuelEvent, FuelEventKind, FuelLevel, FuelSeries as Fuel};

/// `GET /api/commands/{id}`: core's API shape, the answer a JSON-model command message.
pub type Command = CommandJson<MessageJson>;

/// Why a call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiError {
    /// No Fleetview API at this address (network error, HTML 404 page, …).
    NoServer(String),
    /// 401: a token is needed.
    Unauthorized,
    /// The API answered with an error.
    Http(u16, String),
}

impl core::fmt::Display for ApiError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoServer(why) => write!(f, "no Fleetview server: {why}"),
            Self::Unauthorized => f.write_str("the server needs a token"),
            Self::Http(status, message) => write!(f, "HTTP {status}: {message}"),
        }
    }
}

/// Accept `[...]` or `{"devices": [...]}`.
pub fn parse_devices(v: serde_json::Value) -> Result<Vec<Device>, ApiError> {
    let list = match v {
        serde_json::Value::Object(mut m) if m.contains_key("devices") => {
            m.remove("devices").unwrap_or_default()
        }
        other => other,
    };
    serde_json::from_value::<Vec<DeviceJson<IgnoredAny>>>(list)
        .map(|list| list.into_iter().map(Device::from).collect())
        .map_err(|e| ApiError::NoServer(format!("unexpected /api/devices body: {e}")))
}

/// Accept `{"positions": [...]}` or `[...]`.
pub fn parse_positions(v: serde_json::Value) -> Vec<Position> {
    match v {
        serde_json::Value::Array(_) => serde_json::from_value(v).unwrap_or_default(),
        other => serde_json::from_value::<Positions<IgnoredAny>>(other)
            .map(|p| p.positions)
            .unwrap_or_default(),
    }
}

const TOKEN_KEY: &str = "fleetview-token";

/// The bearer token the user gave, kept for the browser session.
pub fn token() -> Option<String> {
    web_sys::window()?
        .session_storage()
        .ok()??
        .get_item(TOKEN_KEY)
        .ok()?
        .filter(|t| !t.is_empty())
}

/// Remember the token.
pub fn set_token(token: &str) {
    if let Some(s) = web_sys::window().and_then(|w| w.session_storage().ok().flatten()) {
        let _ = s.set_item(TOKEN_KEY, token);
    }
}

/// The SSE URL (EventSource cannot send headers, so the token goes in the query).
pub fn live_url() -> String {
    match token() {
        Some(t) => format!("api/live?access_token={}", js_sys::encode_uri_component(&t)),
        None => "api/live".into(),
    }
}

fn js_err(e: JsValue) -> ApiError {
    ApiError::NoServer(
        e.dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .unwrap_or_else(|| "network error".into()),
    )
}

/// A request to the API; the JSON body of a 2xx answer.
pub async fn call(
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<serde_json::Value, ApiError> {
    let init = RequestInit::new();
    init.set_method(method);
    if let Some(b) = body {
        init.set_body(&JsValue::from_str(&b.to_string()));
    }
    let request = Request::new_with_str_and_init(path, &init).map_err(js_err)?;
    let headers = request.headers();
    let _ = headers.set("Accept", "application/json");
    // The server refuses state-changing requests that are not declared as JSON (a cross-site
    // form can only post text/plain and the like), with or without a body.
    if method != "GET" {
        let _ = headers.set("Content-Type", "application/json");
    }
    if let Some(t) = token() {
        let _ = headers.set("Authorization", &format!("Bearer {t}"));
    }
    let window = web_sys::window().ok_or_else(|| ApiError::NoServer("no window".into()))?;
    let response: Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(js_err)?
        .unchecked_into();
    let status = response.status();
    let text = JsFuture::from(response.text().map_err(js_err)?)
        .await
        .map_err(js_err)?
        .as_string()
        .unwrap_or_default();
    let json: Option<serde_json::Value> = serde_json::from_str(&text).ok();
    match (status, json) {
        (401, _) => Err(ApiError::Unauthorized),
        // No Content (a deletion).
        (204, _) => Ok(serde_json::Value::Null),
        (200..=299, Some(v)) => Ok(v),
        (200..=299, None) => Err(ApiError::NoServer(format!("{path} did not answer JSON"))),
        (_, Some(v)) => Err(ApiError::Http(
            status,
            v["error"]["message"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| v.to_string()),
        )),
        (_, None) => Err(ApiError::NoServer(format!(
            "{path} answered HTTP {status} without JSON"
        ))),
    }
}

/// `GET /api/devices`.
pub async fn devices() -> Result<Vec<Device>, ApiError> {
    parse_devices(call("GET", "api/devices", None).await?)
}

/// `GET /api/devices/{imei}/positions?limit=500`.
pub async fn positions(imei: &str) -> Result<Vec<Position>, ApiError> {
    let path = format!(
        "api/devices/{}/positions?limit=500",
        js_sys::encode_uri_component(imei)
    );
    Ok(parse_positions(call("GET", &path, None).await?))
}

/// `GET /api/devices/{imei}/fuel`.
pub async fn fuel(imei: &str) -> Result<Fuel, ApiError> {
    let path = format!("api/devices/{}/fuel", js_sys::encode_uri_component(imei));
    serde_json::from_value(call("GET", &path, None).await?)
        .map_err(|e| ApiError::Http(200, format!("unexpected fuel body: {e}")))
}

/// `POST /api/devices/{imei}/commands`.
pub async fn send_command(imei: &str, text: &str, codec: &str) -> Result<Command, ApiError> {
    let path = format!(
        "api/devices/{}/commands",
        js_sys::encode_uri_component(imei)
    );
    let body = serde_json::json!({"text": text, "codec": codec});
    serde_json::from_value(call("POST", &path, Some(&body)).await?)
        .map_err(|e| ApiError::Http(200, format!("unexpected command body: {e}")))
}

/// `GET /api/commands/{id}`.
pub async fn command(id: &str) -> Result<Command, ApiError> {
    let path = format!("api/commands/{}", js_sys::encode_uri_component(id));
    serde_json::from_value(call("GET", &path, None).await?)
        .map_err(|e| ApiError::Http(200, format!("unexpected command body: {e}")))
}

/// Reports: core's API shapes.
pub use fleetview::api::{EventJson, EventKind, Stop, Trip};

/// A geofence as the view draws it. Read by hand from `GET /api/geofences` (core's
/// `GeofenceJson`): its geometry is an internally tagged enum, whose derived deserializer
/// would bring serde's buffering machinery into the wasm for one list.
#[derive(Clone, Debug, PartialEq)]
pub struct Fence {
    pub id: i64,
    pub name: String,
    pub shape: FenceShape,
}

/// A geofence's shape, positions `[longitude, latitude]` as in GeoJSON.
#[derive(Clone, Debug, PartialEq)]
pub enum FenceShape {
    Circle { center: [f64; 2], radius_m: f64 },
    Polygon(Vec<Vec<[f64; 2]>>),
}

/// A geofence of the list, `None` for a shape this view does not know.
pub fn parse_fence(v: &serde_json::Value) -> Option<Fence> {
    let g = &v["geometry"];
    let pos = |p: &serde_json::Value| Some([p[0].as_f64()?, p[1].as_f64()?]);
    let shape = match g["type"].as_str()? {
        "Point" => FenceShape::Circle {
            center: pos(&g["coordinates"])?,
            radius_m: g["radius_m"].as_f64()?,
        },
        "Polygon" => FenceShape::Polygon(
            g["coordinates"]
                .as_array()?
                .iter()
                .map(|ring| ring.as_array()?.iter().map(pos).collect())
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    };
    Some(Fence {
        id: v["id"].as_i64()?,
        name: v["name"].as_str()?.to_string(),
        shape,
    })
}

/// `?from=&to=` of a device's route.
fn ranged(imei: &str, what: &str, from: i64, to: i64) -> String {
    format!(
        "api/devices/{}/{what}?from={from}&to={to}",
        js_sys::encode_uri_component(imei)
    )
}

fn parsed<T: serde::de::DeserializeOwned>(v: serde_json::Value, what: &str) -> Result<T, ApiError> {
    serde_json::from_value(v)
        .map_err(|e| ApiError::Http(200, format!("unexpected {what} body: {e}")))
}

/// `GET /api/devices/{imei}/trips?from=&to=`.
pub async fn trips(imei: &str, from: i64, to: i64) -> Result<Vec<Trip>, ApiError> {
    parsed(
        call("GET", &ranged(imei, "trips", from, to), None).await?,
        "trips",
    )
}

/// `GET /api/devices/{imei}/stops?from=&to=`.
pub async fn stops(imei: &str, from: i64, to: i64) -> Result<Vec<Stop>, ApiError> {
    parsed(
        call("GET", &ranged(imei, "stops", from, to), None).await?,
        "stops",
    )
}

/// `GET /api/devices/{imei}/events?from=&to=`.
pub async fn events(imei: &str, from: i64, to: i64) -> Result<Vec<EventJson>, ApiError> {
    parsed(
        call("GET", &ranged(imei, "events", from, to), None).await?,
        "events",
    )
}

/// `GET /api/devices/{imei}/positions?from=&to=&limit=100000`: a day's track.
pub async fn positions_between(imei: &str, from: i64, to: i64) -> Result<Vec<Position>, ApiError> {
    let path = ranged(imei, "positions", from, to) + "&limit=100000";
    Ok(parse_positions(call("GET", &path, None).await?))
}

/// `GET /api/geofences`.
pub async fn geofences() -> Result<Vec<Fence>, ApiError> {
    let v = call("GET", "api/geofences", None).await?;
    Ok(v.as_array()
        .map(|list| list.iter().filter_map(parse_fence).collect())
        .unwrap_or_default())
}

/// `POST /api/geofences`.
pub async fn create_geofence(name: &str, geometry: serde_json::Value) -> Result<(), ApiError> {
    let body = serde_json::json!({"name": name, "geometry": geometry});
    call("POST", "api/geofences", Some(&body)).await.map(drop)
}

/// `DELETE /api/geofences/{id}`.
pub async fn delete_geofence(id: i64) -> Result<(), ApiError> {
    call("DELETE", &format!("api/geofences/{id}"), None)
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_in_either_shape() {
        let body = serde_json::json!([{"imei": "1", "last_position": {"timestamp_ms": 5, "latitude": 1.0,
            "longitude": 2.0, "satellites": 7, "valid": true, "io": [], "extra": 1}}]);
        let d = parse_devices(body.clone()).unwrap();
        assert_eq!(d[0].last_position.as_ref().unwrap().record.latitude, 1.0);
        assert_eq!(
            parse_devices(serde_json::json!({"devices": body})).unwrap(),
            d
        );
        assert!(parse_devices(serde_json::json!("html")).is_err());
    }

    #[test]
    fn geofences_read_by_hand() {
        let v = serde_json::json!([
            {"id":1,"name":"Depot","geometry":{"type":"Point","coordinates":[25.0,54.0],"radius_m":50.0},"created_ms":1},
            {"id":2,"name":"Yard","geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}},
            {"id":3,"name":"Line","geometry":{"type":"LineString","coordinates":[]}}
        ]);
        let list: Vec<Fence> = v
            .as_array()
            .unwrap()
            .iter()
            .filter_map(parse_fence)
            .collect();
        assert_eq!(list.len(), 2);
        assert_eq!(
            list[0].shape,
            FenceShape::Circle {
                center: [25.0, 54.0],
                radius_m: 50.0
            }
        );
        assert!(matches!(&list[1].shape, FenceShape::Polygon(r) if r[0].len() == 4));
    }

    #[test]
    fn a_position_without_valid_is_not_plotted() {
        let p: Position = serde_json::from_value(
            serde_json::json!({"latitude": 1.0, "longitude": 1.0, "satellites": 5}),
        )
        .unwrap();
        assert!(!p.record.valid);
    }
}
