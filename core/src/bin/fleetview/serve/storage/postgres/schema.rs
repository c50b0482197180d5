//! The PostgreSQL schema and its versioned migrations (table `schema_version`).
//!
//! Several nodes may start at once: each migrates under a transaction-scoped advisory lock, so
//! one applies what is missing and the others find it done.

use deadpool_postgres::Object;

use super::super::Error;

/// Each migration takes the schema from the version before it to its own (1-based). Never edit
/// one that shipped: add the next. Integers are `BIGINT` throughout (the readers read every
/// integer column as 64 bits, on both engines).
const MIGRATIONS: &[&str] = &[
    // 1: devices, records (unique on the dedup key), commands; the cluster's nodes (with their
    // lease) and sessions (which node holds which device's connection).
    "
CREATE TABLE devices (
    id            BIGSERIAL PRIMARY KEY,
    imei          TEXT NOT NULL UNIQUE,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms  BIGINT NOT NULL,
    transport     TEXT,
    address       TEXT
);
-- No foreign key to devices: the writer resolves every device id itself, and the check would
-- cost a lookup per record (as on SQLite, where foreign keys stay off for the writer).
CREATE TABLE records (
    id              BIGSERIAL PRIMARY KEY,
    device_id       BIGINT NOT NULL,
    timestamp_ms    BIGINT NOT NULL,
    hash            BIGINT NOT NULL,
    received_ms     BIGINT NOT NULL,
    transport       TEXT NOT NULL,
    codec           TEXT NOT NULL,
    priority        BIGINT NOT NULL,
    longitude       DOUBLE PRECISION NOT NULL,
    latitude        DOUBLE PRECISION NOT NULL,
    altitude        BIGINT NOT NULL,
    angle           BIGINT NOT NULL,
    satellites      BIGINT NOT NULL,
    speed           BIGINT NOT NULL,
    valid           BOOLEAN NOT NULL,
    event_id        BIGINT NOT NULL,
    generation_type BIGINT,
    io              TEXT NOT NULL,
    fuel_id         BIGINT,
    fuel_level      DOUBLE PRECISION,
    fuel_unit       TEXT,
    ignition        BIGINT,
    movement        BIGINT,
    raw             BYTEA NOT NULL,
    UNIQUE (device_id, timestamp_ms, hash)
);
CREATE TABLE commands (
    id          BIGSERIAL PRIMARY KEY,
    device_id   BIGINT NOT NULL REFERENCES devices(id),
    codec       TEXT NOT NULL,
    text        TEXT,
    payload     BYTEA NOT NULL,
    status      TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    sent_ms     BIGINT,
    answered_ms BIGINT,
    response    TEXT,
    error       TEXT,
    node        TEXT
);
CREATE INDEX commands_queue ON commands (device_id, status, id);
CREATE INDEX commands_sent ON commands (node) WHERE status = 'sent';
CREATE TABLE nodes (
    node           TEXT PRIMARY KEY,
    started_ms     BIGINT NOT NULL,
    lease_until_ms BIGINT NOT NULL,
    watchers       BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE sessions (
    imei     TEXT PRIMARY KEY,
    node     TEXT NOT NULL,
    conn     BIGINT NOT NULL,
    address  TEXT NOT NULL,
    since_ms BIGINT NOT NULL
);
CREATE INDEX sessions_node ON sessions (node);
",
    // 2: the forwarders' outbox (see storage::outbox) and their positions. `txid`: the
    // writing transaction, so that readers take rows in commit order (ids are taken before it).
    "
CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    txid         BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    device_id    BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    first_record BIGINT,
    last_record  BIGINT,
    body         TEXT,
    created_ms   BIGINT NOT NULL
);
CREATE INDEX outbox_order ON outbox (txid, id);
CREATE TABLE forwarders (
    name    TEXT PRIMARY KEY,
    txid    BIGINT NOT NULL,
    id      BIGINT NOT NULL,
    seen_ms BIGINT NOT NULL
);
",
    // 3: reports: each record's total odometer (IO 16) for trips; geofences and their
    // enter/exit events, unique per device, record (time and hash), geofence and kind.
    "
ALTER TABLE records ADD COLUMN odometer BIGINT;
CREATE TABLE geofences (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT NOT NULL,
    geometry   TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE TABLE geofence_events (
    id           BIGSERIAL PRIMARY KEY,
    device_id    BIGINT NOT NULL,
    geofence_id  BIGINT NOT NULL,
    type         TEXT NOT NULL,
    timestamp_ms BIGINT NOT NULL,
    hash         BIGINT NOT NULL,
    latitude     DOUBLE PRECISION NOT NULL,
    longitude    DOUBLE PRECISION NOT NULL,
    created_ms   BIGINT NOT NULL,
    UNIQUE (device_id, timestamp_ms, hash, geofence_id, type)
);
CREATE INDEX geofence_events_geofence ON geofence_events (geofence_id);
-- What trips, stops and fuel read of each record, by device and time: index-only scans once
-- autovacuum has marked the pages all-visible. One more index write per record.
CREATE INDEX records_track ON records (device_id, timestamp_ms, hash) INCLUDE (valid, latitude,
    longitude, speed, ignition, movement, odometer, fuel_id, fuel_level, fuel_unit);
",
];

/// Bring the schema to the latest version.
pub(super) async fn migrate(client: &mut Object) -> Result<(), Error> {
    let known = MIGRATIONS.len() as i64;
    let tx = client.transaction().await?;
    // Any constant: the key of fleetview's schema lock.
    tx.execute("SELECT pg_advisory_xact_lock(7245101)", &[])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        .await?;
    let found: i64 = tx
        .query_opt("SELECT version FROM schema_version", &[])
        .await?
        .map_or(0, |r| r.get(0));
    if found > known {
        return Err(Error::TooNew { found, known });
    }
    for (v, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(sql).await?;
        tracing::info!("database schema migrated to version {}", v + 1);
    }
    if found < known {
        tx.execute("DELETE FROM schema_version", &[]).await?;
        tx.execute("INSERT INTO schema_version VALUES ($1)", &[&known])
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
