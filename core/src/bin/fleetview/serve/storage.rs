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
//! Readers (the HTTP API) use their own connections ([`super::query`]): WAL lets them read
//! while the writer commits.

use std::path::Path;
use std::thread::JoinHandle;

use fleetview::json::RecordJson;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

use super::fuel::{self, Reading};
use super::query::Reader;

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
    /// Commit what is queued before it, then stop: later jobs fail, nobody is acked for them.
    Close,
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

/// The writer thread; join it after [`Store::close`] (or after dropping every [`Store`]).
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
    let mut closing = false;
    while !closing {
        let Some(job) = rx.blocking_recv() else { break };
        group.push(job);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        if let Some(at) = group.iter().position(|j| matches!(j.op, Op::Close)) {
            // Jobs queued after the close are dropped unanswered: their senders see an error.
            group.truncate(at + 1);
            closing = true;
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
    drop(rx);
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
        tracing::warn!("final WAL checkpoint failed: {e}");
    }
    if let Err((_, e)) = conn.close() {
        tracing::warn!("closing the database: {e}");
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
        Op::Close => Ok(Outcome::Done),
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

    /// Commit everything queued so far and stop the writer (shutdown).
    pub(crate) async fn close(&self) -> Result<(), String> {
        self.run(Op::Close).await.map(drop)
    }

    /// Store how a sent command ended.
    pub(crate) async fn end(&self, id: i64, end: CommandEnd) -> Result<(), String> {
        self.run(Op::End { id, end }).await.map(drop)
    }
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
