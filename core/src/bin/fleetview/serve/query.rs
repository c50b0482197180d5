//! The read side of the database, for the API and the live fuel state: the same queries on
//! either engine. The SQL is shared (`$N` parameters, numbered in order of first use, which
//! SQLite binds by position too); each engine runs it its own way (SQLite: read-only
//! connections on blocking threads, [`super::storage::sqlite::read`]; PostgreSQL: a pool,
//! [`super::storage::postgres::read`]) and rows become JSON here, through [`Cols`].

use fleetview::api::{CommandJson, DeviceJson, PositionJson};
use fleetview::json::{IoJson, NetworkJson, RecordJson};
use fleetview::{IoElement, IoValue};
use serde_json::Value;

use super::fuel;
use super::storage::outbox::{Cursor, Entry, ForwarderRow, RECORDS};
use super::storage::{postgres, sqlite, Error};

/// Rows a query may return at most.
pub(crate) const MAX_LIMIT: i64 = 100_000;

/// The readers of one engine.
#[derive(Clone)]
pub(crate) enum Reader {
    Sqlite(sqlite::read::Pool),
    Postgres(postgres::read::Pool),
}

/// A stored record as the API shows it (IO elements as the JSON the store holds).
pub(crate) type Position = PositionJson<Value>;
/// A device as the API shows it.
pub(crate) type Device = DeviceJson<Value>;
/// A command as the API shows it (the answer as the JSON the store holds).
pub(crate) type Command = CommandJson<Value>;

/// A fuel reading: (io id, unit, point).
pub(crate) type FuelReading = (u16, Option<String>, fuel::Point);

impl Reader {
    /// Every device with its record count and last position (the latest valid fix, else the
    /// latest record), ordered by IMEI. `connected` is what the database knows (PostgreSQL: a
    /// session on a node with a live lease); the caller adds this node's own connections.
    pub(crate) async fn devices(&self, model: Option<String>) -> Result<Vec<Device>, Error> {
        match self {
            Reader::Sqlite(p) => p.devices(model).await,
            Reader::Postgres(p) => p.devices(model).await,
        }
    }

    /// Whether the device has a row.
    pub(crate) async fn device_exists(&self, imei: String) -> Result<bool, Error> {
        match self {
            Reader::Sqlite(p) => p.device_exists(imei).await,
            Reader::Postgres(p) => p.device_exists(imei).await,
        }
    }

    /// The most recent `limit` records of a device within `[from, to]`, ascending.
    pub(crate) async fn positions(
        &self,
        imei: String,
        from: i64,
        to: i64,
        limit: i64,
        model: Option<String>,
    ) -> Result<Vec<Position>, Error> {
        let limit = limit.clamp(0, MAX_LIMIT);
        match self {
            Reader::Sqlite(p) => p.positions(imei, from, to, limit, model).await,
            Reader::Postgres(p) => p.positions(imei, from, to, limit, model).await,
        }
    }

    /// Fuel readings of a device within `[from, to]`, ascending.
    pub(crate) async fn fuel_points(
        &self,
        imei: String,
        from: i64,
        to: i64,
    ) -> Result<Vec<FuelReading>, Error> {
        match self {
            Reader::Sqlite(p) => p.fuel_points(imei, from, to).await,
            Reader::Postgres(p) => p.fuel_points(imei, from, to).await,
        }
    }

    /// Outbox entries after `after`, at most `limit`, each with what it delivers (records in
    /// the JSON model with `type` and `imei`, named for `model`; an event's JSON).
    /// (At most `limit` entries, and no more than `max_items` items but for a first entry
    /// that has more.)
    pub(crate) async fn outbox(
        &self,
        after: Cursor,
        limit: i64,
        max_items: usize,
        model: Option<String>,
    ) -> Result<Vec<Delivery>, Error> {
        match self {
            Reader::Sqlite(p) => p.outbox(after.id, limit, max_items, model).await,
            Reader::Postgres(p) => p.outbox(after, limit, max_items, model).await,
        }
    }

    /// Entries after `after`: how many, and the time the oldest was written.
    pub(crate) async fn outbox_lag(&self, after: Cursor) -> Result<(i64, Option<i64>), Error> {
        match self {
            Reader::Sqlite(p) => p.outbox_lag(after.id).await,
            Reader::Postgres(p) => p.outbox_lag(after).await,
        }
    }

    /// Every forwarder's row.
    pub(crate) async fn forwarders(&self) -> Result<Vec<ForwarderRow>, Error> {
        match self {
            Reader::Sqlite(p) => p.forwarders().await,
            Reader::Postgres(p) => p.forwarders().await,
        }
    }

    /// A command as the API shows it.
    pub(crate) async fn command(&self, id: i64) -> Result<Option<Command>, Error> {
        match self {
            Reader::Sqlite(p) => p.command(id).await,
            Reader::Postgres(p) => p.command(id).await,
        }
    }
}

/// A result row of either engine, read by column index. Integers are 64-bit on both (PostgreSQL
/// columns are `BIGINT`), `valid` a boolean.
pub(crate) trait Cols {
    type Err: Into<Error>;
    fn int(&self, i: usize) -> Result<i64, Self::Err>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Self::Err>;
    fn float(&self, i: usize) -> Result<f64, Self::Err>;
    fn opt_float(&self, i: usize) -> Result<Option<f64>, Self::Err>;
    fn text(&self, i: usize) -> Result<String, Self::Err>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, Self::Err>;
    fn boolean(&self, i: usize) -> Result<bool, Self::Err>;
    fn bytes(&self, i: usize) -> Result<Vec<u8>, Self::Err>;
}

/// The devices list; the last position is looked up per device with [`LAST_POSITION_SQL`].
pub(crate) const DEVICES_SQL: &str =
    "SELECT id, imei, first_seen_ms, last_seen_ms, transport, address, records FROM devices ORDER BY imei";
/// `$1`: device id.
pub(crate) const LAST_POSITION_SQL: &str = concat!(
    "SELECT r.id, r.timestamp_ms, r.priority, r.longitude, r.latitude, r.altitude, r.angle,
    r.satellites, r.speed, r.valid, r.event_id, r.generation_type, r.io, r.codec, r.transport, r.received_ms,
    r.fuel_id, r.fuel_level, r.fuel_unit",
    " FROM records r WHERE r.device_id = $1 ORDER BY r.valid DESC, r.timestamp_ms DESC LIMIT 1"
);
pub(crate) const DEVICE_EXISTS_SQL: &str = "SELECT 1 FROM devices WHERE imei = $1";
/// `$1` IMEI, `$2`..`$3` time range, `$4` limit; newest first.
pub(crate) const POSITIONS_SQL: &str = concat!(
    "SELECT r.id, r.timestamp_ms, r.priority, r.longitude, r.latitude, r.altitude, r.angle,
    r.satellites, r.speed, r.valid, r.event_id, r.generation_type, r.io, r.codec, r.transport, r.received_ms,
    r.fuel_id, r.fuel_level, r.fuel_unit",
    " FROM records r JOIN devices d ON d.id = r.device_id
     WHERE d.imei = $1 AND r.timestamp_ms BETWEEN $2 AND $3 ORDER BY r.timestamp_ms DESC, r.id DESC LIMIT $4"
);
/// `$1` IMEI, `$2`..`$3` time range, `$4` limit.
pub(crate) const FUEL_SQL: &str =
    "SELECT r.fuel_id, r.fuel_unit, r.timestamp_ms, r.fuel_level, r.speed, r.ignition, r.movement, r.latitude, r.longitude
     FROM records r JOIN devices d ON d.id = r.device_id
     WHERE d.imei = $1 AND r.fuel_id IS NOT NULL AND r.timestamp_ms BETWEEN $2 AND $3
     ORDER BY r.timestamp_ms, r.id LIMIT $4";
/// `$1`: command id.
pub(crate) const COMMAND_SQL: &str =
    "SELECT c.id, d.imei, c.codec, c.text, c.payload, c.status, c.created_ms, c.sent_ms, c.answered_ms,
       c.response, c.error
     FROM commands c JOIN devices d ON d.id = c.device_id WHERE c.id = $1";

/// A devices row (of [`DEVICES_SQL`]): id and the device, without `last_position` and
/// `connected`.
pub(crate) fn device_value<R: Cols>(r: &R) -> Result<(i64, Device), R::Err> {
    Ok((
        r.int(0)?,
        DeviceJson {
            imei: r.text(1)?,
            first_seen_ms: r.int(2)?,
            last_seen_ms: r.int(3)?,
            transport: r.opt_text(4)?,
            address: r.opt_text(5)?,
            records: r.int(6)?,
            connected: false,
            last_position: None,
        },
    ))
}

/// A record row as the API's stored record (core's `PositionJson`: the JSON model's record and
/// `id`, `codec`, `transport`, `received_ms` and `fuel`). IO elements are named for `model`
/// here, from the compact form the writer stores ([`io_value`]). The numeric columns hold what
/// the writer stored from the same types, so narrowing them cannot fail on rows it wrote.
pub(crate) fn record_value<R: Cols>(r: &R, model: Option<&str>) -> Result<Position, R::Err> {
    record_with(r, |io| io_value(io, model))
}

/// [`record_value`] with the IO elements (and the cell tower they name) made by `io` from the
/// stored column.
fn record_with<R: Cols, Io>(
    r: &R,
    io: impl FnOnce(&str) -> (Io, Option<NetworkJson>),
) -> Result<PositionJson<Io>, R::Err> {
    let ts = r.int(1)?;
    let fuel = match r.opt_int(16)? {
        Some(id) => Some(fleetview::api::FuelReading {
            io_id: narrow(id),
            value: r.float(17)?,
            unit: r.opt_text(18)?,
        }),
        None => None,
    };
    let (io, network) = io(&r.text(12)?);
    Ok(PositionJson {
        id: r.int(0)?,
        record: RecordJson {
            timestamp_ms: narrow(ts),
            time: fleetview::time::iso8601(narrow(ts)),
            priority: narrow(r.int(2)?),
            longitude: r.float(3)?,
            latitude: r.float(4)?,
            altitude: narrow(r.int(5)?),
            angle: narrow(r.int(6)?),
            satellites: narrow(r.int(7)?),
            speed: narrow(r.int(8)?),
            valid: r.boolean(9)?,
            event_id: narrow(r.int(10)?),
            generation_type: r.opt_int(11)?.map(narrow),
            io,
            network,
        },
        codec: r.text(13)?,
        transport: r.text(14)?,
        received_ms: r.int(15)?,
        fuel,
    })
}

/// A stored integer as the API type (0 for a value the writer cannot have stored).
fn narrow<T: TryFrom<i64> + Default>(v: i64) -> T {
    T::try_from(v).unwrap_or_default()
}

/// A fuel row (of [`FUEL_SQL`]).
pub(crate) fn fuel_reading<R: Cols>(r: &R) -> Result<FuelReading, R::Err> {
    let ignition = r.opt_int(5)?.and_then(|v| u8::try_from(v).ok());
    let movement = r.opt_int(6)?.and_then(|v| u8::try_from(v).ok());
    let speed = u16::try_from(r.int(4)?).unwrap_or(u16::MAX);
    Ok((
        u16::try_from(r.int(0)?).unwrap_or_default(),
        r.opt_text(1)?,
        fuel::Point {
            timestamp_ms: r.int(2)?,
            level: r.float(3)?,
            stationary: fuel::stationary(speed, ignition, movement),
            latitude: r.float(7)?,
            longitude: r.float(8)?,
        },
    ))
}

/// A command row (of [`COMMAND_SQL`]) as the API shows it.
pub(crate) fn command_value<R: Cols>(r: &R) -> Result<Command, R::Err> {
    let text = r.opt_text(3)?;
    let payload = r.bytes(4)?;
    let response = r.opt_text(9)?;
    Ok(CommandJson {
        id: r.int(0)?,
        imei: r.text(1)?,
        codec: r.text(2)?,
        hex: if text.is_some() {
            None
        } else {
            Some(fleetview::hex::encode(&payload))
        },
        text,
        status: r.text(5)?,
        created_ms: r.int(6)?,
        sent_ms: r.opt_int(7)?,
        answered_ms: r.opt_int(8)?,
        response: response.and_then(|s| serde_json::from_str::<Value>(&s).ok()),
        error: r.opt_text(10)?,
    })
}

/// The stored IO column as the JSON model's `io` array (composite values decoded), and the
/// record's serving cell: both from core's JSON model, as for a packet decoded live. The writer
/// stores the compact form of the storage's `io_json`; rows written before it hold the full
/// model (kept as is).
pub(crate) fn io_value(text: &str, model: Option<&str>) -> (Value, Option<NetworkJson>) {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(text) else {
        return (Value::Array(Vec::new()), None);
    };
    let mut elements = Vec::new();
    let io = items
        .into_iter()
        .map(|item| match compact_element(&item) {
            Some(e) => {
                let json = serde_json::to_value(IoJson::new(&e, model)).unwrap_or(Value::Null);
                elements.push(e);
                json
            }
            None => item,
        })
        .collect();
    (Value::Array(io), NetworkJson::from_io(&elements))
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

/// What one outbox entry delivers: its position, its device and its JSON objects (a record
/// each, or the event).
#[derive(Clone, Debug)]
pub(crate) struct Delivery {
    pub(crate) at: Cursor,
    pub(crate) imei: String,
    pub(crate) items: Vec<String>,
}

/// An outbox row (of the outbox `READ` queries).
pub(crate) fn entry_value<R: Cols>(r: &R) -> Result<Entry, R::Err> {
    let first = r.opt_int(3)?;
    let last = r.opt_int(4)?;
    Ok(Entry {
        at: Cursor {
            txid: r.int(0)?,
            id: r.int(1)?,
        },
        kind: r.text(2)?,
        records: first.zip(last),
        body: r.opt_text(5)?,
    })
}

/// A forwarder row (of `FORWARDERS_SQL`).
pub(crate) fn forwarder_value<R: Cols>(r: &R) -> Result<ForwarderRow, R::Err> {
    Ok(ForwarderRow {
        name: r.text(0)?,
        at: Cursor {
            txid: r.int(1)?,
            id: r.int(2)?,
        },
    })
}

/// A record row with its IMEI (of the outbox `RECORDS` queries) as a forwarded object: the
/// stored record with `"type":"record"` and `imei` first. Written as text directly, its IO
/// elements typed from the compact column (no `Value` in between): this runs for every record
/// forwarded.
pub(crate) fn forwarded_record<R: Cols>(
    r: &R,
    model: Option<&str>,
) -> Result<(i64, String, String), R::Err> {
    let position = record_with(r, |io| match compact_elements(io) {
        Some(elements) => (
            ForwardedIo::Typed(elements.iter().map(|e| IoJson::new(e, model)).collect()),
            NetworkJson::from_io(&elements),
        ),
        None => {
            let (stored, network) = io_value(io, model);
            (ForwardedIo::Stored(stored), network)
        }
    })?;
    let imei = r.text(19)?;
    let body = serde_json::to_string(&position).unwrap_or_else(|_| "{}".into());
    let mut out = String::with_capacity(body.len() + imei.len() + 32);
    out.push_str("{\"type\":\"record\",\"imei\":");
    // An IMEI is digits; quoted by serde all the same.
    out.push_str(&serde_json::to_string(&imei).unwrap_or_default());
    if body.len() > 2 {
        out.push(',');
    }
    out.push_str(&body[1..]);
    Ok((position.id, imei, out))
}

/// A forwarded record's IO: typed from the compact column, or (rows stored before it) the
/// column as the API shows it.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum ForwardedIo {
    Typed(Vec<IoJson>),
    Stored(Value),
}

/// A compact element's third item: the raw integer, or the hex of a variable-length value.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum CompactValue {
    Raw(u64),
    Hex(String),
}

/// The compact IO column (`[[id,size,raw],[id,size,"hex"]]`) as elements, read straight into
/// their types; `None` for anything else (a row stored before the compact form).
fn compact_elements(text: &str) -> Option<Vec<IoElement>> {
    let items: Vec<(u16, u8, CompactValue)> = serde_json::from_str(text).ok()?;
    items
        .into_iter()
        .map(|(id, size, v)| {
            let value = match (size, v) {
                (_, CompactValue::Hex(hex)) => IoValue::Bytes(fleetview::hex::decode(&hex).ok()?),
                (1, CompactValue::Raw(v)) => IoValue::U8(u8::try_from(v).ok()?),
                (2, CompactValue::Raw(v)) => IoValue::U16(u16::try_from(v).ok()?),
                (4, CompactValue::Raw(v)) => IoValue::U32(u32::try_from(v).ok()?),
                (8, CompactValue::Raw(v)) => IoValue::U64(v),
                _ => return None,
            };
            Some(IoElement { id, value })
        })
        .collect()
}

/// Keep the first entries whose items (records, or one event) add up to at most `max_items`
/// (at least one entry): the records of the others are not read, as the batch is cut there.
pub(crate) fn limit_items(entries: &mut Vec<Entry>, max_items: usize) {
    let mut items = 0usize;
    let keep = entries
        .iter()
        .position(|e| {
            let n = match e.records {
                Some((first, last)) if e.kind == RECORDS => (last - first + 1).max(0) as usize,
                _ => 1,
            };
            items += n;
            items > max_items
        })
        .unwrap_or(entries.len())
        .max(1);
    entries.truncate(keep);
}

/// The records the entries point at, as ids.
pub(crate) fn record_ids(entries: &[Entry]) -> impl Iterator<Item = i64> + '_ {
    entries
        .iter()
        .filter(|e| e.kind == RECORDS)
        .filter_map(|e| e.records)
        .flat_map(|(first, last)| first..=last)
}

/// Each entry with what it delivers, from the records read (`id → (imei, JSON)`).
pub(crate) fn deliveries(
    entries: Vec<Entry>,
    mut records: std::collections::HashMap<i64, (String, String)>,
) -> Vec<Delivery> {
    entries
        .into_iter()
        .map(|e| {
            let mut imei = String::new();
            let items = match (e.records, e.body) {
                (Some((first, last)), _) if e.kind == RECORDS => (first..=last)
                    .filter_map(|id| records.remove(&id))
                    .map(|(i, json)| {
                        imei = i;
                        json
                    })
                    .collect(),
                (_, Some(body)) => {
                    imei = serde_json::from_str::<Value>(&body)
                        .ok()
                        .and_then(|v| v["imei"].as_str().map(String::from))
                        .unwrap_or_default();
                    vec![body]
                }
                _ => Vec::new(),
            };
            Delivery {
                at: e.at,
                imei,
                items,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The forwarders' typed IO is exactly what the API shows for the same column.
    #[test]
    fn forwarded_io_matches_the_api() {
        let text = r#"[[239,1,1],[16,8,18446744073709551615],[66,2,12500],[385,2,"0aff"]]"#;
        for model in [None, Some("FMB920")] {
            let typed: Vec<IoJson> = compact_elements(text)
                .unwrap()
                .iter()
                .map(|e| IoJson::new(e, model))
                .collect();
            assert_eq!(
                serde_json::to_value(ForwardedIo::Typed(typed)).unwrap(),
                io_value(text, model).0
            );
        }
        // A column in the full model (rows stored before the compact form): not compact.
        assert!(compact_elements(r#"[{"id":1,"size":1,"raw":1}]"#).is_none());
        assert!(compact_elements("[[1,3,5]]").is_none());
    }

    #[test]
    fn a_batch_stops_at_its_items() {
        let entry = |id, records: Option<(i64, i64)>| Entry {
            at: Cursor { txid: 0, id },
            kind: if records.is_some() { RECORDS } else { "refuel" }.into(),
            records,
            body: None,
        };
        let all = vec![
            entry(1, Some((1, 10))),
            entry(2, None),
            entry(3, Some((11, 20))),
            entry(4, Some((21, 30))),
        ];
        let mut e = all.clone();
        limit_items(&mut e, 21);
        assert_eq!(e.len(), 3, "10 + 1 + 10 items");
        let mut e = all.clone();
        limit_items(&mut e, 5);
        assert_eq!(e.len(), 1, "a first entry larger than the limit still goes");
        let mut e = all;
        limit_items(&mut e, 1000);
        assert_eq!(e.len(), 4);
    }
}
