//! The SQLite schema and its versioned migrations (`PRAGMA user_version`).

use rusqlite::Connection;

use super::super::Error;

/// Each migration takes the schema from the version before it to its own (1-based): applied in
/// order, each in its own transaction with the new `user_version`. Never edit one that shipped:
/// add the next.
const MIGRATIONS: &[&str] = &[
    // 1: devices, records (unique on the dedup key), commands. Version 1 databases were created
    // with `IF NOT EXISTS`, which this keeps so that they open unchanged.
    "
CREATE TABLE IF NOT EXISTS devices (
    id            INTEGER PRIMARY KEY,
    imei          TEXT NOT NULL UNIQUE,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    transport     TEXT,
    address       TEXT,
    records       INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS records (
    id              INTEGER PRIMARY KEY,
    device_id       INTEGER NOT NULL REFERENCES devices(id),
    timestamp_ms    INTEGER NOT NULL,
    hash            INTEGER NOT NULL,
    received_ms     INTEGER NOT NULL,
    transport       TEXT NOT NULL,
    codec           TEXT NOT NULL,
    priority        INTEGER NOT NULL,
    longitude       REAL NOT NULL,
    latitude        REAL NOT NULL,
    altitude        INTEGER NOT NULL,
    angle           INTEGER NOT NULL,
    satellites      INTEGER NOT NULL,
    speed           INTEGER NOT NULL,
    valid           INTEGER NOT NULL,
    event_id        INTEGER NOT NULL,
    generation_type INTEGER,
    io              TEXT NOT NULL,
    fuel_id         INTEGER,
    fuel_level      REAL,
    fuel_unit       TEXT,
    ignition        INTEGER,
    movement        INTEGER,
    raw             BLOB NOT NULL,
    UNIQUE (device_id, timestamp_ms, hash)
);
CREATE TABLE IF NOT EXISTS commands (
    id          INTEGER PRIMARY KEY,
    device_id   INTEGER NOT NULL REFERENCES devices(id),
    codec       TEXT NOT NULL,
    text        TEXT,
    payload     BLOB NOT NULL,
    status      TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    sent_ms     INTEGER,
    answered_ms INTEGER,
    response    TEXT,
    error       TEXT
);
CREATE INDEX IF NOT EXISTS commands_queue ON commands (device_id, status, id);
",
    // 2: which node sent a command (the same columns as PostgreSQL's; one node here).
    "ALTER TABLE commands ADD COLUMN node TEXT;",
    // 3: the forwarders' outbox (see storage::outbox) and their positions. `txid` is always 0
    // here (one writer: ids are in commit order); PostgreSQL has the same columns.
    // AUTOINCREMENT: an id is never taken again, even once every entry has been trimmed (a
    // forwarder's position is an id).
    "
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    txid         INTEGER NOT NULL DEFAULT 0,
    device_id    INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    first_record INTEGER,
    last_record  INTEGER,
    body         TEXT,
    created_ms   INTEGER NOT NULL
);
CREATE TABLE forwarders (
    name    TEXT PRIMARY KEY,
    txid    INTEGER NOT NULL,
    id      INTEGER NOT NULL,
    seen_ms INTEGER NOT NULL
);
",
    // 4: reports: each record's total odometer (IO 16) for trips; geofences (ids never reused,
    // which the writer's geofence version relies on) and their enter/exit events, unique per
    // device, record (time and hash), geofence and kind.
    "
ALTER TABLE records ADD COLUMN odometer INTEGER;
CREATE TABLE geofences (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    geometry   TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE geofence_events (
    id           INTEGER PRIMARY KEY,
    device_id    INTEGER NOT NULL,
    geofence_id  INTEGER NOT NULL,
    type         TEXT NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    hash         INTEGER NOT NULL,
    latitude     REAL NOT NULL,
    longitude    REAL NOT NULL,
    created_ms   INTEGER NOT NULL,
    UNIQUE (device_id, timestamp_ms, hash, geofence_id, type)
);
CREATE INDEX geofence_events_geofence ON geofence_events (geofence_id);
-- What trips, stops and fuel read of each record, by device and time: a device's month is read
-- from this index alone, its entries side by side (the table's rows of one device are spread
-- among every other device's). One more index write per record.
CREATE INDEX records_track ON records (device_id, timestamp_ms, hash, valid, latitude, longitude,
    speed, ignition, movement, odometer, fuel_id, fuel_level, fuel_unit);
",
];

/// Bring the schema to the latest version.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), Error> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > known {
        return Err(Error::TooNew { found, known });
    }
    for (v, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", v + 1))?;
        tx.commit()?;
        tracing::info!("database schema migrated to version {}", v + 1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_new_and_version_1_databases_and_refuses_newer_ones() {
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        let v: i64 = fresh
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        // Idempotent.
        migrate(&mut fresh).unwrap();

        // A database written by the previous release: version 1, no `node` column.
        let mut old = Connection::open_in_memory().unwrap();
        old.execute_batch(MIGRATIONS[0]).unwrap();
        old.execute_batch("PRAGMA user_version = 1").unwrap();
        migrate(&mut old).unwrap();
        old.execute_batch("SELECT node FROM commands").unwrap();

        let mut newer = Connection::open_in_memory().unwrap();
        newer.execute_batch("PRAGMA user_version = 99").unwrap();
        assert!(matches!(
            migrate(&mut newer),
            Err(Error::TooNew { found: 99, .. })
        ));
    }
}
