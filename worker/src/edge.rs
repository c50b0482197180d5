//! The Workers runtime side: the fetch handler, D1 and the secret. Everything decided here is
//! decided by the plain modules (`route`, `auth`, `ingest`, `input`, `geojson`); this module
//! reads the request, talks to D1 and writes the response.

use wasm_bindgen::JsValue;
use worker::{console_error, event, Context, D1Database, Date, Env, Request, Response, Result};

use futures_util::StreamExt as _;

use crate::auth::{Protection, ALLOW_UNAUTHENTICATED, UNAUTHENTICATED_WARNING};
use crate::bounds::{body_too_large, decode_bounded, MAX_DECODE_BODY, MAX_UDP_BODY};
use crate::geojson::{feature_collection, PositionRow};
use crate::ingest::{ingest, Ingest, Rejected};
use crate::input::{decode_body, DecodeQuery, Positions};
use crate::problem::Problem;
use crate::route::{allowed_methods, route, Route};

/// The D1 binding (wrangler.toml `[[d1_databases]] binding = "DB"`).
const DB: &str = "DB";
/// The bearer token secret (`wrangler secret put RELAY_TOKEN`); without it (and without
/// [`ALLOW_UNAUTHENTICATED`]) `/udp` and `/devices` are closed.
const TOKEN: &str = "RELAY_TOKEN";

/// Whether this IMEI may send: the allowlist is empty, or lists it. Evaluated inside each insert
/// too, so the check and the write are one transaction.
const ALLOWED: &str = "(NOT EXISTS (SELECT 1 FROM allowed_imeis) OR EXISTS (SELECT 1 FROM allowed_imeis WHERE imei = ?1))";

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    let method = req.method().to_string();
    let answer = match route(&method, &path) {
        Ok(r) => handle(r, req, &env).await,
        Err(p) if p.status == 405 => problem_with(&p, Some(("Allow", allowed_methods(&path)))),
        Err(p) => problem(&p),
    };
    // A runtime failure (D1 unreachable, a body that cannot be read) is a 500 with the same JSON
    // shape, never an uncaught exception: the relay logs it and the device retransmits.
    answer.or_else(|e| {
        console_error!("{method} {path}: {e}");
        problem(&Problem::new(500, "internal", e.to_string()))
    })
}

async fn handle(route: Route, mut req: Request, env: &Env) -> Result<Response> {
    match route {
        Route::Health => health(env).await,
        Route::Decode => {
            let query = match DecodeQuery::parse(req.url()?.query().unwrap_or("")) {
                Ok(q) => q,
                Err(p) => return problem(&p),
            };
            let content_type = req.headers().get("Content-Type")?;
            let body = match read_body(&mut req, MAX_DECODE_BODY).await? {
                Some(b) => b,
                None => return problem(&body_too_large("POST /decode", MAX_DECODE_BODY)),
            };
            decode(&query, content_type.as_deref(), &body)
        }
        Route::Udp => {
            let open = match authorize(&req, env) {
                Ok(open) => open,
                Err(p) => return problem(&p),
            };
            let body = match read_body(&mut req, MAX_UDP_BODY).await? {
                Some(b) => b,
                None => return problem(&body_too_large("POST /udp", MAX_UDP_BODY)),
            };
            let answer = match ingest(&body) {
                Ok(plan) => store(env, &plan).await,
                Err(Rejected(json)) => json_response(&json, 400),
            };
            warn_if(open, answer)
        }
        Route::Positions { imei } => {
            let open = match authorize(&req, env) {
                Ok(open) => open,
                Err(p) => return problem(&p),
            };
            let answer = match Positions::parse(req.url()?.query().unwrap_or("")) {
                Ok(q) => positions(env, imei.as_str(), &q).await,
                Err(p) => problem(&p),
            };
            warn_if(open, answer)
        }
    }
}

/// Whether the request may use a protected route; `Ok(true)` when it passes only because the
/// relay runs without authentication (logged once per isolate, flagged on the answer).
fn authorize(req: &Request, env: &Env) -> core::result::Result<bool, Problem> {
    use core::sync::atomic::{AtomicBool, Ordering};
    static WARNED: AtomicBool = AtomicBool::new(false);

    let token = env.secret(TOKEN).ok().map(|s| s.to_string());
    // A string var, or a TOML boolean (`= true`): both read as text.
    let opt_out = js_sys::Reflect::get(env, &JsValue::from_str(ALLOW_UNAUTHENTICATED))
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
        .map(|v| {
            v.as_string()
                .or_else(|| v.as_bool().map(|b| b.to_string()))
                .unwrap_or_else(|| format!("{v:?}"))
        });
    let protection = Protection::new(token.as_deref(), opt_out.as_deref());
    let header = req.headers().get("Authorization").ok().flatten();
    protection.check(header.as_deref())?;
    let open = protection == Protection::Open;
    if open && !WARNED.swap(true, Ordering::Relaxed) {
        worker::console_warn!("{}", UNAUTHENTICATED_WARNING.1);
    }
    Ok(open)
}

fn warn_if(open: bool, answer: Result<Response>) -> Result<Response> {
    let mut response = answer?;
    if open {
        let (name, value) = UNAUTHENTICATED_WARNING;
        response.headers_mut().set(name, value)?;
    }
    Ok(response)
}

/// The request body, read as a stream and abandoned once it passes `cap` bytes (`None`). A
/// `Content-Length` over the cap is refused before reading anything.
async fn read_body(req: &mut Request, cap: usize) -> Result<Option<Vec<u8>>> {
    let declared = req
        .headers()
        .get("Content-Length")?
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap as u64) {
        return Ok(None);
    }
    let mut body = Vec::new();
    let Ok(mut stream) = req.stream() else {
        // No body at all.
        return Ok(Some(body));
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// `GET /health`: 200 when D1 answers, 503 when it does not.
async fn health(env: &Env) -> Result<Response> {
    let db = match env.d1(DB).map(|db| db.prepare("SELECT 1 AS one")) {
        Ok(stmt) => stmt.first::<serde_json::Value>(None).await.map(|_| ()),
        Err(e) => Err(e),
    };
    let (status, db_state) = match &db {
        Ok(()) => (200, String::from("ok")),
        Err(e) => (503, e.to_string()),
    };
    let body = serde_json::json!({
        "status": if status == 200 { "ok" } else { "degraded" },
        "service": "fleetview-worker",
        "version": env!("CARGO_PKG_VERSION"),
        "db": db_state,
    });
    json_response(&body, status)
}

/// `POST /decode`: the JSON model of every packet (one object, or an array when there are
/// several, as `fleetview decode` prints them); `400` when any packet fails, with the error item.
fn decode(query: &DecodeQuery, content_type: Option<&str>, body: &[u8]) -> Result<Response> {
    use fleetview::json::{ErrorJson, ItemJson, JsonOptions};

    let bytes = match decode_body(content_type, body) {
        Ok(b) => b,
        Err(e) => return json_response(&ErrorJson::from(&e), 400),
    };
    let opts = if query.lenient {
        fleetview::DecodeOptions::lenient()
    } else {
        fleetview::DecodeOptions::default()
    };
    let json_opts = JsonOptions {
        model: query.model.clone(),
    };
    let results = match decode_bounded(&bytes, &opts) {
        Ok(r) => r,
        Err(p) => return problem(&p),
    };
    let mut failed = false;
    let mut items: Vec<ItemJson> = results
        .iter()
        .map(|r| {
            failed |= r.is_err();
            ItemJson::new(r, &json_opts)
        })
        .collect();
    let status = if failed { 400 } else { 200 };
    if items.len() == 1 {
        let item = items.remove(0);
        json_response(&item, status)
    } else {
        json_response(&items, status)
    }
}

/// Store the rows of one datagram in one D1 batch (a transaction), then ack. The batch opens
/// with the allowlist check and every insert repeats it, so a device that is not allowed writes
/// nothing even if the allowlist changes between the two.
async fn store(env: &Env, plan: &Ingest) -> Result<Response> {
    let db = env.d1(DB)?;
    let imei = JsValue::from_str(&plan.imei);
    let mut batch = Vec::with_capacity(plan.rows.len() + 1);
    batch.push(
        db.prepare(format!("SELECT {ALLOWED} AS allowed"))
            .bind(core::slice::from_ref(&imei))?,
    );
    let now = JsValue::from_f64(Date::now().as_millis() as f64);
    for row in &plan.rows {
        batch.push(insert(&db, &imei, &now, row)?);
    }
    let results = db.batch(batch).await?;
    #[derive(serde::Deserialize)]
    struct Allowed {
        allowed: u8,
    }
    let allowed = results
        .first()
        .map(|r| r.results::<Allowed>())
        .transpose()?
        .and_then(|rows| rows.first().map(|a| a.allowed == 1))
        .unwrap_or(false);
    if !allowed {
        return problem(&Problem::new(
            403,
            "imei_not_allowed",
            format!(
                "IMEI {} is not in the allowlist (table allowed_imeis): no records stored, no ack",
                plan.imei
            ),
        ));
    }
    Ok(Response::builder()
        .with_header("Content-Type", "application/octet-stream")?
        .fixed(plan.ack.to_vec()))
}

fn insert(
    db: &D1Database,
    imei: &JsValue,
    now: &JsValue,
    r: &crate::ingest::RecordRow,
) -> Result<worker::D1PreparedStatement> {
    // D1 binds numbers as JS doubles: exact up to 2^53, which covers ms timestamps.
    let n = |v: f64| JsValue::from_f64(v);
    db.prepare(format!(
        "INSERT OR IGNORE INTO records (imei, record_key, timestamp_ms, codec, priority, longitude, latitude, \
         altitude, angle, satellites, speed, valid, event_id, io, data, received_ms) \
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16 WHERE {ALLOWED}"
    ))
    .bind(&[
        imei.clone(),
        JsValue::from_str(&r.record_key),
        n(r.timestamp_ms as f64),
        JsValue::from_str(r.codec),
        n(r.priority.into()),
        n(r.longitude),
        n(r.latitude),
        n(r.altitude.into()),
        n(r.angle.into()),
        n(r.satellites.into()),
        n(r.speed.into()),
        n(if r.valid { 1.0 } else { 0.0 }),
        n(r.event_id.into()),
        JsValue::from_str(&r.io),
        JsValue::from_str(&r.data),
        now.clone(),
    ])
}

/// `GET /devices/{imei}/positions`: fixes strictly after `since`, oldest first.
async fn positions(env: &Env, imei: &str, q: &Positions) -> Result<Response> {
    let db = env.d1(DB)?;
    let since = q.since.map_or(-1.0, |s| s as f64);
    let rows = db
        .prepare(
            "SELECT timestamp_ms, longitude, latitude, altitude, angle, satellites, speed, priority, event_id, codec, io \
             FROM records WHERE imei = ?1 AND valid = 1 AND timestamp_ms > ?2 ORDER BY timestamp_ms LIMIT ?3",
        )
        .bind(&[
            JsValue::from_str(imei),
            JsValue::from_f64(since),
            JsValue::from_f64(q.limit.into()),
        ])?
        .all()
        .await?
        .results::<PositionRow>()?;
    let body = serde_json::to_string(&feature_collection(imei, rows))?;
    Ok(Response::builder()
        .with_header("Content-Type", "application/geo+json")?
        .fixed(body.into_bytes()))
}

fn problem(p: &Problem) -> Result<Response> {
    problem_with(p, None)
}

fn problem_with(p: &Problem, header: Option<(&str, &str)>) -> Result<Response> {
    let mut builder = Response::builder()
        .with_status(p.status)
        .with_header("Content-Type", "application/json")?;
    if let Some((name, value)) = header {
        builder = builder.with_header(name, value)?;
    }
    Ok(builder.fixed(p.to_json().into_bytes()))
}

fn json_response<T: serde::Serialize>(value: &T, status: u16) -> Result<Response> {
    Response::builder().with_status(status).from_json(value)
}
