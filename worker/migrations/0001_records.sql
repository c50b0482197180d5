-- Fleetview edge relay schema (D1). Applied by `wrangler d1 migrations apply DB` and by the tests.

-- One row per AVL record. The primary key is the dedup rule: the same device sending the same
-- record bytes again (a retransmitted datagram) inserts nothing (`INSERT OR IGNORE`).
CREATE TABLE records (
    imei         TEXT    NOT NULL,
    record_key   TEXT    NOT NULL,  -- fleetview::identity key of `data` (16 hex digits; 64 = SHA-256, rows stored before)
    timestamp_ms INTEGER NOT NULL,  -- ms since 1970 UTC
    codec        TEXT    NOT NULL,  -- '8', '8E', '16', '7'
    priority     INTEGER NOT NULL,
    longitude    REAL    NOT NULL,  -- degrees
    latitude     REAL    NOT NULL,  -- degrees
    altitude     INTEGER NOT NULL,  -- metres
    angle        INTEGER NOT NULL,  -- degrees from north
    satellites   INTEGER NOT NULL,
    speed        INTEGER NOT NULL,  -- km/h
    valid        INTEGER NOT NULL,  -- 1 when the position is a fix
    event_id     INTEGER NOT NULL,
    io           TEXT    NOT NULL,  -- JSON: the JSON model's io array
    data         TEXT    NOT NULL,  -- hex: the record alone in its codec's data array
    received_ms  INTEGER NOT NULL,  -- when the Worker stored it
    PRIMARY KEY (imei, record_key)
) WITHOUT ROWID;

-- GET /devices/{imei}/positions?since=: fixes of one device in time order.
CREATE INDEX records_by_time ON records (imei, timestamp_ms) WHERE valid = 1;

-- IMEI allowlist. Empty: every device is accepted. Otherwise only the listed IMEIs get acks
-- (`wrangler d1 execute DB --remote --command "INSERT INTO allowed_imeis (imei) VALUES ('356307042441013')"`).
CREATE TABLE allowed_imeis (
    imei TEXT PRIMARY KEY NOT NULL
) WITHOUT ROWID;
