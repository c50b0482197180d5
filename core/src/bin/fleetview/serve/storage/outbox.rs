//! The transactional outbox: what the forwarders (`--forward`) deliver, written in the same
//! transaction as the data it comes from, so that nothing is forwarded that was not committed
//! and nothing committed is missed.
//!
//! # Adding an event (for server code)
//!
//! An [`OutboxEvent`] is one JSON object for the forwarders, about one device:
//! `OutboxEvent::new(imei, "geofence_enter", &payload)` (any `Serialize` object; `type` and
//! `imei` are added to it). It is written to the outbox in the same transaction as:
//!
//! - the records it derives from, when put in [`super::Batch::events`] before the batch goes
//!   to [`super::Store::records`] (nothing of the batch is stored without its events, nor the
//!   other way round);
//! - nothing else, with [`super::Store::events`]: a job of its own in the writer's next group
//!   commit (for events found after the commit of their records, like fuel events, which need
//!   the device's stored series).
//!
//! Command answers are written by the writer itself, in the transaction that stores the answer
//! (type `command`). Without `--forward` nothing is written (both calls cost nothing).
//!
//! # What is stored
//!
//! Table `outbox`: one row per batch of new records on SQLite (the ids of a batch's new
//! records are consecutive there: one writer) and per new record on PostgreSQL (several
//! writers take ids from one sequence), each pointing at the records (`first_record`,
//! `last_record`): the records are not stored twice. An event row holds its JSON (`body`).
//! Order: [`Cursor`] `(txid, id)`. On SQLite `txid` is 0 and ids are in commit order. On
//! PostgreSQL ids are taken before the commit, so a transaction can commit a smaller id after a
//! larger one was read: `txid` is the writing transaction's id, and a reader only takes rows
//! whose transaction is older than every transaction still running
//! (`pg_snapshot_xmin(pg_current_snapshot())`), in `(txid, id)` order: a row that shows up
//! later always comes after the position already read.
//!
//! Table `forwarders`: each forwarder's position (the last entry it delivered) and when a node
//! last ran it (`seen_ms`). Entries every forwarder has delivered are deleted.

use serde::Serialize;
use serde_json::Value;

/// An event for the forwarders (see the module's documentation).
#[derive(Clone, Debug)]
pub(crate) struct OutboxEvent {
    pub(crate) imei: String,
    /// The event's `type` (`refuel`, `geofence_enter`, `command`, …).
    pub(crate) kind: &'static str,
    /// The JSON object delivered, with `type` and `imei`.
    pub(crate) body: String,
}

impl OutboxEvent {
    /// `event` serialized as a JSON object, with `"type": kind` and `"imei": imei` added
    /// (a value that is not an object goes under `"data"`).
    pub(crate) fn new<T: Serialize>(imei: &str, kind: &'static str, event: &T) -> Self {
        let mut map = match serde_json::to_value(event) {
            Ok(Value::Object(m)) => m,
            Ok(other) => {
                let mut m = serde_json::Map::new();
                m.insert("data".into(), other);
                m
            }
            Err(e) => {
                let mut m = serde_json::Map::new();
                m.insert("error".into(), e.to_string().into());
                m
            }
        };
        map.insert("type".into(), kind.into());
        map.insert("imei".into(), imei.into());
        Self {
            imei: imei.to_string(),
            kind,
            body: Value::Object(map).to_string(),
        }
    }
}

/// A place in the outbox: `(txid, id)`, compared in that order. `(0, 0)` is before every entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Cursor {
    pub(crate) txid: i64,
    pub(crate) id: i64,
}

/// The `kind` of an outbox row pointing at records.
pub(crate) const RECORDS: &str = "records";

/// One outbox row as a forwarder reads it.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) at: Cursor,
    pub(crate) kind: String,
    /// Records: the ids `first..=last`; events: `None`.
    pub(crate) records: Option<(i64, i64)>,
    /// Events: the JSON object.
    pub(crate) body: Option<String>,
}

/// A forwarder's row: its position.
#[derive(Clone, Debug, Default)]
pub(crate) struct ForwarderRow {
    pub(crate) name: String,
    pub(crate) at: Cursor,
}

/// A forwarder that no node has run for this long no longer holds entries back (removed from
/// `--forward` on every node); it starts again from the oldest entry left if it comes back.
pub(crate) const FORGET_MS: i64 = 7 * 24 * 3600 * 1000;

/// An event row: `$1` type, `$2` body, `$3` now, `$4` IMEI (no row when the device has none).
/// (Parameters are numbered in order of first use: SQLite binds them by position.)
pub(super) const EVENT_SQL: &str = "INSERT INTO outbox (device_id, kind, body, created_ms)
     SELECT id, $1, $2, $3 FROM devices WHERE imei = $4";
/// The IMEI and status of an answered command: `$1` id.
pub(super) const ANSWER_SQL: &str =
    "SELECT d.imei, c.status, c.response, c.error, c.codec, c.text FROM commands c
     JOIN devices d ON d.id = c.device_id WHERE c.id = $1";
/// Register a forwarder (`$1` name, `$2` now): a new one starts before every entry.
pub(super) const REGISTER_SQL: &str =
    "INSERT INTO forwarders (name, txid, id, seen_ms) VALUES ($1, 0, 0, $2)
     ON CONFLICT (name) DO UPDATE SET seen_ms = excluded.seen_ms";
/// A forwarder delivered up to `($1, $2)` (`$3` now, `$4` name); never moves it back.
pub(super) const ADVANCE_SQL: &str = "UPDATE forwarders SET txid = $1, id = $2, seen_ms = $3
     WHERE name = $4 AND (txid < $1 OR (txid = $1 AND id <= $2))";
/// The smallest position of the forwarders run lately (`seen_ms` after `$1`): what all of
/// them have delivered.
pub(super) const DELIVERED_SQL: &str =
    "SELECT txid, id FROM forwarders WHERE seen_ms > $1 ORDER BY txid, id LIMIT 1";
/// Delete the entries up to `($1, $2)`.
pub(super) const TRIM_SQL: &str = "DELETE FROM outbox WHERE (txid, id) <= ($1, $2)";
/// SQLite: delete the entries up to id `$1`.
pub(super) const TRIM_SQLITE_SQL: &str = "DELETE FROM outbox WHERE id <= $1";
/// Every forwarder's row.
pub(crate) const FORWARDERS_SQL: &str = "SELECT name, txid, id FROM forwarders ORDER BY name";
/// SQLite: entries after id `$1`, at most `$2` (one writer: every row is committed, in id
/// order; `txid` is 0).
pub(crate) const READ_SQL: &str =
    "SELECT txid, id, kind, first_record, last_record, body FROM outbox
     WHERE id > $1 ORDER BY id LIMIT $2";
/// PostgreSQL: entries after `($1, $2)`, at most `$3`, only rows of transactions older than
/// every one still running.
pub(crate) const READ_PG_SQL: &str =
    "SELECT txid, id, kind, first_record, last_record, body FROM outbox
     WHERE (txid, id) > ($1, $2) AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
     ORDER BY txid, id LIMIT $3";
/// SQLite: entries after id `$1`: how many, and the oldest one's time.
pub(crate) const LAG_SQL: &str = "SELECT count(*), min(created_ms) FROM outbox WHERE id > $1";
/// PostgreSQL: the same after `($1, $2)`.
pub(crate) const LAG_PG_SQL: &str =
    "SELECT count(*), min(created_ms) FROM outbox WHERE (txid, id) > ($1, $2)";
/// Records with their IMEI, `$1`..`$2` ids (SQLite: a range of consecutive ids).
pub(crate) const RECORDS_RANGE_SQL: &str = concat!(
    "SELECT r.id, r.timestamp_ms, r.priority, r.longitude, r.latitude, r.altitude, r.angle,
    r.satellites, r.speed, r.valid, r.event_id, r.generation_type, r.io, r.codec, r.transport, r.received_ms,
    r.fuel_id, r.fuel_level, r.fuel_unit, d.imei",
    " FROM records r JOIN devices d ON d.id = r.device_id WHERE r.id BETWEEN $1 AND $2"
);
/// PostgreSQL: records with their IMEI, `$1` an array of ids.
pub(crate) const RECORDS_ANY_SQL: &str = concat!(
    "SELECT r.id, r.timestamp_ms, r.priority, r.longitude, r.latitude, r.altitude, r.angle,
    r.satellites, r.speed, r.valid, r.event_id, r.generation_type, r.io, r.codec, r.transport, r.received_ms,
    r.fuel_id, r.fuel_level, r.fuel_unit, d.imei",
    " FROM records r JOIN devices d ON d.id = r.device_id WHERE r.id = ANY($1)"
);

/// The JSON of a command's answer for the forwarders (from [`ANSWER_SQL`]'s row).
pub(super) fn answer_event(
    id: i64,
    imei: &str,
    status: &str,
    response: Option<&str>,
    error: Option<&str>,
    codec: &str,
    text: Option<&str>,
) -> OutboxEvent {
    let response = response.and_then(|r| serde_json::from_str::<Value>(r).ok());
    OutboxEvent::new(
        imei,
        "command",
        &serde_json::json!({
            "id": id, "codec": codec, "text": text, "status": status,
            "response": response, "error": error,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_gets_its_type_and_imei() {
        let e = OutboxEvent::new(
            "352093080000002",
            "refuel",
            &serde_json::json!({"change": 12.5}),
        );
        let v: Value = serde_json::from_str(&e.body).unwrap();
        assert_eq!(v["type"], "refuel");
        assert_eq!(v["imei"], "352093080000002");
        assert_eq!(v["change"], 12.5);
        let e = OutboxEvent::new("1", "x", &3);
        assert_eq!(serde_json::from_str::<Value>(&e.body).unwrap()["data"], 3);
    }

    #[test]
    fn positions_order_by_transaction_then_id() {
        let p = |txid, id| Cursor { txid, id };
        assert!(p(0, 0) < p(0, 1));
        assert!(p(0, 99) < p(1, 1));
        assert!(p(5, 10) > p(4, 20));
    }
}
