//! SQLite storage: devices, records, commands.
//!
//! One writer thread owns the only writing connection. Connections and the UDP listener hand it
//! jobs through a channel; it takes whatever is queued (up to [`MAX_GROUP`] jobs), applies them in
//! one transaction, commits, and only then answers each job. A device is acked after that
//! answer, so every acked record is on disk (`synchronous=FULL` by default: the WAL is synced at
//! each commit, one fsync per group rather than per frame).
//!
//! A record's identity is its device, its timestamp and a 64-bit FNV-1a hash of its bytes as
//! encoded alone in its codec. `INSERT OR IGNORE` on that unique key makes a resent batch add no
//! rows, while it is still acked.
//!
//! Readers (the HTTP API, the command queue lookups) use their own connections: WAL lets them
//! read while the writer commits.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use fleetview::json::RecordJson;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot};

use super::fuel::{self, Reading};

/// Most jobs committed in one transaction.
const MAX_GROUP: usize = 512;
/// Jobs waiting for the writer before senders wait too (backpressure on devices).
const QUEUE: usize = 4096;

const SCHEMA: &str = "
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
PRAGMA user_version = 1;
";

/// Milliseconds since 1970, from the system clock (the server's only clock).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// FNV-1a, 64 bits: stable across builds and platforms, unlike std's hasher, as a key stored on
/// disk must be.
pub(crate) fn record_hash(bytes: &[u8]) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// A record ready to insert: its JSON model (with IO names) and what is derived from it.
#[derive(Clone, Debug)]
pub(crate) struct RecordRow {
    pub(crate) json: RecordJson,
    /// The record encoded alone in its codec: the dedup key and the exact original.
    pub(crate) raw: Vec<u8>,
    pub(crate) fuel: Option<Reading>,
    pub(crate) ignition: Option<u8>,
    pub(crate) movement: Option<u8>,
}

impl RecordRow {
    pub(crate) fn new(
        record: &fleetview::AvlRecord,
        codec: fleetview::Codec,
        model: Option<&str>,
    ) -> Self {
        let data = fleetview::AvlData {
            codec,
            records: vec![record.clone()],
        };
        let json = RecordJson::new(record, model);
        // Every decoded record re-encodes; should one not, its JSON is the identity instead.
        let raw = data
            .encode()
            .unwrap_or_else(|_| serde_json::to_vec(&json).unwrap_or_default());
        let (ignition, movement) = fuel::ignition_movement(record);
        Self {
            fuel: fuel::reading(record, model),
            json,
            raw,
            ignition,
            movement,
        }
    }
}

/// The records of one frame or datagram.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) imei: String,
    pub(crate) transport: &'static str,
    pub(crate) codec: &'static str,
    pub(crate) address: String,
    pub(crate) received_ms: i64,
    pub(crate) rows: Vec<RecordRow>,
}

/// A command taken from the queue to send.
#[derive(Clone, Debug)]
pub(crate) struct Queued {
    pub(crate) id: i64,
    pub(crate) codec: String,
    pub(crate) payload: Vec<u8>,
}

/// How a command ended.
#[derive(Debug)]
pub(crate) enum CommandEnd {
    /// The device answered (`response` is the MessageJson); `error` set for a nACK.
    Answered {
        response: String,
        error: Option<String>,
    },
    /// Gave up: no answer in time.
    Failed(String),
    /// The connection closed before the answer: send it again on the next connection.
    Requeue,
}

enum Op {
    Records(Batch),
    Seen {
        imei: String,
        transport: &'static str,
        address: String,
    },
    Queue {
        imei: String,
        codec: &'static str,
        text: Option<String>,
        payload: Vec<u8>,
    },
    Take {
        imei: String,
    },
    End {
        id: i64,
        end: CommandEnd,
    },
}

/// What a job produced.
enum Outcome {
    /// The batch back, with the new row id of each record, `None` for a duplicate.
    Records(Batch, Vec<Option<i64>>),
    Id(i64),
    Taken(Option<Queued>),
    Done,
}

struct Job {
    op: Op,
    reply: oneshot::Sender<Result<Outcome, String>>,
}

/// The writer's handle: cheap to clone, one per task.
#[derive(Clone)]
pub(crate) struct Store {
    tx: mpsc::Sender<Job>,
}

/// The writer thread; join it after dropping every [`Store`] to let it drain and close.
pub(crate) struct Writer {
    thread: JoinHandle<()>,
}

impl Writer {
    pub(crate) fn join(self) {
        let _ = self.thread.join();
    }
}

/// How durable a commit is before its ack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Sync {
    /// fsync the WAL at every commit: acked records survive a power cut.
    Full,
    /// No fsync at commit: acked records survive a crash of the process, not of the machine.
    Normal,
}

/// Open (creating when needed) the database and start the writer.
pub(crate) fn open(path: &Path, sync: Sync) -> Result<(Store, Writer, Reader), String> {
    let conn = Connection::open(path)
        .map_err(|e| format!("cannot open the database {}: {e}", path.display()))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(|e| format!("cannot switch {} to WAL: {e}", path.display()))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!(
            "{} does not support WAL (journal mode {mode})",
            path.display()
        ));
    }
    let sync = match sync {
        Sync::Full => "FULL",
        Sync::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous={sync}; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;"
    ))
    .and_then(|()| conn.execute_batch(SCHEMA))
    .map_err(|e| format!("cannot prepare the database {}: {e}", path.display()))?;
    // Commands left `sent` by a previous run that stopped before their answer go out again.
    let requeued = conn
        .execute(
            "UPDATE commands SET status = 'queued', sent_ms = NULL WHERE status = 'sent'",
            [],
        )
        .map_err(|e| format!("cannot requeue commands: {e}"))?;
    if requeued > 0 {
        tracing::info!(
            "{requeued} commands sent before the last stop but not answered: queued again"
        );
    }
    let reader = Reader::open(path)?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let thread = std::thread::Builder::new()
        .name("fleetview-writer".into())
        .spawn(move || write_loop(conn, rx))
        .map_err(|e| format!("cannot start the writer thread: {e}"))?;
    Ok((Store { tx }, Writer { thread }, reader))
}

fn write_loop(mut conn: Connection, mut rx: mpsc::Receiver<Job>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(job) = rx.blocking_recv() {
        group.push(job);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let (ops, replies): (Vec<Op>, Vec<_>) = group.drain(..).map(|j| (j.op, j.reply)).unzip();
        let outcomes = commit_group(&mut conn, ops);
        tracing::trace!(
            jobs = replies.len(),
            micros = started.elapsed().as_micros() as u64,
            "group committed"
        );
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            let _ = reply.send(outcome);
        }
    }
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
        tracing::warn!("final WAL checkpoint failed: {e}");
    }
    tracing::debug!("writer closed");
}

/// Apply every job in one transaction, each in its own savepoint so that a failed job leaves
/// nothing behind. When the commit fails every job fails: nobody is acked and devices send
/// again.
fn commit_group(conn: &mut Connection, ops: Vec<Op>) -> Vec<Result<Outcome, String>> {
    let n = ops.len();
    let mut tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            return (0..n)
                .map(|_| Err(format!("cannot begin a transaction: {e}")))
                .collect()
        }
    };
    let mut outcomes = Vec::with_capacity(n);
    for op in ops {
        let outcome = tx.savepoint().and_then(|sp| {
            let out = apply(&sp, op)?;
            sp.commit()?;
            Ok(out)
        });
        if let Err(e) = &outcome {
            tracing::warn!("database job failed: {e}");
        }
        outcomes.push(outcome.map_err(|e| e.to_string()));
    }
    match tx.commit() {
        Ok(()) => outcomes,
        Err(e) => {
            tracing::error!("commit failed, {n} jobs not stored: {e}");
            (0..n).map(|_| Err(format!("commit failed: {e}"))).collect()
        }
    }
}

fn device_id(
    tx: &Connection,
    imei: &str,
    transport: Option<&str>,
    address: Option<&str>,
) -> rusqlite::Result<i64> {
    let now = now_ms();
    tx.prepare_cached(
        "INSERT INTO devices (imei, first_seen_ms, last_seen_ms, transport, address) VALUES (?1, ?2, ?2, ?3, ?4)
         ON CONFLICT (imei) DO UPDATE SET last_seen_ms = excluded.last_seen_ms,
           transport = coalesce(excluded.transport, transport), address = coalesce(excluded.address, address)",
    )?
    .execute(params![imei, now, transport, address])?;
    tx.prepare_cached("SELECT id FROM devices WHERE imei = ?1")?
        .query_row([imei], |r| r.get(0))
}

fn apply(tx: &Connection, op: Op) -> rusqlite::Result<Outcome> {
    match op {
        Op::Records(batch) => {
            let device = device_id(tx, &batch.imei, Some(batch.transport), Some(&batch.address))?;
            let mut ids = Vec::with_capacity(batch.rows.len());
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO records (device_id, timestamp_ms, hash, received_ms, transport, codec,
                   priority, longitude, latitude, altitude, angle, satellites, speed, valid, event_id,
                   generation_type, io, fuel_id, fuel_level, fuel_unit, ignition, movement, raw)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
                   ?20, ?21, ?22, ?23)",
            )?;
            for row in &batch.rows {
                let j = &row.json;
                let io = serde_json::to_string(&j.io).unwrap_or_else(|_| "[]".into());
                let n = insert.execute(params![
                    device,
                    j.timestamp_ms as i64,
                    record_hash(&row.raw),
                    batch.received_ms,
                    batch.transport,
                    batch.codec,
                    j.priority,
                    j.longitude,
                    j.latitude,
                    j.altitude,
                    j.angle,
                    j.satellites,
                    j.speed,
                    j.valid,
                    j.event_id,
                    j.generation_type,
                    io,
                    row.fuel.as_ref().map(|f| f.id),
                    row.fuel.as_ref().map(|f| f.level),
                    row.fuel.as_ref().and_then(|f| f.unit),
                    row.ignition,
                    row.movement,
                    row.raw,
                ])?;
                ids.push((n == 1).then(|| tx.last_insert_rowid()));
            }
            let added = ids.iter().flatten().count() as i64;
            tx.prepare_cached("UPDATE devices SET records = records + ?1 WHERE id = ?2")?
                .execute(params![added, device])?;
            Ok(Outcome::Records(batch, ids))
        }
        Op::Seen {
            imei,
            transport,
            address,
        } => {
            device_id(tx, &imei, Some(transport), Some(&address))?;
            Ok(Outcome::Done)
        }
        Op::Queue {
            imei,
            codec,
            text,
            payload,
        } => {
            let device: i64 = tx
                .prepare_cached("SELECT id FROM devices WHERE imei = ?1")?
                .query_row([&imei], |r| r.get(0))?;
            tx.prepare_cached(
                "INSERT INTO commands (device_id, codec, text, payload, status, created_ms) VALUES (?1, ?2, ?3, ?4, 'queued', ?5)",
            )?
            .execute(params![device, codec, text, payload, now_ms()])?;
            Ok(Outcome::Id(tx.last_insert_rowid()))
        }
        Op::Take { imei } => {
            let next = tx
                .prepare_cached(
                    "SELECT c.id, c.codec, c.payload FROM commands c JOIN devices d ON d.id = c.device_id
                     WHERE d.imei = ?1 AND c.status = 'queued' ORDER BY c.id LIMIT 1",
                )?
                .query_row([&imei], |r| {
                    Ok(Queued {
                        id: r.get(0)?,
                        codec: r.get(1)?,
                        payload: r.get(2)?,
                    })
                })
                .optional()?;
            if let Some(q) = &next {
                tx.prepare_cached(
                    "UPDATE commands SET status = 'sent', sent_ms = ?1 WHERE id = ?2",
                )?
                .execute(params![now_ms(), q.id])?;
            }
            Ok(Outcome::Taken(next))
        }
        Op::End { id, end } => {
            let now = now_ms();
            match end {
                CommandEnd::Answered { response, error } => {
                    let status = if error.is_some() {
                        "failed"
                    } else {
                        "answered"
                    };
                    tx.prepare_cached(
                        "UPDATE commands SET status = ?1, answered_ms = ?2, response = ?3, error = ?4 WHERE id = ?5",
                    )?
                    .execute(params![status, now, response, error, id])?;
                }
                CommandEnd::Failed(error) => {
                    tx.prepare_cached(
                        "UPDATE commands SET status = 'failed', error = ?1 WHERE id = ?2",
                    )?
                    .execute(params![error, id])?;
                }
                CommandEnd::Requeue => {
                    tx.prepare_cached(
                        "UPDATE commands SET status = 'queued', sent_ms = NULL WHERE id = ?1 AND status = 'sent'",
                    )?
                    .execute([id])?;
                }
            }
            Ok(Outcome::Done)
        }
    }
}

/// The writer stopped (shutdown or a fatal error).
const GONE: &str = "the database writer has stopped";

impl Store {
    async fn run(&self, op: Op) -> Result<Outcome, String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { op, reply })
            .await
            .map_err(|_| GONE.to_string())?;
        rx.await.map_err(|_| GONE.to_string())?
    }

    /// Commit a batch; returns it with the new row id of each record (`None`: already stored).
    pub(crate) async fn records(&self, batch: Batch) -> Result<(Batch, Vec<Option<i64>>), String> {
        match self.run(Op::Records(batch)).await? {
            Outcome::Records(b, ids) => Ok((b, ids)),
            _ => unreachable!("records job answered with another outcome"),
        }
    }

    /// Record that a device logged in (creates it on first sight).
    pub(crate) async fn seen(
        &self,
        imei: &str,
        transport: &'static str,
        address: String,
    ) -> Result<(), String> {
        self.run(Op::Seen {
            imei: imei.into(),
            transport,
            address,
        })
        .await
        .map(drop)
    }

    /// Queue a command for a known device; returns its id.
    pub(crate) async fn queue(
        &self,
        imei: &str,
        codec: &'static str,
        text: Option<String>,
        payload: Vec<u8>,
    ) -> Result<i64, String> {
        match self
            .run(Op::Queue {
                imei: imei.into(),
                codec,
                text,
                payload,
            })
            .await?
        {
            Outcome::Id(id) => Ok(id),
            _ => unreachable!("queue job answered with another outcome"),
        }
    }

    /// Take the device's oldest queued command and mark it sent.
    pub(crate) async fn take(&self, imei: &str) -> Result<Option<Queued>, String> {
        match self.run(Op::Take { imei: imei.into() }).await? {
            Outcome::Taken(q) => Ok(q),
            _ => unreachable!("take job answered with another outcome"),
        }
    }

    /// Store how a sent command ended.
    pub(crate) async fn end(&self, id: i64, end: CommandEnd) -> Result<(), String> {
        self.run(Op::End { id, end }).await.map(drop)
    }
}

/// Read-only connections for the API. Each query runs on a blocking thread.
#[derive(Clone)]
pub(crate) struct Reader {
    conns: Arc<Vec<Mutex<Connection>>>,
}

/// Rows a query may return at most.
pub(crate) const MAX_LIMIT: i64 = 100_000;

impl Reader {
    fn open(path: &Path) -> Result<Self, String> {
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
            conns: Arc::new(conns),
        })
    }

    /// Run `f` on a free connection, on a blocking thread.
    pub(crate) async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        let conns = self.conns.clone();
        tokio::task::spawn_blocking(move || {
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
/// it came from: `id`, `codec`, `transport`, `received_ms` and `fuel`.
fn record_value(r: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
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
    m.insert(
        "io".into(),
        serde_json::from_str(&io).unwrap_or(Value::Array(vec![])),
    );
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

/// The same shape as [`record_value`] for a record just committed (live events).
pub(crate) fn live_record_value(id: i64, row: &RecordRow, batch: &Batch) -> Value {
    let mut v = serde_json::to_value(&row.json).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("id".into(), json!(id));
        m.insert("codec".into(), json!(batch.codec));
        m.insert("transport".into(), json!(batch.transport));
        m.insert("received_ms".into(), json!(batch.received_ms));
        let fuel = row.fuel.as_ref().map_or(
            Value::Null,
            |f| json!({"io_id": f.id, "value": f.level, "unit": f.unit}),
        );
        m.insert("fuel".into(), fuel);
    }
    v
}

/// Every device with its record count and last position (the latest valid fix, else the latest
/// record). `connected` is filled in by the caller, which knows the live connections.
pub(crate) fn devices(c: &Connection) -> rusqlite::Result<Vec<(String, Value)>> {
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
        let pos = last.query_row([id], record_value).optional()?;
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
) -> rusqlite::Result<Vec<Value>> {
    let mut q = c.prepare_cached(&format!(
        "SELECT {RECORD_COLUMNS} FROM records r JOIN devices d ON d.id = r.device_id
         WHERE d.imei = ?1 AND r.timestamp_ms BETWEEN ?2 AND ?3 ORDER BY r.timestamp_ms DESC, r.id DESC LIMIT ?4"
    ))?;
    let mut rows = q
        .query_map(
            params![imei, from, to, limit.clamp(0, MAX_LIMIT)],
            record_value,
        )?
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_values() {
        // FNV-1a 64 test vectors (Fowler/Noll/Vo).
        assert_eq!(record_hash(b"") as u64, 0xcbf2_9ce4_8422_2325);
        assert_eq!(record_hash(b"a") as u64, 0xaf63_dc4c_8601_ec8c);
        assert_eq!(record_hash(b"foobar") as u64, 0x8594_4171_f739_67e8);
    }
}
