//! The read side of the database: the API's queries, on read-only connections of their own
//! (WAL lets them read while the writer commits), each run on a blocking thread.

use std::path::Path;
use std::sync::{Arc, Mutex};

use fleetview::json::IoJson;
use fleetview::{IoElement, IoValue};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde_json::{json, Map, Value};

use super::fuel;

/// Read-only connections for the API. Each query runs on a blocking thread.
#[derive(Clone)]
pub(crate) struct Reader {
    conns: Arc<Vec<Mutex<Connection>>>,
    /// One per connection: queries beyond them wait here rather than each holding a blocking
    /// thread (a burst of them, as when many devices seed their fuel state at once).
    permits: Arc<tokio::sync::Semaphore>,
}

/// Rows a query may return at most.
pub(crate) const MAX_LIMIT: i64 = 100_000;

impl Reader {
    pub(crate) fn open(path: &Path) -> Result<Self, String> {
        let conns = (0..3)
            .map(|_| {
                let c = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|e| format!("cannot open {} for reading: {e}", path.display()))?;
                c.busy_timeout(std::time::Duration::from_secs(5))
                    .map_err(|e| e.to_string())?;
                Ok(Mutex::new(c))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self {
            permits: Arc::new(tokio::sync::Semaphore::new(conns.len())),
            conns: Arc::new(conns),
        })
    }

    /// Run `f` on a free connection, on a blocking thread.
    pub(crate) async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| format!("database: {e}"))?;
        let conns = self.conns.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let guard = conns
                .iter()
                .find_map(|m| m.try_lock().ok())
                .unwrap_or_else(|| conns[0].lock().unwrap_or_else(|p| p.into_inner()));
            f(&guard).map_err(|e| format!("database: {e}"))
        })
        .await
        .map_err(|e| format!("database task: {e}"))?
    }
}

const RECORD_COLUMNS: &str = "r.id, r.timestamp_ms, r.priority, r.longitude, r.latitude, r.altitude, r.angle,
    r.satellites, r.speed, r.valid, r.event_id, r.generation_type, r.io, r.codec, r.transport, r.received_ms,
    r.fuel_id, r.fuel_level, r.fuel_unit";

/// A record row as the JSON model's record (core's RecordJson fields, same names) plus where
/// it came from: `id`, `codec`, `transport`, `received_ms` and `fuel`. IO elements are named
/// for `model` here, from the compact form the writer stores ([`io_value`]).
fn record_value(r: &rusqlite::Row<'_>, model: Option<&str>) -> rusqlite::Result<Value> {
    let ts: i64 = r.get(1)?;
    let io: String = r.get(12)?;
    let mut m = Map::new();
    m.insert("id".into(), json!(r.get::<_, i64>(0)?));
    m.insert("timestamp_ms".into(), json!(ts));
    m.insert("time".into(), json!(fleetview::time::iso8601(ts as u64)));
    m.insert("priority".into(), json!(r.get::<_, i64>(2)?));
    m.insert("longitude".into(), json!(r.get::<_, f64>(3)?));
    m.insert("latitude".into(), json!(r.get::<_, f64>(4)?));
    m.insert("altitude".into(), json!(r.get::<_, i64>(5)?));
    m.insert("angle".into(), json!(r.get::<_, i64>(6)?));
    m.insert("satellites".into(), json!(r.get::<_, i64>(7)?));
    m.insert("speed".into(), json!(r.get::<_, i64>(8)?));
    m.insert("valid".into(), json!(r.get::<_, bool>(9)?));
    m.insert("event_id".into(), json!(r.get::<_, i64>(10)?));
    m.insert(
        "generation_type".into(),
        json!(r.get::<_, Option<i64>>(11)?),
    );
    m.insert("io".into(), io_value(&io, model));
    m.insert("codec".into(), json!(r.get::<_, String>(13)?));
    m.insert("transport".into(), json!(r.get::<_, String>(14)?));
    m.insert("received_ms".into(), json!(r.get::<_, i64>(15)?));
    let fuel = match r.get::<_, Option<i64>>(16)? {
        Some(id) => {
            json!({"io_id": id, "value": r.get::<_, f64>(17)?, "unit": r.get::<_, Option<String>>(18)?})
        }
        None => Value::Null,
    };
    m.insert("fuel".into(), fuel);
    Ok(Value::Object(m))
}

/// The stored IO column as the JSON model's `io` array. The writer stores the compact form of
/// [`super::storage::io_json`]; rows written before it hold the full model (kept as is).
pub(crate) fn io_value(text: &str, model: Option<&str>) -> Value {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(text) else {
        return Value::Array(Vec::new());
    };
    let io = items
        .into_iter()
        .map(|item| match compact_element(&item) {
            Some(e) => serde_json::to_value(IoJson::new(&e, model)).unwrap_or(Value::Null),
            None => item,
        })
        .collect();
    Value::Array(io)
}

/// `[id,size,raw]` or `[id,size,"hex"]` back to the element; `None` for anything else.
fn compact_element(item: &Value) -> Option<IoElement> {
    let [id, size, v] = item.as_array()?.as_slice() else {
        return None;
    };
    let id = u16::try_from(id.as_u64()?).ok()?;
    let value = match (size.as_u64()?, v) {
        (_, Value::String(hex)) => IoValue::Bytes(fleetview::hex::decode(hex).ok()?),
        (1, v) => IoValue::U8(u8::try_from(v.as_u64()?).ok()?),
        (2, v) => IoValue::U16(u16::try_from(v.as_u64()?).ok()?),
        (4, v) => IoValue::U32(u32::try_from(v.as_u64()?).ok()?),
        (8, v) => IoValue::U64(v.as_u64()?),
        _ => return None,
    };
    Some(IoElement { id, value })
}

/// Every device with its record count and last position (the latest valid fix, else the latest
/// record). `connected` is filled in by the caller, which knows the live connections.
pub(crate) fn devices(
    c: &Connection,
    model: Option<&str>,
) -> rusqlite::Result<Vec<(String, Value)>> {
    let mut list = c.prepare_cached(
        "SELECT id, imei, first_seen_ms, last_seen_ms, transport, address, records FROM devices ORDER BY imei",
    )?;
    let mut last = c.prepare_cached(&format!(
        "SELECT {RECORD_COLUMNS} FROM records r WHERE r.device_id = ?1 ORDER BY r.valid DESC, r.timestamp_ms DESC LIMIT 1"
    ))?;
    let rows = list
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                json!({
                    "imei": r.get::<_, String>(1)?,
                    "first_seen_ms": r.get::<_, i64>(2)?,
                    "last_seen_ms": r.get::<_, i64>(3)?,
                    "transport": r.get::<_, Option<String>>(4)?,
                    "address": r.get::<_, Option<String>>(5)?,
                    "records": r.get::<_, i64>(6)?,
                }),
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, imei, mut v) in rows {
        let pos = last
            .query_row([id], |r| record_value(r, model))
            .optional()?;
        v["last_position"] = pos.unwrap_or(Value::Null);
        out.push((imei, v));
    }
    Ok(out)
}

/// Whether the device is known.
pub(crate) fn device_exists(c: &Connection, imei: &str) -> rusqlite::Result<bool> {
    c.prepare_cached("SELECT 1 FROM devices WHERE imei = ?1")?
        .query_row([imei], |_| Ok(()))
        .optional()
        .map(|o| o.is_some())
}

/// The most recent `limit` records of a device within `[from, to]`, in ascending time order.
pub(crate) fn positions(
    c: &Connection,
    imei: &str,
    from: i64,
    to: i64,
    limit: i64,
    model: Option<&str>,
) -> rusqlite::Result<Vec<Value>> {
    let mut q = c.prepare_cached(&format!(
        "SELECT {RECORD_COLUMNS} FROM records r JOIN devices d ON d.id = r.device_id
         WHERE d.imei = ?1 AND r.timestamp_ms BETWEEN ?2 AND ?3 ORDER BY r.timestamp_ms DESC, r.id DESC LIMIT ?4"
    ))?;
    let mut rows = q
        .query_map(params![imei, from, to, limit.clamp(0, MAX_LIMIT)], |r| {
            record_value(r, model)
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.reverse();
    Ok(rows)
}

/// Fuel readings of a device within `[from, to]`, ascending: (io id, unit, point).
pub(crate) fn fuel_points(
    c: &Connection,
    imei: &str,
    from: i64,
    to: i64,
) -> rusqlite::Result<Vec<(u16, Option<String>, fuel::Point)>> {
    let mut q = c.prepare_cached(
        "SELECT r.fuel_id, r.fuel_unit, r.timestamp_ms, r.fuel_level, r.speed, r.ignition, r.movement, r.latitude, r.longitude
         FROM records r JOIN devices d ON d.id = r.device_id
         WHERE d.imei = ?1 AND r.fuel_id IS NOT NULL AND r.timestamp_ms BETWEEN ?2 AND ?3
         ORDER BY r.timestamp_ms, r.id LIMIT ?4",
    )?;
    let rows = q.query_map(params![imei, from, to, MAX_LIMIT], |r| {
        Ok((
            r.get::<_, u16>(0)?,
            r.get::<_, Option<String>>(1)?,
            fuel::Point {
                timestamp_ms: r.get(2)?,
                level: r.get(3)?,
                stationary: fuel::stationary(r.get(4)?, r.get(5)?, r.get(6)?),
                latitude: r.get(7)?,
                longitude: r.get(8)?,
            },
        ))
    })?;
    rows.collect()
}

/// A command as the API shows it.
pub(crate) fn command(c: &Connection, id: i64) -> rusqlite::Result<Option<Value>> {
    c.prepare_cached(
        "SELECT c.id, d.imei, c.codec, c.text, c.payload, c.status, c.created_ms, c.sent_ms, c.answered_ms,
           c.response, c.error
         FROM commands c JOIN devices d ON d.id = c.device_id WHERE c.id = ?1",
    )?
    .query_row([id], |r| {
        let text: Option<String> = r.get(3)?;
        let payload: Vec<u8> = r.get(4)?;
        let response: Option<String> = r.get(9)?;
        Ok(json!({
            "id": r.get::<_, i64>(0)?,
            "imei": r.get::<_, String>(1)?,
            "codec": r.get::<_, String>(2)?,
            "hex": if text.is_some() { None } else { Some(fleetview::hex::encode(&payload)) },
            "text": text,
            "status": r.get::<_, String>(5)?,
            "created_ms": r.get::<_, i64>(6)?,
            "sent_ms": r.get::<_, Option<i64>>(7)?,
            "answered_ms": r.get::<_, Option<i64>>(8)?,
            "response": response.and_then(|s| serde_json::from_str::<Value>(&s).ok()),
            "error": r.get::<_, Option<String>>(10)?,
        }))
    })
    .optional()
}
